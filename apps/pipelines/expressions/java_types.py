"""The Java types an expression may name with ``T(...)`` or ``new ...``: kork-expressions' allow-list, in Python.

Spinnaker evaluates SpEL in the JVM, where ``T(java.lang.System).exit(1)`` would stop the service; kork
therefore lets expressions instantiate and reference only a short list of value types (strings, numbers,
dates, UUIDs, ``Math``, ``Random``, ``URL``). Here each of those types is a :class:`JavaType` with explicit
tables of its constructors, static methods, static fields and instance methods; nothing else of a Python
object is reachable. Every other type name is refused when the expression is translated, saying which types
are allowed. The instances (:class:`JavaValue`) are small immutable values; an expression's result never
holds one: it becomes the text Java's ``toString()`` gives (see ``plain``).

Dates and times are in UTC, a server JVM's usual default time zone.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.java_random import JavaGenerator
from apps.pipelines.expressions.values import JavaValue, is_integer, type_name

UTC = dt.UTC
_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_BYTE_RANGE = (-128, 127)


@dataclass(frozen=True, eq=False)
class JavaType(JavaValue):
    """A type an expression may name: ``T(java.util.UUID)``; what it can build and call is in its tables."""

    name: str
    construct: Callable[..., Any] | None = None
    statics: dict[str, Callable[..., Any]] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def java_string(self) -> str:
        return f"class {self.name}"


def _whole(value: Any, bounds: tuple[int, int], kind: str) -> int:
    """Java's Integer/Long/Byte parsing and narrowing: text in base 10, or a number within the type's range."""
    if isinstance(value, str):
        if not re.fullmatch(r"[+-]?\d{1,20}", value):
            raise Refusal(f"{value[:40]!r} is not a whole number ({kind})")
        number = int(value)
    elif is_integer(value):
        number = value
    elif isinstance(value, float) and kind != "Integer.valueOf":
        number = int(value)
    else:
        raise Refusal(f"a {type_name(value)} is not a whole number ({kind})")
    if not bounds[0] <= number <= bounds[1]:
        raise Refusal(f"{number} is out of range for {kind}")
    return number


def _double(value: Any) -> float:
    if isinstance(value, bool):
        raise Refusal("a boolean is not a number (Double)")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?\s*", value):
            raise Refusal(f"{value[:40]!r} is not a number (Double)")
        return float(value.strip().rstrip("dDfF"))
    if isinstance(value, int | float):
        return float(value)
    raise Refusal(f"a {type_name(value)} is not a number (Double)")


def _java_boolean(value: Any) -> bool:
    """Boolean.valueOf(String): only "true", in any case, is true."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.lower() == "true"


def _text(value: Any) -> str:
    from apps.pipelines.expressions.values import to_java_string

    return to_java_string(value)


# --- Dates and times -------------------------------------------------------------------------------


def _millis_now() -> int:
    return int(dt.datetime.now(UTC).timestamp() * 1000)


def _moment(millis: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(millis / 1000, UTC)


@dataclass(frozen=True)
class JavaDate(JavaValue):
    """java.util.Date: a moment, in epoch milliseconds."""

    millis: int

    def java_string(self) -> str:
        return _moment(self.millis).strftime("%a %b %d %H:%M:%S UTC %Y")


@dataclass(frozen=True)
class JavaInstant(JavaValue):
    """java.time.Instant: a moment, in epoch milliseconds."""

    millis: int

    def java_string(self) -> str:
        moment = _moment(self.millis)
        fraction = f".{self.millis % 1000:03d}" if self.millis % 1000 else ""
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


@dataclass(frozen=True)
class JavaLocalDate(JavaValue):
    """java.time.LocalDate: a date without a time."""

    date: dt.date

    def java_string(self) -> str:
        return self.date.isoformat()


@dataclass(frozen=True)
class JavaChronoUnit(JavaValue):
    """java.time.temporal.ChronoUnit, for the units of fixed length."""

    name: str
    seconds: float

    def java_string(self) -> str:
        return self.name.title().replace("_", "")


_UNITS = {
    name: JavaChronoUnit(name, seconds)
    for name, seconds in (
        ("MILLIS", 0.001), ("SECONDS", 1), ("MINUTES", 60), ("HOURS", 3600), ("HALF_DAYS", 43200),
        ("DAYS", 86400), ("WEEKS", 604800),
    )
}


def _add_months(date: dt.date, months: int) -> dt.date:
    """LocalDate.plusMonths: the same day of the month, or the month's last day when it has fewer."""
    index = date.year * 12 + date.month - 1 + _whole(months, _LONG_RANGE, "months")
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise Refusal("the date is out of range")
    return date.replace(year=year, month=month + 1, day=min(date.day, calendar.monthrange(year, month + 1)[1]))


def _add_days(date: dt.date, days: Any) -> JavaLocalDate:
    try:
        return JavaLocalDate(date + dt.timedelta(days=_whole(days, _LONG_RANGE, "days")))
    except OverflowError:
        raise Refusal("the date is out of range") from None


def _parse_local_date(text: Any) -> JavaLocalDate:
    try:
        return JavaLocalDate(dt.date.fromisoformat(_text(text)))
    except ValueError:
        raise Refusal(f"{_text(text)[:40]!r} is not a date like 2024-01-31 (LocalDate.parse)") from None


def _local_date_of(year: Any, month: Any, day: Any) -> JavaLocalDate:
    try:
        return JavaLocalDate(dt.date(*(_whole(part, _INT_RANGE, "LocalDate.of") for part in (year, month, day))))
    except ValueError as error:
        raise Refusal(f"LocalDate.of: {error}") from None


def _shift(value: JavaInstant, amount: Any, unit: Any, sign: int) -> JavaInstant:
    if not isinstance(unit, JavaChronoUnit) or unit.name == "WEEKS":
        raise Refusal("Instant.plus/minus take a unit of ChronoUnit from MILLIS to DAYS")
    millis = value.millis + sign * round(_whole(amount, _LONG_RANGE, "amount") * unit.seconds * 1000)
    return _instant(millis)


def _instant(millis: int) -> JavaInstant:
    if abs(millis) > 253402300799999:  # the years 0001 to 9999 are the ones Python can show
        raise Refusal("the instant is out of range")
    return JavaInstant(millis)


def _parse_instant(text: Any) -> JavaInstant:
    try:
        moment = dt.datetime.fromisoformat(_text(text).replace("Z", "+00:00"))
    except ValueError:
        raise Refusal(f"{_text(text)[:40]!r} is not an instant like 2024-01-31T10:00:00Z (Instant.parse)") from None
    if moment.tzinfo is None:
        raise Refusal("Instant.parse needs a time zone (a Z at the end for UTC)")
    return _instant(int(moment.timestamp() * 1000))


def _between(unit: JavaChronoUnit, start: Any, end: Any) -> int:
    """ChronoUnit.X.between(a, b): whole units from a to b (two Instants, two LocalDates or two Dates)."""
    seconds: float
    if isinstance(start, JavaLocalDate) and isinstance(end, JavaLocalDate):
        seconds = (end.date - start.date).days * 86400
    elif isinstance(start, JavaInstant | JavaDate) and isinstance(end, JavaInstant | JavaDate):
        seconds = (end.millis - start.millis) / 1000
    else:
        raise Refusal("between() compares two Instants, two Dates or two LocalDates")
    return int(seconds / unit.seconds)


# SimpleDateFormat's pattern letters, as strftime directives (the ones a pipeline plausibly uses).
_DATE_LETTERS: dict[str, Callable[[dt.datetime, int], str]] = {
    "y": lambda moment, count: f"{moment.year % 100:02d}" if count == 2 else f"{moment.year:0{count}d}",
    "M": lambda moment, count: (
        moment.strftime("%B") if count >= 4 else moment.strftime("%b") if count == 3 else f"{moment.month:0{count}d}"
    ),
    "d": lambda moment, count: f"{moment.day:0{count}d}",
    "H": lambda moment, count: f"{moment.hour:0{count}d}",
    "h": lambda moment, count: f"{(moment.hour % 12) or 12:0{count}d}",
    "m": lambda moment, count: f"{moment.minute:0{count}d}",
    "s": lambda moment, count: f"{moment.second:0{count}d}",
    "S": lambda moment, count: f"{moment.microsecond // 1000:0{count}d}",
    "a": lambda moment, count: moment.strftime("%p"),
    "E": lambda moment, count: moment.strftime("%A") if count >= 4 else moment.strftime("%a"),
    "D": lambda moment, count: f"{moment.timetuple().tm_yday:0{count}d}",
    "u": lambda moment, count: str(moment.isoweekday()),
    "z": lambda moment, count: "UTC",
    "Z": lambda moment, count: "+0000",
    "X": lambda moment, count: "Z",
}
_PATTERN_PIECE = re.compile(r"'([^']*)'|([A-Za-z])\2*|(.)", re.DOTALL)


@dataclass(frozen=True)
class JavaDateFormat(JavaValue):
    """java.text.SimpleDateFormat, for format(): the pattern is checked when it is made."""

    pattern: str

    def java_string(self) -> str:
        return f"SimpleDateFormat({self.pattern})"

    def format(self, value: Any) -> str:
        if isinstance(value, JavaDate | JavaInstant):
            moment = _moment(value.millis)
        elif is_integer(value):
            moment = _moment(value)
        else:
            raise Refusal("SimpleDateFormat.format() takes a Date (new java.util.Date()) or epoch milliseconds")
        pieces = []
        for match in _PATTERN_PIECE.finditer(self.pattern):
            quoted, letter, other = match.groups()
            if letter:
                pieces.append(_DATE_LETTERS[letter](moment, len(match.group())))
            else:
                pieces.append("'" if quoted == "" else quoted if quoted is not None else other)
        return "".join(pieces)


def _date_format(pattern: Any) -> JavaDateFormat:
    text = _text(pattern)
    if len(text) > 200:
        raise Refusal("the date pattern is longer than 200 characters")
    for match in _PATTERN_PIECE.finditer(text):
        letter = match.group(2)
        if letter and letter not in _DATE_LETTERS:
            raise Refusal(f"the date pattern letter {letter!r} is not supported (supported: {''.join(_DATE_LETTERS)})")
    return JavaDateFormat(text)


# --- UUID, Random, URL -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JavaUUID(JavaValue):
    """java.util.UUID."""

    value: uuid.UUID

    def java_string(self) -> str:
        return str(self.value)


def _uuid_of(most: Any, least: Any) -> JavaUUID:
    """new UUID(mostSigBits, leastSigBits): two signed 64-bit halves."""
    high = _whole(most, _LONG_RANGE, "UUID") % 2**64
    low = _whole(least, _LONG_RANGE, "UUID") % 2**64
    return JavaUUID(uuid.UUID(int=(high << 64) | low))


def _uuid_from_string(text: Any) -> JavaUUID:
    try:
        return JavaUUID(uuid.UUID(_text(text)))
    except ValueError:
        raise Refusal(f"{_text(text)[:40]!r} is not a UUID") from None


@dataclass(frozen=True, eq=False)
class JavaRandom(JavaValue):
    """java.util.Random, with Java's own generator: a seed gives the JVM's numbers."""

    generator: JavaGenerator

    def java_string(self) -> str:
        return "java.util.Random"


def _next_int(source: JavaRandom, bound: Any = None) -> int:
    if bound is None:
        return source.generator.next_int()
    limit = _whole(bound, _INT_RANGE, "nextInt")
    if limit <= 0:
        raise Refusal("nextInt(bound): the bound must be positive")
    return source.generator.next_int(limit)


@dataclass(frozen=True)
class JavaURL(JavaValue):
    """java.net.URL, for reading its parts; it opens no connection (openConnection() is not available)."""

    text: str

    def java_string(self) -> str:
        return self.text

    def part(self, name: str) -> Any:
        parts = urlsplit(self.text)
        if name == "port":
            return parts.port if parts.port is not None else -1
        return {"protocol": parts.scheme, "host": parts.hostname or "", "path": parts.path,
                "query": parts.query or None, "ref": parts.fragment or None,
                "file": parts.path + (f"?{parts.query}" if parts.query else "")}[name]


def _url(text: Any) -> JavaURL:
    value = _text(text)
    parts = urlsplit(value)
    if not parts.scheme or len(value) > 2048:
        raise Refusal(f"{value[:40]!r} is not a URL")
    return JavaURL(value)


# --- The allow-list --------------------------------------------------------------------------------


def _number_type(name: str, convert: Callable[[Any], Any], minimum: Any, maximum: Any, parse: str) -> JavaType:
    return JavaType(
        name, construct=convert,
        statics={"valueOf": convert, parse: convert, "toString": lambda value: _text(convert(value))},
        fields={"MAX_VALUE": maximum, "MIN_VALUE": minimum},
    )


def _integer(value: Any) -> int:
    return _whole(value, _INT_RANGE, "Integer")


def _long(value: Any) -> int:
    return _whole(value, _LONG_RANGE, "Long")


def _byte(value: Any) -> int:
    return _whole(value, _BYTE_RANGE, "Byte")


def _now_date(*millis: Any) -> JavaDate:
    if len(millis) > 1:
        raise Refusal("new Date() takes no argument, or epoch milliseconds")
    return JavaDate(_long(millis[0]) if millis else _millis_now())


def _math_round(value: Any) -> int:
    return math.floor(_double(value) + 0.5)


def _new_random(*seed: Any) -> JavaRandom:
    return JavaRandom(JavaGenerator(_long(seed[0]) if seed else None))


_TYPES = [
    JavaType("java.lang.String", construct=lambda value="": _text(value),
             statics={"valueOf": _text, "join": lambda glue, *parts: _text(glue).join(_join_parts(parts))}),
    _number_type("java.lang.Integer", _integer, _INT_RANGE[0], _INT_RANGE[1], "parseInt"),
    _number_type("java.lang.Long", _long, _LONG_RANGE[0], _LONG_RANGE[1], "parseLong"),
    _number_type("java.lang.Byte", _byte, _BYTE_RANGE[0], _BYTE_RANGE[1], "parseByte"),
    _number_type("java.lang.Double", _double, 5e-324, 1.7976931348623157e308, "parseDouble"),
    JavaType("java.lang.Boolean", construct=_java_boolean,
             statics={"valueOf": _java_boolean, "parseBoolean": _java_boolean, "toString": lambda v: _text(v)},
             fields={"TRUE": True, "FALSE": False}),
    JavaType("java.lang.Math", statics={
        "abs": lambda value: abs(value), "max": lambda a, b: max(a, b), "min": lambda a, b: min(a, b),
        "floor": lambda value: float(math.floor(_double(value))),
        "ceil": lambda value: float(math.ceil(_double(value))),
        "round": _math_round, "sqrt": lambda value: math.sqrt(_double(value)),
        "pow": lambda base, exponent: math.pow(_double(base), _double(exponent)), "random": random.random,
        "floorDiv": lambda a, b: _long(a) // _long(b), "floorMod": lambda a, b: _long(a) % _long(b),
    }, fields={"PI": math.pi, "E": math.e}),
    JavaType("java.util.Random", construct=_new_random),
    JavaType("java.util.UUID", construct=_uuid_of,
             statics={"randomUUID": lambda: JavaUUID(uuid.uuid4()), "fromString": _uuid_from_string}),
    JavaType("java.util.Date", construct=_now_date),
    JavaType("java.text.SimpleDateFormat", construct=_date_format),
    JavaType("java.time.LocalDate", statics={
        "now": lambda: JavaLocalDate(dt.datetime.now(UTC).date()), "parse": _parse_local_date, "of": _local_date_of,
    }),
    JavaType("java.time.Instant", statics={
        "now": lambda: JavaInstant(_millis_now()), "parse": _parse_instant,
        "ofEpochMilli": lambda millis: _instant(_long(millis)),
        "ofEpochSecond": lambda seconds: _instant(_long(seconds) * 1000),
    }),
    JavaType("java.time.temporal.ChronoUnit", fields=dict(_UNITS)),
    JavaType("java.net.URL", construct=_url),
]
ALLOWED_TYPES: dict[str, JavaType] = {kind.name: kind for kind in _TYPES}
# java.lang is searched without its package, as SpEL's type locator does.
_SHORT_NAMES = {kind.name.rsplit(".", 1)[1]: kind for kind in _TYPES if kind.name.startswith("java.lang.")}


def _join_parts(parts: tuple) -> list[str]:
    if len(parts) == 1 and isinstance(parts[0], list | tuple):
        parts = tuple(parts[0])
    return [_text(part) for part in parts]


def java_type(name: str) -> JavaType:
    """The allowed type ``name`` (``java.util.UUID``, or ``Integer`` for java.lang); raises Refusal otherwise."""
    found = ALLOWED_TYPES.get(name) or _SHORT_NAMES.get(name)
    if found is None:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise Refusal(f"the type {name} is not allowed in expressions; the allowed types are: {allowed}")
    return found


def construct(name: str, *arguments: Any) -> Any:
    """``new name(arguments)`` for an allowed type that can be constructed."""
    kind = java_type(name)
    if kind.construct is None:
        raise Refusal(f"{kind.name} cannot be constructed with new; use T({kind.name}) and its static methods")
    return kind.construct(*arguments)


def _url_part(part: str, value: JavaURL) -> Any:
    return value.part(part)


# Instance methods, by the value's class. Each takes the value first, like the tables in ``methods``.
INSTANCE_METHODS: dict[type, dict[str, Callable[..., Any]]] = {
    JavaDate: {
        "getTime": lambda value: value.millis,
        "toInstant": lambda value: JavaInstant(value.millis),
        "before": lambda value, other: value.millis < _millis_of(other),
        "after": lambda value, other: value.millis > _millis_of(other),
    },
    JavaInstant: {
        "toEpochMilli": lambda value: value.millis,
        "getEpochSecond": lambda value: value.millis // 1000,
        "plusSeconds": lambda value, seconds: _instant(value.millis + _long(seconds) * 1000),
        "minusSeconds": lambda value, seconds: _instant(value.millis - _long(seconds) * 1000),
        "plusMillis": lambda value, millis: _instant(value.millis + _long(millis)),
        "minusMillis": lambda value, millis: _instant(value.millis - _long(millis)),
        "plus": lambda value, amount, unit: _shift(value, amount, unit, 1),
        "minus": lambda value, amount, unit: _shift(value, amount, unit, -1),
        "isBefore": lambda value, other: value.millis < _millis_of(other),
        "isAfter": lambda value, other: value.millis > _millis_of(other),
    },
    JavaLocalDate: {
        "plusDays": lambda value, days: _add_days(value.date, days),
        "minusDays": lambda value, days: _add_days(value.date, -_long(days)),
        "plusWeeks": lambda value, weeks: _add_days(value.date, _long(weeks) * 7),
        "minusWeeks": lambda value, weeks: _add_days(value.date, -_long(weeks) * 7),
        "plusMonths": lambda value, months: JavaLocalDate(_add_months(value.date, months)),
        "minusMonths": lambda value, months: JavaLocalDate(_add_months(value.date, -_long(months))),
        "plusYears": lambda value, years: JavaLocalDate(_add_months(value.date, _long(years) * 12)),
        "minusYears": lambda value, years: JavaLocalDate(_add_months(value.date, -_long(years) * 12)),
        "getYear": lambda value: value.date.year,
        "getMonthValue": lambda value: value.date.month,
        "getDayOfMonth": lambda value: value.date.day,
        "getDayOfYear": lambda value: value.date.timetuple().tm_yday,
        "getDayOfWeek": lambda value: value.date.strftime("%A").upper(),
        "isBefore": lambda value, other: _date_of(other) > value.date,
        "isAfter": lambda value, other: _date_of(other) < value.date,
        "isEqual": lambda value, other: _date_of(other) == value.date,
        "isLeapYear": lambda value: calendar.isleap(value.date.year),
    },
    JavaChronoUnit: {"between": _between},
    JavaDateFormat: {"format": lambda value, moment: value.format(moment), "toPattern": lambda value: value.pattern},
    JavaUUID: {"version": lambda value: value.value.version or 0},
    JavaRandom: {
        "nextInt": _next_int,
        "nextLong": lambda source: source.generator.next_long(),
        "nextDouble": lambda source: source.generator.next_double(),
        "nextFloat": lambda source: source.generator.next_float(),
        "nextBoolean": lambda source: source.generator.next_boolean(),
        "nextGaussian": lambda source: source.generator.next_gaussian_value(),
    },
    JavaURL: {
        f"get{part.title()}": functools.partial(_url_part, part)
        for part in ("protocol", "host", "port", "path", "query", "ref", "file")
    },
}
METHOD_NAMES = frozenset(
    {name for table in INSTANCE_METHODS.values() for name in table} | {name for kind in _TYPES for name in kind.statics}
)


def _static_call(function: Callable[..., Any], _type: JavaType, *arguments: Any) -> Any:
    return function(*arguments)


def _millis_of(value: Any) -> int:
    if isinstance(value, JavaDate | JavaInstant):
        return value.millis
    raise Refusal(f"expected a Date or an Instant, got a {type_name(value)}")


def _date_of(value: Any) -> dt.date:
    if isinstance(value, JavaLocalDate):
        return value.date
    raise Refusal(f"expected a LocalDate, got a {type_name(value)}")


def instance_methods(value: Any) -> dict[str, Callable[..., Any]]:
    """The methods of a Java value or an allowed type (its static methods); {} for anything else."""
    if isinstance(value, JavaType):
        return {name: functools.partial(_static_call, function) for name, function in value.statics.items()}
    return INSTANCE_METHODS.get(type(value), {})


def static_field(kind: JavaType, name: str) -> Any:
    """``T(type).NAME``: one of the type's constants; raises Refusal for any other name."""
    if name not in kind.fields:
        raise Refusal(f"{kind.name} has no constant {name!r}")
    return kind.fields[name]
