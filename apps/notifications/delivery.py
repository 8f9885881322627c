"""Sending deliveries: from jobs, one claim at a time, retried with back-off, every attempt recorded.

A delivery is claimed with a compare-and-set (PENDING and due → SENDING with
a lease), so of the jobs and sweeps that reach it only one sends it; a sender
that dies leaves the lease to expire and the sweep (``notifications.send-due``,
every few seconds) queues it again. Each try adds a :class:`DeliveryAttempt`;
a failure that a retry may cure is tried again after
``NOTIFICATION_RETRY_BACKOFF_SECONDS`` doubling up to 10 minutes, until
``NOTIFICATION_MAX_ATTEMPTS``; one that cannot (a 4xx, a bad address) fails
at once. Nothing here touches an execution: a target that is down never
slows or fails a pipeline, and one failing target never holds back another
(each delivery is its own job).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from rq import Queue

from apps.notifications.choices import DeliveryStatus
from apps.notifications.messages import summarize
from apps.notifications.models import Delivery, DeliveryAttempt, Subscription
from apps.notifications.transports import TRANSPORTS, TransportError
from apps.notifications.transports.slack import Busy
from apps.pipelines import enqueue
from apps.pipelines.models import Execution
from apps.pipelines.secrets import crypto
from apps.pipelines.secrets.references import names_in, reference_text
from apps.pipelines.secrets.store import SecretMissing, secret_values

logger = logging.getLogger(__name__)

SEND_DELIVERY = "apps.notifications.jobs.send_delivery"
# Served by every worker after the engine's queue (settings.RQ_BACKGROUND_QUEUES).
QUEUE_NAME = "notifications"
MAX_BACKOFF_SECONDS = 600
BUSY_RETRY_SECONDS = 1.0
SWEEP_BATCH = 500
JOB_OPTIONS = {"result_ttl": 0, "job_timeout": 120}


_queues: dict[int, Queue] = {}


def notification_queue() -> Queue:
    """The notifications' queue, on the engine queue's Redis connection (one per process)."""
    connection = enqueue.engine_queue().connection
    queue = _queues.get(id(connection))
    if queue is None:
        queue = _queues[id(connection)] = Queue(QUEUE_NAME, connection=connection)
    return queue


def enqueue_deliveries(ids: list[int]) -> None:
    """Queue a send job per delivery, in one round trip; with Redis down the sweep sends them later."""
    if not ids:
        return
    queue = notification_queue()
    try:
        with queue.connection.pipeline() as pipe:
            for delivery_id in ids:
                queue.enqueue(SEND_DELIVERY, delivery_id, pipeline=pipe, **JOB_OPTIONS)
            pipe.execute()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("Redis unreachable: %d notification(s) will be sent by the sweep", len(ids))


def _lease() -> timedelta:
    return timedelta(seconds=settings.NOTIFICATION_TIMEOUT_SECONDS * 3 + 30)


def claim(delivery_id: int) -> Delivery | None:
    """Take a due delivery for sending (PENDING, or SENDING with its lease run out); None when another has it."""
    now = timezone.now()
    claimable = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=DeliveryStatus.SENDING, lease_until__lt=now)
    taken = Delivery.objects.filter(claimable, pk=delivery_id).update(
        status=DeliveryStatus.SENDING, lease_until=now + _lease(), attempts=F("attempts") + 1)
    return Delivery.objects.select_related("application").get(pk=delivery_id) if taken else None


def resolve_address(delivery: Delivery) -> str:
    """The target's address with its secrets filled in (an application subscription's is stored encrypted)."""
    target = delivery.target
    if "subscription" in target:
        subscription = Subscription.objects.filter(pk=target["subscription"]).first()
        if subscription is None:
            raise TransportError("the application's subscription was deleted", retryable=False)
        return crypto.decrypt(subscription.address_ciphertext)
    address = str(target.get("address") or "")
    names, problems = names_in(address)
    if problems:
        raise TransportError(problems[0], retryable=False)
    if names:
        try:
            values = secret_values(delivery.application_id, names)
        except (SecretMissing, crypto.SecretsUnavailable) as error:
            raise TransportError(str(error), retryable=False) from None
        for name, value in values.items():
            address = address.replace(reference_text(name), value)
    return address


def send_delivery(delivery_id: int) -> str:
    """Send one delivery if it is due and not taken; returns its status afterwards (the job's entry point)."""
    delivery = claim(delivery_id)
    if delivery is None:
        return "not due"
    started = timezone.now()
    try:
        _send(delivery)
    except Busy:
        _postpone(delivery)
        return DeliveryStatus.PENDING
    except TransportError as error:
        return _failed(delivery, started, str(error), error.retryable)
    except crypto.SecretsUnavailable as error:
        return _failed(delivery, started, str(error), False)
    except Exception as error:  # noqa: BLE001  (a bug in a transport must not lose the delivery)
        logger.exception("notification %s failed", delivery.pk)
        return _failed(delivery, started, f"{type(error).__name__}: {error}", True)
    _record(delivery, started, "", succeeded=True)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(),
                                                   lease_until=None, last_error="")
    return DeliveryStatus.DELIVERED


def _send(delivery: Delivery) -> None:
    execution = Execution.objects.select_related("application").filter(id=delivery.execution_id).first()
    if execution is None:
        raise TransportError("the execution was deleted", retryable=False)
    transport = TRANSPORTS.get(delivery.target_type)
    if transport is None:
        raise TransportError(f"no transport for type {delivery.target_type!r}", retryable=False)
    stage_name = ""
    if delivery.stage_id is not None:
        stage_name = execution.stages.filter(id=delivery.stage_id).values_list("name", flat=True).first() or ""
    summary = summarize(execution, delivery.moment, delivery.target, stage_name)
    transport.send(delivery, summary, resolve_address(delivery))


def _postpone(delivery: Delivery) -> None:
    """Give back a claim that could not proceed (the Slack message is busy): no attempt is spent."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=F("attempts") - 1, lease_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=BUSY_RETRY_SECONDS))
    notification_queue().enqueue_in(timedelta(seconds=BUSY_RETRY_SECONDS), SEND_DELIVERY, delivery.pk,
                                      **JOB_OPTIONS)


def _record(delivery: Delivery, started, error: str, *, succeeded: bool, retryable: bool = False) -> None:
    DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=started,
                                   finished_at=timezone.now(), succeeded=succeeded, retryable=retryable,
                                   error=error[:2000])


def backoff_seconds(attempts: int) -> float:
    """The delay before the next try after ``attempts`` tries."""
    return min(settings.NOTIFICATION_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)


def _failed(delivery: Delivery, started, error: str, retryable: bool) -> str:
    _record(delivery, started, error, succeeded=False, retryable=retryable)
    if retryable and delivery.attempts < settings.NOTIFICATION_MAX_ATTEMPTS:
        delay = backoff_seconds(delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, lease_until=None, last_error=error[:2000],
            next_attempt_at=timezone.now() + timedelta(seconds=delay))
        try:
            notification_queue().enqueue_in(timedelta(seconds=delay), SEND_DELIVERY, delivery.pk, **JOB_OPTIONS)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass  # the sweep finds it when it is due
        return DeliveryStatus.PENDING
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, lease_until=None,
                                                   last_error=error[:2000])
    return DeliveryStatus.FAILED


def send_due() -> int:
    """The periodic sweep: queue the deliveries that are due and have no job (lost, or their lease ran out)."""
    now = timezone.now()
    # A retry's own delayed job fires at next_attempt_at; give it a moment before queueing another.
    grace = now - timedelta(seconds=5)
    due = Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=grace) | Q(
        status=DeliveryStatus.SENDING, lease_until__lt=now)
    ids = list(Delivery.objects.filter(due).order_by("next_attempt_at").values_list("id", flat=True)[:SWEEP_BATCH])
    enqueue_deliveries(ids)
    return len(ids)
