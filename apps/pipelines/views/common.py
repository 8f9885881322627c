"""What every pipeline page shares: the readable lookup, the audit actor, and durations as people read them."""

from __future__ import annotations

import hashlib

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dates import MONTHS_3

from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.accounts.permissions import READ
from apps.pipelines.models import epoch_millis


def readable(queryset, user, **lookup):
    """The object ``lookup`` finds among those ``user`` may read; 404 for anything else."""
    return get_object_or_404(queryset.restrict(user, READ), **lookup)


def web_actor(request) -> Actor:
    """The signed-in user as the audit log records an action taken on these pages."""
    return Actor.from_request(request, source=AuditSource.WEB)


def format_duration(milliseconds: int | None) -> str:
    """A duration as a person reads it: 12s, 3m 05s, 2h 04m (the same format live.js writes)."""
    if milliseconds is None:
        return ""
    seconds = max(0, int(milliseconds // 1000))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def duration_ms(start, end) -> int | None:
    """Milliseconds from start to end (to now while it runs); None before it starts."""
    if start is None:
        return None
    return int(((end or timezone.now()) - start).total_seconds() * 1000)


def stage_title(stage) -> str:
    """The tooltip of a stage: its name, status and duration."""
    duration = format_duration(duration_ms(stage.start_time, stage.end_time))
    return " — ".join(part for part in (stage.name, stage.status, duration) if part)


def with_timings(row):
    """An execution or stage with ``start_ms``, ``end_ms`` (epoch ms) and ``duration`` for the templates."""
    row.start_ms, row.end_ms = epoch_millis(row.start_time), epoch_millis(row.end_time)
    row.duration = format_duration(duration_ms(row.start_time, row.end_time))
    return row


def moment_texts(value) -> tuple[str, str]:
    """A moment in the current time zone, short ("Dec 8, 03:04:05") and in full (ISO 8601): what the filters
    ``date:"M j, H:i:s"`` and ``date:"c"`` write, without their parsing of the format on every call (two per
    row of an application page's hundred)."""
    local = timezone.localtime(value)
    return f"{MONTHS_3[local.month].title()} {local.day}, {local:%H:%M:%S}", local.isoformat()


def state_version(execution_rows) -> str:
    """A short digest of what a live page shows; live.js swaps a fetched fragment in only when it differs."""
    digest = hashlib.sha1(usedforsecurity=False)
    for execution, stages in execution_rows:
        digest.update(f"{execution.id}:{execution.status}:{execution.end_time};".encode())
        for stage in stages:
            # Stage bars load no context (a deferred field): only the execution page has judgments to show.
            judged = stage.context.get("judgmentStatus") if "context" in stage.__dict__ else ""
            digest.update(f"{stage.id}:{stage.status}:{stage.start_time}:{stage.end_time}:{judged};".encode())
    return digest.hexdigest()[:16]
