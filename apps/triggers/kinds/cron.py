"""``cron`` triggers: Spinnaker's Quartz expressions (or standard five-field ones), fired once per due time.

Quartz writes seconds first (``0 0/5 * * * ?``: every five minutes), an
optional year last, ``?`` for "no value", days of the week 1-7 from Sunday,
``L`` (last day of the month; ``6L`` the last Friday), ``#`` (``2#1``: the
first Monday) and ``W`` (nearest weekday). :func:`translate` rewrites such an
expression for croniter (days of the week 0-6, ``L5`` for ``6L``); what croniter
cannot do — ``W``, ``LW``, ``L-3`` — is refused when the pipeline is saved, with
a message saying so. A trigger may name a ``timeZone`` (IANA, default UTC).

Each trigger's row holds its next due time; ``apps/triggers/schedule.py`` fires
them when due.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from croniter import croniter

from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages.base import StageField
from apps.triggers.kinds.base import TriggerKind, register_kind, words


class Unsupported(ValueError):
    """A Quartz expression croniter cannot run."""


def _shift_days(field: str) -> str:
    """Quartz's days of the week (1=Sunday..7) as croniter's (0=Sunday..6), names kept; ``nL`` becomes ``L(n-1)``."""
    out = []
    for item in field.split(","):
        if item == "L":
            out.append("6")  # alone, Quartz's L in day-of-week is Saturday
            continue
        last = item.endswith("L") and len(item) > 1
        core = item[:-1] if last else item
        head, sep, tail = core.partition("#") if "#" in core else core.partition("/")
        if sep == "/":
            shifted = _shift_range(head) + "/" + tail
        else:
            shifted = _shift_range(head) + (sep + tail if sep else "")
        out.append(f"L{shifted}" if last else shifted)
    return ",".join(out)


def _shift_range(text: str) -> str:
    if text in ("*", "?"):
        return "*"
    parts = text.split("-")
    return "-".join(str(int(p) - 1) if p.isdigit() and 1 <= int(p) <= 7 else _day_refusal(p) for p in parts)


def _day_refusal(part: str) -> str:
    if part.isdigit():
        raise Unsupported(f"day of the week {part} is not 1-7 (Quartz counts from 1 = Sunday)")
    return part


def translate(expression: str) -> tuple[str, bool]:
    """The expression as croniter reads it, and whether it has a seconds field; Unsupported says why not."""
    fields = expression.split()
    if len(fields) == 5:
        return expression, False
    if len(fields) not in (6, 7):
        raise Unsupported(f"has {len(fields)} fields: write Quartz's six or seven (seconds first) or standard five")
    fields = ["*" if value == "?" else value for value in fields]
    day_of_month = fields[3]
    if "W" in day_of_month.upper():
        raise Unsupported("W (the nearest weekday) in the day of the month is not supported: list the days instead")
    if day_of_month.upper().startswith("L-"):
        raise Unsupported("L-n (n days before the last of the month) is not supported")
    fields[5] = _shift_days(fields[5].upper())
    return " ".join(fields), True


def schedule(trigger: dict) -> tuple[str, bool, zoneinfo.ZoneInfo]:
    """The croniter expression, its seconds flag and time zone; ValueError (Unsupported) says what is wrong."""
    expression = trigger.get("cronExpression")
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("cronExpression is required")
    translated, seconds = translate(expression.strip())
    try:
        zone = zoneinfo.ZoneInfo(trigger.get("timeZone") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"timeZone {trigger.get('timeZone')!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    if not croniter.is_valid(translated, second_at_beginning=seconds):
        raise Unsupported(f"{expression!r} is not a cron expression")
    return translated, seconds, zone


def next_time(trigger: dict, after: datetime) -> datetime:
    """The trigger's first due time strictly after ``after``."""
    translated, seconds, zone = schedule(trigger)
    return croniter(translated, after.astimezone(zone), second_at_beginning=seconds).get_next(datetime)


class CronKind(TriggerKind):
    type = "cron"
    fields = (
        StageField("cronExpression", label="Cron expression", required=True,
                   help="Quartz (0 0/12 * * * ?) or five fields (*/5 * * * *)"),
        StageField("timeZone", label="Time zone", help="e.g. Europe/Paris; default UTC"),
    )

    def key(self, trigger: dict) -> str | None:
        try:
            schedule(trigger)
        except ValueError:
            return None
        return trigger["cronExpression"].strip()

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        if trigger.get("cronExpression") in (None, ""):
            return [Problem(pointer_join(pointer, "cronExpression"), "is required")]
        try:
            schedule(trigger)
        except Unsupported as refusal:
            return [Problem(pointer_join(pointer, "cronExpression"), str(refusal))]
        except ValueError as refusal:
            where = "timeZone" if "timeZone" in str(refusal) else "cronExpression"
            return [Problem(pointer_join(pointer, where), str(refusal))]
        return []

    def describe(self, trigger: dict) -> str:
        zone = trigger.get("timeZone")
        return f"Runs on the schedule {words(trigger.get('cronExpression'))}" + (f" in {zone}" if zone else "")

    def first_fire_at(self, trigger: dict, now: datetime) -> datetime:
        return next_time(trigger, now)


CRON = register_kind(CronKind())
