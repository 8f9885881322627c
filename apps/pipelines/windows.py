"""Execution windows: a stage with ``restrictExecutionDuringTimeWindow`` runs only inside its allowed hours and days.

Spinnaker's format, on the stage::

    "restrictExecutionDuringTimeWindow": true,
    "restrictedExecutionWindow": {
        "whitelist": [{"startHour": 9, "startMin": 0, "endHour": 17, "endMin": 0}],
        "days": [2, 3, 4, 5, 6],            # 1 = Sunday ... 7 = Saturday; empty = every day
        "jitter": {"enabled": true, "minDelay": 0, "maxDelay": 600}
    }

Hours are read in ``EXECUTION_WINDOW_TIME_ZONE``. A range whose end is before
its start runs past midnight (22:00-02:00). Jitter adds a random delay, in
seconds, after the window opens, so many pipelines do not all start at once.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.pipelines.problems import Problem, pointer_join

# Python's weekday(): Monday is 0; Spinnaker's days: Sunday is 1.
_SPINNAKER_DAY = {0: 2, 1: 3, 2: 4, 3: 5, 4: 6, 5: 7, 6: 1}
_SEARCH_DAYS = 8


def is_restricted(context: dict) -> bool:
    return context.get("restrictExecutionDuringTimeWindow") is True


def _ranges(window: dict) -> list[tuple[int, int]]:
    """Allowed ranges as (start, end) minutes of the day; the whole day when none are given."""
    ranges = []
    for item in window.get("whitelist") or []:
        start = int(item.get("startHour", 0)) * 60 + int(item.get("startMin", 0))
        end = int(item.get("endHour", 0)) * 60 + int(item.get("endMin", 0))
        ranges.append((start, end))
    return ranges or [(0, 24 * 60)]


def _inside(moment: datetime, ranges: list[tuple[int, int]], days: set[int]) -> bool:
    minute = moment.hour * 60 + moment.minute
    for start, end in ranges:
        if start <= end:
            if start <= minute < end and (not days or _SPINNAKER_DAY[moment.weekday()] in days):
                return True
        else:  # past midnight: the part after midnight belongs to the day the range started
            if minute >= start and (not days or _SPINNAKER_DAY[moment.weekday()] in days):
                return True
            previous_day = _SPINNAKER_DAY[(moment - timedelta(days=1)).weekday()]
            if minute < end and (not days or previous_day in days):
                return True
    return False


def next_window_start(now: datetime, window: dict) -> datetime | None:
    """When the window next opens, or None when ``now`` is inside it (``now`` is timezone-aware)."""
    zone = ZoneInfo(settings.EXECUTION_WINDOW_TIME_ZONE)
    local = now.astimezone(zone)
    ranges = _ranges(window)
    days = {int(day) for day in window.get("days") or []}
    if _inside(local, ranges, days):
        return None
    candidate = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = local + timedelta(days=_SEARCH_DAYS)
    # Windows open on a minute boundary: the first range start after now is the answer.
    starts = sorted({start for start, _ in ranges})
    day = candidate.replace(hour=0, minute=0)
    while day <= limit:
        for start in starts:
            opening = day + timedelta(minutes=start)
            if opening >= candidate and _inside(opening, ranges, days):
                return opening.astimezone(now.tzinfo)
        day += timedelta(days=1)
    return None


def jitter_seconds(window: dict) -> float:
    """A random delay after the window opens, when jitter is enabled."""
    jitter = window.get("jitter") or {}
    if not jitter.get("enabled"):
        return 0.0
    low, high = float(jitter.get("minDelay", 0)), float(jitter.get("maxDelay", 0))
    return random.uniform(min(low, high), max(low, high))  # noqa: S311  (spreading load, not security)


def validate_window(stage: dict, pointer: str) -> list[Problem]:
    """Problems with a stage's restrictedExecutionWindow, when the restriction is on."""
    if stage.get("restrictExecutionDuringTimeWindow") in (None, False):
        return []
    if stage.get("restrictExecutionDuringTimeWindow") is not True:
        return [Problem(pointer_join(pointer, "restrictExecutionDuringTimeWindow"), "must be true or false")]
    window = stage.get("restrictedExecutionWindow") or {}
    where = pointer_join(pointer, "restrictedExecutionWindow")
    if not isinstance(window, dict):
        return [Problem(where, "must be an object with whitelist and days")]
    problems = []
    for index, item in enumerate(window.get("whitelist") or []):
        for key, top in (("startHour", 23), ("startMin", 59), ("endHour", 24), ("endMin", 59)):
            value = item.get(key, 0) if isinstance(item, dict) else None
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                message = f"must be a whole number 0-{top}"
                problems.append(Problem(pointer_join(where, "whitelist", index, key), message))
    for index, day in enumerate(window.get("days") or []):
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            problems.append(Problem(pointer_join(where, "days", index), "must be a day 1 (Sunday) to 7 (Saturday)"))
    return problems
