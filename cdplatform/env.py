"""Typed readers for settings taken from the environment.

Every setting the platform reads from the environment goes through these, so a
bad value fails loudly at start-up with the variable's name instead of
surfacing later as a confusing error.
"""

import os
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    """Return the variable's value, or ``default`` when it is unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Return the variable as a boolean; accepts 1/0, true/false, yes/no, on/off."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return the variable as an integer, refusing values below ``minimum`` or above ``maximum``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} must be at most {maximum}")
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    """Return the variable as a number, refusing values below ``minimum``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated variable as a list of non-empty, stripped items."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Return the variable, refusing a value that is not one of ``choices`` (compared case-insensitively)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    for choice in choices:
        if raw.strip().lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}")


def env_time_zone(name: str, default: str) -> str:
    """Return the variable as an IANA time-zone name that ``zoneinfo`` knows (``Europe/Paris``)."""
    raw = os.environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not a known time zone (an IANA name: UTC)") from None
    return value


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    """Return the variable as a URL with one of ``schemes`` and a host (or a path, for unix sockets)."""
    value = os.environ.get(name, default)
    if value == "":
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a valid URL: {exc}") from None
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(f"{name}={value!r} must start with one of {', '.join(s + '://' for s in schemes)}")
    if not (parts.hostname or parts.path):
        raise ImproperlyConfigured(f"{name}={value!r} names no host")
    return value


def env_list_of(name: str, default: list[str], choices: tuple[str, ...]) -> list[str]:
    """Return a comma-separated variable as a non-empty list whose items are all among ``choices``."""
    values = env_list(name, default)
    unknown = [value for value in values if value not in choices]
    if unknown or not values:
        raise ImproperlyConfigured(f"{name}={','.join(values)!r} must list some of {', '.join(choices)}")
    return values


RATE_PERIODS = ("second", "minute", "hour", "day")


def env_rate(name: str, default: str) -> str:
    """Return the variable as a request rate, ``N/second``, ``N/minute``, ``N/hour`` or ``N/day`` (N at least 1)."""
    raw = os.environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate such as 600/minute (per {', '.join(RATE_PERIODS)})")
    return value
