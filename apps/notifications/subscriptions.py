"""From the event log to deliveries: which moment an event is, and which subscriptions want it.

The consumer ``notifications`` (registered in ``apps.py``) reads the durable
event log with its own cursor (``apps/pipelines/eventlog.py``). For a batch of
events it reads the executions, stages and application subscriptions they
concern in three queries, and writes one :class:`Delivery` per (event, target)
in the transaction that moves its cursor: a batch read twice after a crash
finds the rows already there (their ``key`` is unique) and makes none twice.
Sending happens later, in jobs (``delivery.py``), so a slow target never
holds the log's readers back.

Subscriptions, in Spinnaker's format:

* the pipeline's ``notifications``: ``{type, address, when: [...], message: {moment: {text}}}``;
* a stage's own ``notifications`` when the stage has ``sendNotifications: true``
  (``stage.*`` moments, and the judgment moments on a manual judgment);
* the application's subscriptions (:class:`Subscription`), for every pipeline;
* the Slack channel a ``/deploy`` came from, for that execution's progress: its message there follows the
  execution, and each top-level stage's start and end is a reply in the message's thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction

from apps.notifications.choices import JUDGMENT_MOMENTS, PIPELINE_MOMENTS, STAGE_MOMENTS, TargetType
from apps.notifications.models import Delivery, Subscription
from apps.pipelines.choices import Status
from apps.pipelines.models import Event, Execution, StageExecution

CONSUMER_NAME = "notifications"
FAILED = {Status.TERMINAL, Status.CANCELED, Status.STOPPED}
# A move into RUNNING from these is a resume or a retry, not a start.
NOT_A_START = {Status.RUNNING, Status.PAUSED, Status.SUSPENDED}
TRIGGER_MOMENTS = (*PIPELINE_MOMENTS, *JUDGMENT_MOMENTS)


def moment_of(event: Event) -> str | None:
    """The Spinnaker moment (``when``) an event is, or None when no subscription can ask for it."""
    if event.kind == "stage.judged":
        decision = str((event.payload or {}).get("decision"))
        return {"continue": "manualJudgmentContinue", "stop": "manualJudgmentStop"}.get(decision)
    if event.kind not in ("execution.status", "stage.status"):
        return None
    prefix = "pipeline" if event.kind == "execution.status" else "stage"
    if event.status == Status.RUNNING and event.previous_status not in NOT_A_START:
        if prefix == "stage" and event.stage_type == "manualJudgment":
            return "manualJudgment"
        return f"{prefix}.starting"
    if event.status == Status.SUCCEEDED:
        return f"{prefix}.complete"
    if event.status in FAILED or (prefix == "stage" and event.status == Status.FAILED_CONTINUE):
        return f"{prefix}.failed"
    return None


@dataclass(frozen=True)
class Wanted:
    """A subscription that wants an event: the target as written, and where it was written."""

    target: dict
    source: str


def _wants(notification, moment: str, moments: tuple[str, ...]) -> bool:
    if not isinstance(notification, dict) or moment not in moments:
        return False
    when = notification.get("when")
    return isinstance(when, list) and moment in when and notification.get("type") in TargetType.values


def _subscriptions(event: Event, moment: str, execution: Execution, stage: StageExecution | None,
                   application: list[Subscription]) -> Iterator[Wanted]:
    for notification in execution.definition.get("notifications") or []:
        if _wants(notification, moment, (*PIPELINE_MOMENTS, *JUDGMENT_MOMENTS)):
            yield Wanted(notification, "pipeline")
    definition = stage.definition if stage is not None else {}
    if definition.get("sendNotifications") is True:
        for notification in definition.get("notifications") or []:
            if _wants(notification, moment, (*STAGE_MOMENTS, *JUDGMENT_MOMENTS)):
                yield Wanted(notification, "stage")
    for subscription in application:
        if moment in subscription.when:
            target = {"type": subscription.type, "subscription": subscription.id, "message": subscription.message}
            yield Wanted(target, "application")
    channel = (execution.trigger or {}).get("slackChannel")
    if isinstance(channel, str) and channel:
        if moment in TRIGGER_MOMENTS:
            yield Wanted({"type": TargetType.SLACK, "address": channel}, "trigger")
        elif moment in STAGE_MOMENTS and stage is not None and stage.parent_id is None:
            # Each top-level stage's progress, as a reply in the execution's thread.
            yield Wanted({"type": TargetType.SLACK, "address": channel, "thread": True}, "trigger")


def _key(event: Event, target: dict) -> str:
    where = target.get("subscription") or target.get("address")
    return hashlib.sha256(f"{event.id}|{target.get('type')}|{where}".encode()).hexdigest()


def _hint(target: dict, hints: dict[int, str]) -> str:
    if "subscription" in target:
        return hints.get(target["subscription"], "")
    address = str(target.get("address") or "")
    return address if "#secret" in address or target.get("type") in ("slack", "email") else _url_hint(address)


def _url_hint(url: str) -> str:
    """A webhook URL as people may see it: its scheme and host, not the path that may hold a token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…" if rest else url[:40]


def deliveries_for(events: list[Event]) -> list[Delivery]:
    """The deliveries a batch of events makes (unsaved), reading what they concern in three queries."""
    wanted = [(event, moment) for event in events if (moment := moment_of(event)) is not None]
    if not wanted:
        return []
    executions = Execution.objects.only("id", "definition", "trigger").in_bulk({e.execution_id for e, _ in wanted})
    stage_ids = {e.stage_id for e, _ in wanted if e.stage_id is not None}
    stages = StageExecution.objects.only("id", "definition", "parent_id").in_bulk(stage_ids) if stage_ids else {}
    by_application: dict[int, list[Subscription]] = {}
    for subscription in Subscription.objects.filter(application_id__in={e.application_id for e, _ in wanted}):
        by_application.setdefault(subscription.application_id, []).append(subscription)
    hints = {s.id: s.address_hint for subs in by_application.values() for s in subs}
    rows: dict[str, Delivery] = {}
    for event, moment in wanted:
        execution = executions.get(event.execution_id)
        if execution is None:
            continue
        stage = stages.get(event.stage_id) if event.stage_id is not None else None
        for item in _subscriptions(event, moment, execution, stage, by_application.get(event.application_id, [])):
            key = _key(event, item.target)
            rows.setdefault(key, Delivery(
                key=key, event_id=event.id, moment=moment, application_id=event.application_id,
                execution_id=event.execution_id, stage_id=event.stage_id, target_type=item.target["type"],
                target=item.target, target_hint=_hint(item.target, hints)[:200], source=item.source,
            ))
    return list(rows.values())


def take_events(events: list[Event]) -> None:
    """The consumer's handler: write the batch's deliveries and queue their sending after commit."""
    rows = deliveries_for(events)
    if not rows:
        return
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [row.key for row in rows]
    ids = list(Delivery.objects.filter(key__in=keys, attempts=0).values_list("id", flat=True))

    def queue() -> None:
        from apps.notifications.delivery import enqueue_deliveries

        enqueue_deliveries(ids)

    transaction.on_commit(queue)
