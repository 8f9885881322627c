"""The trigger index: each saved pipeline's triggers as rows looked up by (type, key), rebuilt on every save.

A receiver on the pipeline's ``post_save`` rewrites the pipeline's rows in
the transaction of the save, so the index never disagrees with a committed
document; deleting the pipeline deletes its rows. A trigger whose definition
did not change keeps its row — its cron schedule, when it last fired and its
last refusal. Triggers of kinds this app does not know are not indexed.
"""

from __future__ import annotations

import hashlib

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from apps.pipelines.models import Pipeline
from apps.triggers.kinds.base import get_kind
from apps.triggers.models import TriggerIndex

MAX_KEY_LENGTH = TriggerIndex._meta.get_field("key").max_length


def index_key(key: str) -> str:
    """The key as the index stores it: a key too long for the column is stored (and looked up) as its digest."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def wanted_rows(pipeline: Pipeline) -> dict[int, TriggerIndex]:
    """The index rows the pipeline's document calls for, by position in its triggers list (unsaved)."""
    definition = pipeline.definition if isinstance(pipeline.definition, dict) else {}
    triggers = definition.get("triggers") if isinstance(definition.get("triggers"), list) else []
    pipeline_enabled = definition.get("disabled") is not True
    rows = {}
    for position, trigger in enumerate(triggers):
        kind = get_kind(trigger.get("type")) if isinstance(trigger, dict) else None
        key = kind.lookup_key(trigger) if kind is not None else None
        if key is None:
            continue
        rows[position] = TriggerIndex(
            pipeline=pipeline, application_id=pipeline.application_id, position=position, type=kind.type,
            key=index_key(key),
            enabled=pipeline_enabled and trigger.get("enabled") is not False, definition=trigger,
        )
    return rows


def reindex(pipeline: Pipeline) -> None:
    """Make the pipeline's index rows match its document (in the caller's transaction)."""
    existing = {row.position: row for row in TriggerIndex.objects.filter(pipeline=pipeline)}
    wanted = wanted_rows(pipeline)
    stale = [row.pk for position, row in existing.items() if position not in wanted]
    created = []
    for position, row in wanted.items():
        old = existing.get(position)
        if old is not None and (old.type, old.key, old.definition, old.enabled) == (
                row.type, row.key, row.definition, row.enabled):
            continue
        row.next_fire_at = _first_fire_at(row)
        if old is not None:
            stale.append(old.pk)
        created.append(row)
    if stale:
        TriggerIndex.objects.filter(pk__in=stale).delete()
    if created:
        TriggerIndex.objects.bulk_create(created)


def _first_fire_at(row: TriggerIndex):
    """When a new or changed cron trigger is first due (None for the other kinds)."""
    kind = get_kind(row.type)
    first = getattr(kind, "first_fire_at", None)
    return first(row.definition, timezone.now()) if first is not None else None


@receiver(post_save, sender=Pipeline, dispatch_uid="triggers.reindex")
def _pipeline_saved(sender, instance: Pipeline, **kwargs) -> None:
    reindex(instance)


def trigger_status(pipeline: Pipeline) -> dict[int, str]:
    """Per trigger of the pipeline, by position: when it last fired and the last refusal (for the editor)."""
    lines = {}
    for row in TriggerIndex.objects.filter(pipeline=pipeline):
        parts = []
        if row.type == "cron" and row.enabled and row.next_fire_at is not None:
            parts.append(f"next run {row.next_fire_at:%Y-%m-%d %H:%M:%S} UTC")
        parts.append(f"last fired {row.last_fired_at:%Y-%m-%d %H:%M:%S} UTC" if row.last_fired_at else "never fired")
        if row.last_refusal and (row.last_fired_at is None or row.last_refused_at > row.last_fired_at):
            parts.append(f"last event refused {row.last_refused_at:%Y-%m-%d %H:%M:%S} UTC: {row.last_refusal}")
        lines[row.position] = "; ".join(parts)
    return lines
