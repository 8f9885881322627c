"""Firing cron triggers when due: once per due time, however many schedulers run.

Each cron trigger's index row holds its next due time. The periodic job
``triggers.cron`` (each second, on every worker) claims a due trigger with a
compare-and-set on that time and fires it in the same transaction: of
several schedulers that saw it due, one updates the row and fires, and a
crash before commit leaves it due. The next time is counted from the moment
of the claim, so after an outage a trigger fires once, not once per missed tick.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.triggers.kinds.base import Event
from apps.triggers.kinds.cron import next_time
from apps.triggers.models import TriggerIndex
from apps.triggers.services import Inbound, do_fire

DUE_BATCH = 100


def fire_due(now: datetime | None = None) -> int:
    """Fire every cron trigger due at ``now`` that this process claims; returns how many it fired."""
    now = now or timezone.now()
    due = list(TriggerIndex.objects.filter(type="cron", enabled=True, next_fire_at__lte=now)
               .order_by("next_fire_at").values_list("pk", "next_fire_at")[:DUE_BATCH])
    fired = 0
    for pk, due_at in due:
        with transaction.atomic():
            row = TriggerIndex.objects.select_related("pipeline__application").filter(pk=pk).first()
            if row is None or row.next_fire_at != due_at:
                continue
            claimed = TriggerIndex.objects.filter(pk=pk, next_fire_at=due_at).update(
                next_fire_at=next_time(row.definition, now))
            if claimed != 1:
                continue  # another scheduler fired it
            fields = {"cronExpression": row.definition["cronExpression"],
                      "scheduledTime": int(due_at.timestamp() * 1000)}
            event = Event("cron", row.key, fields=fields, summary={"due": due_at.isoformat(), **fields})
            do_fire(Inbound(source="cron", delivery_id=f"{pk}@{due_at.isoformat()}"), event, [row])
            fired += 1
    return fired
