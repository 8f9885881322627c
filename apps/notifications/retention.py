"""Pruning what notifications keep: deliveries, Slack requests and link codes past their time (hourly)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import ChatRequest, Delivery, SlackLinkCode

PRUNE_BATCH = 5000


def prune(now=None) -> int:
    """Delete final deliveries and Slack requests older than EVENT_RETENTION_DAYS, and expired link codes.

    Bounded: at most PRUNE_BATCH rows of each per run; the next run goes on. Returns how many went.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.EVENT_RETENTION_DAYS)
    final = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)
    old = list(Delivery.objects.filter(created_at__lt=cutoff, status__in=final).values_list("id", flat=True)
               [:PRUNE_BATCH])
    deleted = Delivery.objects.filter(id__in=old).delete()[0] if old else 0
    requests = list(ChatRequest.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:PRUNE_BATCH])
    deleted += ChatRequest.objects.filter(id__in=requests).delete()[0] if requests else 0
    return deleted + SlackLinkCode.objects.filter(expires_at__lt=now).delete()[0]
