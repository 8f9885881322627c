"""What each action on a pipeline or an execution needs, decided here once: a permission, then a legal state.

The service functions (``services.py``) call these before they change
anything; the pages and the API ask the same functions what to offer
(:func:`allowed_actions`, in bulk for a whole page). Two kinds of refusal:

- :class:`~apps.accounts.permissions.PermissionRefused` — the acting user may
  not (403 from the API and the pages);
- :class:`ActionRefused` — the object's state does not allow it (409).

An actor with no user account (the command line, the system) is an
operator identity and passes every permission check; the state rules hold
for everyone.

An execution acts as whoever last started, restarted or resumed it
(:func:`run_as_fields`): what its stages start elsewhere — a child pipeline —
is authorized as that identity at the moment it starts
(:func:`execution_actor`, :func:`child_start_refusal`). Only an execution
started by an operator acts as the system, and that is recorded explicitly
(``run_as_system``); an account that was deleted or deactivated since is
refused, never taken for the system.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.accounts.permissions import EXECUTE, PermissionRefused, can, in_any_role, require
from apps.pipelines.choices import ACTIVE, COMPLETE, Status
from apps.pipelines.definition.trigger_types import get_trigger_type
from apps.pipelines.engine import restart_scope
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.problems import ActionRefused
from apps.pipelines.stages import get_stage_type
from apps.pipelines.stages.manual_judgment import judge_roles


def acting_user(actor: Actor | str | None):
    """The account whose permissions an action is checked against; None for an operator identity."""
    return Actor.of(actor).user


def check_permission(actor: Actor | str | None, action: str, obj, *, field: str = "") -> None:
    """Refuse (PermissionRefused) an actor whose user may not ``action`` on ``obj``; operators always may."""
    user = acting_user(actor)
    if user is not None:
        require(user, action, obj, field=field)


# --- Whom an execution acts as ------------------------------------------------------------------


def run_as_fields(actor: Actor | str | None) -> dict:
    """The execution fields that make it act as ``actor``, who starts, restarts or resumes it."""
    actor = Actor.of(actor)
    return {"run_as": actor.user, "run_as_name": actor.username, "run_as_system": actor.user is None}


def execution_actor(execution: Execution) -> Actor:
    """The identity ``execution`` acts as now, its account read afresh.

    PermissionRefused when that account was deleted or deactivated: a
    vanished identity is refused, never taken for the system.
    """
    name = execution.run_as_name or execution.started_by
    if execution.run_as_system:
        return Actor(username=name or "system", source=AuditSource.SYSTEM)
    user = get_user_model().objects.filter(pk=execution.run_as_id).first() if execution.run_as_id else None
    if user is None:
        raise PermissionRefused(f"{name or 'the user'} who started this execution no longer exists")
    if not user.is_active:
        raise PermissionRefused(f"{user.get_username()} who started this execution is inactive")
    return Actor(username=user.get_username(), source=AuditSource.TRIGGER, user=user)


def child_start_refusal(execution: Execution, pipeline: Pipeline) -> str | None:
    """Why ``execution``'s identity may not start ``pipeline`` now (None: it may)."""
    try:
        actor = execution_actor(execution)
    except PermissionRefused as refused:
        return refused.message
    if actor.user is not None and not can(actor.user, EXECUTE, pipeline.application):
        return f"{actor.username} may not run pipelines of application {pipeline.application.name!r}"
    return None


# --- Whom a trigger acts as ---------------------------------------------------------------------

# The account a trigger without ``runAsUser`` acts as: no password, no grants of its own. Its name cannot
# be taken by a person (user names have no colon), so the audit log and ``trigger.user`` tell it apart.
TRIGGERS_IDENTITY = "system:triggers"


def triggers_identity() -> Actor:
    """The built-in identity of triggers without ``runAsUser`` (its account made on first use)."""
    user, created = get_user_model().objects.get_or_create(username=TRIGGERS_IDENTITY)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return Actor(username=TRIGGERS_IDENTITY, source=AuditSource.TRIGGER, user=user)


def is_triggers_identity(actor: Actor | str | None) -> bool:
    """Whether the actor is the built-in triggers identity."""
    user = acting_user(actor)
    return user is not None and user.get_username() == TRIGGERS_IDENTITY


def check_run_as_users(actor: Actor | str | None, document: dict) -> None:
    """Each trigger's ``runAsUser`` names an active service account the saver may use (a member of its team),
    and the saver may use what the trigger names (its type's ``check_saver``: a registry account it reads).

    Refused with PermissionRefused at the trigger's field; operators may name any service account.
    """
    from apps.accounts.models import ServiceAccount

    listed = document.get("triggers")
    triggers: list = listed if isinstance(listed, list) else []
    user = acting_user(actor)
    for index, trigger in enumerate(triggers):
        kind = get_trigger_type(trigger.get("type")) if isinstance(trigger, dict) else None
        if user is not None and kind is not None and kind.check_saver is not None:
            kind.check_saver(user, trigger, f"/triggers/{index}")
        name = trigger.get("runAsUser") if isinstance(trigger, dict) else None
        if not name:
            continue
        pointer = f"/triggers/{index}/runAsUser"
        account = ServiceAccount.objects.select_related("user", "owner").filter(user__username=name).first()
        if account is None or not account.user.is_active:
            raise PermissionRefused(f"{name!r} is not an active service account", field=pointer)
        if user is not None and not user.is_superuser and not user.groups.filter(pk=account.owner_id).exists():
            raise PermissionRefused(f"only members of {account.owner.name!r} may run pipelines as {name!r}",
                                    field=pointer)


# --- State rules: each returns why the move is illegal, or None ---------------------------------


def cancel_refusal(execution: Execution) -> str | None:
    """Only an execution that has not ended can be canceled."""
    if execution.status in COMPLETE:
        return f"execution {execution.id} already ended {execution.status}"
    return None


def pause_refusal(execution: Execution) -> str | None:
    """Only a running execution can be paused."""
    if execution.status != Status.RUNNING:
        return f"execution {execution.id} is {execution.status}; only a RUNNING one can be paused"
    return None


def resume_refusal(execution: Execution) -> str | None:
    """Only a paused execution can be resumed."""
    if execution.status != Status.PAUSED:
        return f"execution {execution.id} is {execution.status}, not PAUSED"
    return None


def restart_refusal(execution: Execution, stages: list[StageExecution], ref_id: str) -> str | None:
    """Only a finished stage restarts; in a running execution, only one with nothing active after it."""
    by_ref = {stage.ref_id: stage for stage in stages}
    stage = by_ref.get(ref_id)
    if stage is None:
        return f"execution {execution.id} has no stage with refId {ref_id!r}"
    if stage.status not in COMPLETE:
        return f"stage {stage.name!r} is {stage.status}; only a finished stage can be restarted"
    if execution.status in COMPLETE:
        return None
    if execution.status != Status.RUNNING:
        return f"execution {execution.id} is {execution.status}"
    # What the restart would rerun or reopen: for a synthetic stage, its parents too.
    if any(by_ref[ref].status in ACTIVE for ref in restart_scope(ref_id, stages)):
        return f"stages after {stage.name!r} are still running"
    return None


def waits_for_window(stage: StageExecution) -> bool:
    """Whether the stage waits for its execution window (a skip lets it through instead of ending a wait)."""
    return bool((stage.context.get("executionWindow") or {}).get("waiting"))


def skip_refusal(stage: StageExecution) -> str | None:
    """A running wait, or any running stage waiting for its execution window, may be let through."""
    if not waits_for_window(stage):
        stage_type = get_stage_type(stage.type)
        if stage_type is None or not stage_type.skippable:
            return f"stage {stage.name!r} is a {stage.type} stage, which cannot be skipped"
    return running_refusal(stage)


def window_skip_refusal(stage: StageExecution) -> str | None:
    """Only a running stage waiting for its execution window can be let through."""
    if not waits_for_window(stage):
        return f"stage {stage.name!r} is not waiting for an execution window"
    return running_refusal(stage)


def running_refusal(stage: StageExecution) -> str | None:
    """A person acts only on a running stage."""
    if stage.status != Status.RUNNING:
        return f"stage {stage.name!r} is {stage.status}, not RUNNING"
    return None


def judge_refusal(stage: StageExecution) -> str | None:
    """A running manual judgment nobody has judged yet may be judged."""
    if stage.type != "manualJudgment":
        return f"stage {stage.name!r} is a {stage.type} stage, not a manual judgment"
    if stage.status != Status.RUNNING:
        return f"stage {stage.name!r} is {stage.status}, not RUNNING"
    if stage.context.get("judgmentStatus"):
        return f"stage {stage.name!r} was already judged"
    return None


def refuse_if(reason: str | None) -> None:
    """Raise ActionRefused with ``reason`` when there is one."""
    if reason is not None:
        raise ActionRefused(reason)


# --- Who may judge --------------------------------------------------------------------------------


def may_judge(user, stage: StageExecution, answers: dict | None = None) -> bool:
    """Whether ``user`` is in one of the stage's ``selectedStageRoles`` (any user, when it names none).

    ``answers`` caches the answer per distinct set of roles, for a page of stages.
    """
    roles = tuple(judge_roles(stage))
    if answers is None:
        return in_any_role(user, list(roles))
    if roles not in answers:
        answers[roles] = in_any_role(user, list(roles))
    return answers[roles]


def check_judge(actor: Actor | str | None, execution: Execution, stage: StageExecution) -> None:
    """Judging needs execute on the application and, when the stage names roles, membership of one."""
    check_permission(actor, EXECUTE, execution)
    user = acting_user(actor)
    if user is not None and not may_judge(user, stage):
        raise PermissionRefused(f"Only members of {', '.join(judge_roles(stage))} may judge this stage.")


# --- What a page may offer ------------------------------------------------------------------------


@dataclass
class AllowedActions:
    """What one user may do to one execution now: each set holds stage refIds."""

    execute: bool = False
    cancel: bool = False
    pause: bool = False
    resume: bool = False
    restart: set[str] = field(default_factory=set)
    skip: set[str] = field(default_factory=set)
    judge: set[str] = field(default_factory=set)


def allowed_actions(user, execution: Execution, stages: list[StageExecution]) -> AllowedActions:
    """Ask the rules above for every action on the execution and its stages: one permission query, one per role set."""
    allowed = AllowedActions(execute=can(user, EXECUTE, execution))
    if not allowed.execute:
        return allowed
    allowed.cancel = cancel_refusal(execution) is None
    allowed.pause = pause_refusal(execution) is None
    allowed.resume = resume_refusal(execution) is None
    answers: dict = {}
    for stage in stages:
        if restart_refusal(execution, stages, stage.ref_id) is None:
            allowed.restart.add(stage.ref_id)
        if skip_refusal(stage) is None:
            allowed.skip.add(stage.ref_id)
        if judge_refusal(stage) is None and may_judge(user, stage, answers):
            allowed.judge.add(stage.ref_id)
    return allowed
