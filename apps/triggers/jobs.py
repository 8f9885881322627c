"""The triggers' background work: cron, registry polls, pruning (periodic jobs) and pipeline ends (the event log)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.pipelines.periodic import register_periodic
from apps.triggers.models import InboundEvent, SeenDelivery

PRUNE_BATCH = 5000


def prune_inbound_events() -> int:
    """Delete inbound events (with their matches) and seen deliveries older than TRIGGER_EVENT_RETENTION_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.TRIGGER_EVENT_RETENTION_DAYS)
    old = list(InboundEvent.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH])
    deleted = InboundEvent.objects.filter(pk__in=old).delete()[0] if old else 0
    SeenDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def register_jobs() -> None:
    from apps.triggers import completion, polling, schedule

    register_periodic("triggers.prune-events", prune_inbound_events, every=3600)
    register_periodic("triggers.cron", schedule.fire_due, every=1)
    register_periodic("triggers.poll-registries", polling.poll_registries,
                      every=settings.TRIGGER_POLL_INTERVAL_SECONDS)
    completion.register()
