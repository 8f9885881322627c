"""Firing triggers: the matcher, whom a trigger acts as, and starting executions through the pipelines' service.

Every source — a webhook request, a registry notification or poll, a cron
tick, a pipeline's end read from the event log — ends in :func:`do_fire`
with a normalised :class:`~apps.triggers.kinds.base.Event` and the index rows
of its key that it authenticated. In one transaction it records the inbound
event, starts an execution per matching trigger with
:func:`apps.pipelines.services.do_start_execution` (so permission, audit and
``run_as`` hold as for a person's start; each start in a savepoint, so one
refusal spoils no other), records each match with its execution or why it
started none, and notes on each trigger's row when it last fired or was
refused. Executions are queued only when that transaction commits.

Whom a trigger acts as. With ``runAsUser`` — a service account the person
saving the pipeline may use (``checks.check_run_as_users``) — the execution
acts as that account, whose execute permission on the application is checked
at every start. Without one it acts as the built-in triggers identity
(``system:triggers``): it may start the pipeline whose own trigger fired,
since the application's writers put the trigger there, but it holds no grant
elsewhere, so a ``pipeline`` stage of that execution starting another
application's pipeline is refused unless that application grants it execute.
Both are audited as ``execution.started`` with source ``trigger``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.accounts.permissions import PermissionRefused
from apps.pipelines.checks import triggers_identity
from apps.pipelines.models import Execution
from apps.pipelines.problems import ActionRefused, InvalidDocument
from apps.pipelines.secrets.references import names_in
from apps.pipelines.secrets.store import SecretMissing, secret_values
from apps.pipelines.services import do_start_execution
from apps.triggers import artifacts
from apps.triggers.index import index_key
from apps.triggers.kinds.base import Event, get_kind
from apps.triggers.models import InboundEvent, Outcome, TriggerIndex, TriggerMatch

# Keys of a saved trigger that never reach the execution's trigger document.
PRIVATE_FIELDS = ("secret",)


@dataclass
class Inbound:
    """What is recorded of a request or an event, whatever became of it."""

    source: str
    delivery_id: str = ""
    client_ip: str | None = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""

    def row(self, outcome: str, status_code: int, reason: str = "", summary: dict | None = None) -> InboundEvent:
        return InboundEvent(
            uuid=uuid.uuid4(), source=self.source[:300], delivery_id=self.delivery_id[:200], client_ip=self.client_ip,
            headers=self.headers,
            body_sha256=hashlib.sha256(self.body).hexdigest() if self.body else "", body_size=len(self.body),
            outcome=outcome, status_code=status_code, reason=reason[:5000], summary=summary or {},
        )


def candidates(kind: str, keys: list[str]) -> list[TriggerIndex]:
    """The enabled triggers of ``kind`` indexed under any of ``keys``, with their pipelines: one query."""
    return list(
        TriggerIndex.objects.filter(type=kind, key__in=[index_key(key) for key in keys], enabled=True)
        .select_related("pipeline__application")
        .order_by("pipeline_id", "position")
    )


def trigger_secret(row: TriggerIndex) -> str | None:
    """The value of the trigger's ``secret`` (an application secret it references), or None when it has none."""
    written = row.definition.get("secret")
    if not written:
        return None
    names, _ = names_in(written)
    if not names:
        raise SecretMissing("the trigger's secret must be a ${#secret('name')} reference")
    return secret_values(row.application_id, names[:1])[names[0]]


def trigger_actor(row: TriggerIndex) -> Actor:
    """Whom the trigger's execution acts as: its ``runAsUser`` service account, or the built-in identity."""
    name = row.definition.get("runAsUser")
    if not name:
        return triggers_identity()
    user = get_user_model().objects.filter(username=name, service_account__isnull=False).first()
    if user is None or not user.is_active:
        raise PermissionRefused(f"runAsUser {name!r} is not an active service account")
    return Actor(username=user.get_username(), source=AuditSource.TRIGGER, user=user)


def execution_trigger(row: TriggerIndex, event: Event, actor: Actor) -> dict:
    """The execution's ``trigger``: the saved trigger, what the event says, and whom it runs as."""
    saved = {key: value for key, value in row.definition.items() if key not in PRIVATE_FIELDS}
    bound, resolved = artifacts.bind(row.pipeline, row.definition, event.artifacts)
    trigger = {**saved, **event.fields, "type": row.type, "user": actor.username, "artifacts": bound}
    if resolved:
        trigger["resolvedExpectedArtifacts"] = resolved
    return trigger


def _start(row: TriggerIndex, event: Event, event_id: str) -> tuple[Execution | None, str]:
    """Start the row's pipeline for the event: the execution, or why none started.

    Every refusal is raised before anything is written (the identity, the
    artifacts, then ``do_start_execution``'s checks), so a refused trigger
    leaves the others' starts in the transaction untouched.
    """
    try:
        actor = trigger_actor(row)
        trigger = {**execution_trigger(row, event, actor), "eventId": event_id}
        execution = do_start_execution(row.pipeline, parameters=event.parameters, trigger=trigger, user=actor,
                                       own_trigger=True)
        return execution, ""
    except (PermissionRefused, ActionRefused, InvalidDocument, SecretMissing, artifacts.ArtifactMissing) as error:
        return None, str(getattr(error, "message", "") or error)


def do_fire(inbound: Inbound, event: Event, rows: list[TriggerIndex],
            refused: list[tuple[TriggerIndex, str]] = ()) -> InboundEvent:
    """Record the event and start each matching trigger's pipeline; ``refused`` rows failed authentication.

    The event's row is written after the starts (its outcome known), in the
    same transaction; ``started`` on the returned row lists the executions.
    """
    kind = get_kind(event.type)
    record = inbound.row(Outcome.IGNORED, 200, summary=event.summary)
    # In the caller's transaction when there is one: a failure here fails it all, and a savepoint costs two trips.
    with transaction.atomic(savepoint=False):
        outcomes = [(row, None, reason) for row, reason in refused]
        for row in rows:
            if kind is not None and kind.mismatch(row.definition, event) is not None:
                continue
            outcomes.append((row, *_start(row, event, str(record.uuid))))
        started = [execution for _, execution, _ in outcomes if execution is not None]
        refusals = [refusal for _, _, refusal in outcomes if refusal]
        record.outcome = Outcome.STARTED if started else (Outcome.REFUSED if outcomes else Outcome.IGNORED)
        record.reason = "" if started else "; ".join(refusals)[:5000] or ("" if outcomes else "no enabled trigger "
                                                                                              "matches")
        record.save()
        matches = [_match(record, row, execution, refusal) for row, execution, refusal in outcomes]
        TriggerMatch.objects.bulk_create(matches)
        _note_on_triggers(matches)
    record.started = [str(execution.id) for execution in started]
    return record


def _match(record: InboundEvent, row: TriggerIndex, execution: Execution | None, refusal: str) -> TriggerMatch:
    return TriggerMatch(event=record, application_id=row.application_id, pipeline_id=row.pipeline_id,
                        pipeline_name=row.pipeline.name, trigger_position=row.position, execution=execution,
                        refusal=refusal)


def _note_on_triggers(matches: list[TriggerMatch]) -> None:
    """Each matched trigger's row says when it last fired, or why it was last refused."""
    now = timezone.now()
    for match in matches:
        rows = TriggerIndex.objects.filter(pipeline_id=match.pipeline_id, position=match.trigger_position)
        if match.execution is not None:
            rows.update(last_fired_at=now, last_execution_id=match.execution.id)
        else:
            rows.update(last_refused_at=now, last_refusal=match.refusal[:2000])


def do_refuse(inbound: Inbound, status_code: int, reason: str, rows: list[TriggerIndex] = (),
              outcome: str = Outcome.REFUSED) -> InboundEvent:
    """Record a request refused as a whole (malformed, forged, replayed, too big) with the triggers it named;
    or, with ``outcome`` IGNORED, one with nothing to do (a ping)."""
    with transaction.atomic():
        record = inbound.row(outcome, status_code, reason)
        record.save()
        matches = [_match(record, row, None, reason) for row in rows]
        TriggerMatch.objects.bulk_create(matches)
        _note_on_triggers(matches)
    return record
