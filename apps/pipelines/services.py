"""State changes of applications, pipelines and executions, shared by the command line, the API, the web and triggers.

``do_*`` functions take the acting user (an :class:`~apps.accounts.audit.Actor`,
or a plain name for the system) and change state and schedule what follows.
Before writing anything they ask ``checks.py`` whether the actor may
(:class:`~apps.accounts.permissions.PermissionRefused`, 403) and whether the
state allows it (:class:`ActionRefused`, 409), and validate their input
(:class:`~apps.pipelines.problems.InvalidDocument`, 400).
"""

from __future__ import annotations

import copy
import re
import uuid

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import Http404
from django.utils import timezone

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import EXECUTE, WRITE, PermissionRefused
from apps.accounts.services import do_grant_creator
from apps.pipelines import engine, enqueue, eventlog
from apps.pipelines.checks import (
    ActionRefused,
    acting_user,
    cancel_refusal,
    check_judge,
    check_permission,
    check_run_as_users,
    is_triggers_identity,
    judge_refusal,
    pause_refusal,
    refuse_if,
    restart_refusal,
    resume_refusal,
    run_as_fields,
    skip_refusal,
    waits_for_window,
    window_skip_refusal,
)
from apps.pipelines.definition import check_pipeline, identity_problems, resolve_parameters, validate_pipeline
from apps.pipelines.definition.trigger_types import trigger_secret_fields
from apps.pipelines.governance import APPLICATION_ACTIONS
from apps.pipelines.models import Application, Execution, Pipeline, PipelineRevision, StageExecution
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.secrets.references import mentions_secret, reference_text
from apps.pipelines.secrets.services import check_secret_references, do_set_secret
from apps.pipelines.stages.manual_judgment import CONTINUE, STOP, judgment_options

# --- Applications -------------------------------------------------------------------------------


def do_create_application(data: dict, *, user: Actor | str) -> Application:
    """Create an application; a person creating it gets read, write, execute and manage on it (a superuser needs none).

    A name already taken is refused with InvalidDocument at ``/name``.
    """
    actor = Actor.of(user)
    try:
        with transaction.atomic():
            application = Application.objects.create(**data)
            if actor.user is not None and not actor.user.is_superuser:
                do_grant_creator(application, APPLICATION_ACTIONS, actor=actor)
            record("application.created", actor, application=application, object_type="application",
                   object_id=application.pk, details={"name": application.name})
    except IntegrityError:
        raise InvalidDocument([Problem("/name", "an application with this name already exists")]) from None
    return application


def do_change_application(application: Application, data: dict, *, user: Actor | str) -> Application:
    """Update an application's owner and description (write), audited; its name never changes."""
    check_permission(user, WRITE, application)
    changed = {name: value for name, value in data.items() if getattr(application, name) != value}
    if not changed:
        return application
    with transaction.atomic():
        for name, value in changed.items():
            setattr(application, name, value)
        application.save()
        record("application.updated", user, application=application, object_type="application",
               object_id=application.pk, details={"changed": changed})
    return application


def do_delete_application(application: Application, *, user: Actor | str) -> None:
    """Delete an application that has no pipelines left (write); refused (409) otherwise."""
    check_permission(user, WRITE, application)
    with transaction.atomic():
        locked = Application.objects.select_for_update().get(pk=application.pk)
        remaining = locked.pipelines.count()
        if remaining:
            raise ActionRefused(f"application {locked.name!r} still has {remaining} pipeline(s); delete them first")
        record("application.deleted", user, application=locked, object_type="application", object_id=locked.pk,
               details={"name": locked.name})
        locked.delete()


# --- Pipelines ----------------------------------------------------------------------------------


# What an exported, non-UUID pipeline id may be to be kept: no spaces, slashes or control characters.
OPAQUE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")


def check_save_pipeline(user: Actor | str, application_name) -> None:
    """A person saves pipelines only into an existing application they may write in; operators anywhere."""
    if acting_user(user) is None:
        return
    application = Application.objects.named(application_name).first() if isinstance(
        application_name, str) else None
    if application is None:
        raise PermissionRefused(f"no application {application_name!r}: create it first", field="application")
    check_permission(user, WRITE, application, field="application")


def _taken_secret_name(pipeline_name: str, index: int, field: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", pipeline_name).strip("-._")[:60] or "pipeline"
    return f"{stem}-trigger-{index}-{field}"


def _take_plain_trigger_secrets(document: dict, application: Application, *, user: Actor | str) -> dict:
    """Move each plain value of a trigger field that holds a secret (a git trigger's ``secret``, as Spinnaker
    exports it) into the application's secrets, and reference it instead: every reader of the application
    reads the document, so the document never keeps the value. The secret is named after the pipeline, the
    trigger's position and the field (saving the same document again replaces its value). Changes ``document``
    in place; call it in the save's transaction."""
    triggers = document.get("triggers")
    for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        if not isinstance(trigger, dict):
            continue
        for field in trigger_secret_fields(trigger.get("type")):
            value = trigger.get(field)
            if not isinstance(value, str) or not value or mentions_secret(value):
                continue
            name = _taken_secret_name(str(document.get("name") or ""), index, field)
            try:
                do_set_secret(application, name, value, user=user)
            except InvalidDocument as refused:
                where = f"/triggers/{index}/{field}"
                raise InvalidDocument([Problem(where, problem.message) for problem in refused.problems]) from None
            trigger[field] = reference_text(name)
    return document


def do_save_pipeline(document: dict, *, user: Actor | str = "") -> tuple[Pipeline, bool]:
    """Create or update the pipeline named by the document's ``application`` and ``name``.

    An operator's save creates the application if needed. Every save keeps a
    revision. Returns the pipeline and whether it was created.
    """
    actor = Actor.of(user)
    if isinstance(document, dict):
        check_save_pipeline(actor, document.get("application"))
    document = copy.deepcopy(check_pipeline(document))
    check_secret_references(document)
    check_run_as_users(actor, document)
    with transaction.atomic():
        application = Application.objects.named(document["application"]).first()
        if application is None:
            application = Application.objects.create(name=document["application"])
        document["application"] = application.name  # as it was first written, whatever case this one uses
        _take_plain_trigger_secrets(document, application, user=actor)
        pipeline = (
            Pipeline.objects.select_for_update().filter(application=application, name=document["name"]).first()
        )
        created = pipeline is None
        if created:
            pipeline = Pipeline(id=_reusable_id(document.get("id")), application=application, name=document["name"])
            document["id"] = _opaque_id(document.get("id")) or str(pipeline.id)
        else:
            document["id"] = pipeline.spinnaker_id
        pipeline.definition = document
        pipeline.updated_by = actor.username
        pipeline.save()
        last = pipeline.revisions.aggregate(last=Max("number"))["last"] or 0
        PipelineRevision.objects.create(pipeline=pipeline, number=last + 1, definition=document,
                                        created_by=actor.username)
        record("pipeline.saved", actor, application=application, object_type="pipeline", object_id=pipeline.id,
               details={"name": pipeline.name, "revision": last + 1, "created": created})
    return pipeline, created


def do_update_pipeline(pipeline: Pipeline, document: dict, *, user: Actor | str) -> Pipeline:
    """Save a new revision of an existing pipeline (write); it keeps its application, name and id.

    Every problem with the document is refused at once (InvalidDocument); a
    pipeline deleted meanwhile is a 404, and nothing is saved.
    """
    check_permission(user, WRITE, pipeline.application)
    problems = validate_pipeline(document) + identity_problems(document, pipeline)
    if problems:
        raise InvalidDocument(problems)
    with transaction.atomic():
        saved, created = do_save_pipeline(document, user=user)
        if created:
            raise Http404("The pipeline was deleted meanwhile.")
    return saved


def do_restore_revision(pipeline: Pipeline, number: int, *, user: Actor | str) -> Pipeline:
    """Save revision ``number``'s document again, as the newest revision (write); no such revision: ``/revision``."""
    check_permission(user, WRITE, pipeline.application)
    revision = pipeline.revisions.filter(number=number).first()
    if revision is None:
        raise InvalidDocument([Problem("/revision", f"no revision {number} of this pipeline")])
    document = {**revision.definition, "application": pipeline.application.name, "name": pipeline.name}
    return do_update_pipeline(pipeline, document, user=user)


def do_delete_pipeline(pipeline: Pipeline, *, user: Actor | str) -> None:
    """Delete a pipeline and its revisions (write); its executions stay, unlinked, for the record."""
    check_permission(user, WRITE, pipeline.application)
    with transaction.atomic():
        record("pipeline.deleted", user, application=pipeline.application, object_type="pipeline",
               object_id=pipeline.id, details={"name": pipeline.name})
        pipeline.delete()


def _opaque_id(candidate) -> str | None:
    """An exported id that is not a UUID (``pipeline1``), kept as the pipeline's Spinnaker id when it is free.

    Spinnaker's ids are opaque strings: a ``pipeline`` stage of another exported pipeline may name it.
    """
    if not isinstance(candidate, str) or not OPAQUE_ID.fullmatch(candidate):
        return None
    try:
        uuid.UUID(candidate)
        return None  # a UUID is the pipeline's own (see _reusable_id)
    except ValueError:
        pass
    return None if Pipeline.objects.filter(definition__id=candidate).exists() else candidate


def _reusable_id(candidate) -> uuid.UUID:
    """Keep the id a pipeline had elsewhere (a Spinnaker export) when it is a free UUID."""
    try:
        wanted = uuid.UUID(str(candidate))
    except (TypeError, ValueError):
        return uuid.uuid4()
    return uuid.uuid4() if Pipeline.objects.filter(id=wanted).exists() else wanted


# --- Executions ---------------------------------------------------------------------------------


def _stage_rows(execution: Execution, definitions: list[dict]) -> list[StageExecution]:
    """The execution's stages, unsaved, each knowing the stages that wait on it."""
    downstream: dict[str, list[str]] = {str(stage["refId"]): [] for stage in definitions}
    for stage in definitions:
        for requisite in stage.get("requisiteStageRefIds") or []:
            downstream[str(requisite)].append(str(stage["refId"]))
    return [
        StageExecution(
            execution=execution,
            ref_id=str(stage["refId"]),
            position=position,
            type=stage["type"],
            name=stage.get("name") or stage["type"],
            requisite_ref_ids=[str(ref) for ref in stage.get("requisiteStageRefIds") or []],
            next_ref_ids=downstream[str(stage["refId"])],
            definition=stage,
        )
        for position, stage in enumerate(definitions)
    ]


def check_start_execution(user: Actor | str, pipeline: Pipeline, *, own_trigger: bool = False) -> None:
    """Starting a pipeline needs execute on its application, and a pipeline that is not disabled.

    ``own_trigger``: one of the pipeline's own triggers starts it as the
    built-in triggers identity (``checks.TRIGGERS_IDENTITY``), which needs no
    grant for that one pipeline — its writers put the trigger there — and
    holds none elsewhere. A ``runAsUser`` is checked like anyone.
    """
    if not (own_trigger and is_triggers_identity(user)):
        check_permission(user, EXECUTE, pipeline.application)
    if pipeline.definition.get("disabled") is True:
        raise ActionRefused(f"pipeline {pipeline} is disabled")


def do_start_execution(
    pipeline: Pipeline,
    *,
    parameters: dict | None = None,
    trigger: dict | None = None,
    user: Actor | str = "",
    parent_stage: StageExecution | None = None,
    own_trigger: bool = False,
) -> Execution:
    """Create an execution of the pipeline's current definition and queue its start.

    Parameters are checked against ``parameterConfig`` before anything is
    written; a refusal raises InvalidDocument naming each parameter. The
    execution acts as ``user`` (see ``checks.run_as_fields``); a child
    started by a ``pipeline`` stage is started with its parent's identity.
    """
    actor = Actor.of(user)
    check_start_execution(actor, pipeline, own_trigger=own_trigger)
    definition = copy.deepcopy(pipeline.definition)
    # A child pipeline is passed its parent's parameters even when it does not declare them (as in Orca).
    resolved = resolve_parameters(definition, parameters or {}, pass_undeclared=parent_stage is not None)
    trigger = {"type": "manual", "user": actor.username or "anonymous", **(trigger or {}), "parameters": resolved}
    with transaction.atomic():
        execution = Execution.objects.create(
            application=pipeline.application,
            pipeline=pipeline,
            name=pipeline.name,
            definition=definition,
            trigger=trigger,
            parameters=resolved,
            started_by=actor.username,
            **run_as_fields(actor),
            limit_concurrent=definition.get("limitConcurrent") is True,
            parent_stage=parent_stage,
        )
        StageExecution.objects.bulk_create(_stage_rows(execution, definition.get("stages") or []))
        details = {"pipeline": pipeline.name, "trigger": trigger.get("type")}
        if parent_stage is not None:
            details["parentExecution"] = str(parent_stage.execution_id)
        record("execution.started", actor, application=pipeline.application, object_type="execution",
               object_id=execution.id, details=details)
        transaction.on_commit(lambda: enqueue.enqueue_start_execution(execution.id))
    return execution


def _locked_stage(execution_id, ref_id: str) -> StageExecution:
    """The stage ``ref_id`` of the execution, locked for the caller's transaction."""
    stage = (
        StageExecution.objects.select_for_update()
        .select_related("execution")
        .filter(execution_id=execution_id, ref_id=ref_id)
        .first()
    )
    if stage is None:
        raise ActionRefused(f"execution {execution_id} has no stage with refId {ref_id!r}")
    return stage


def _run_now(stage: StageExecution, fields: list[str]) -> None:
    """Save the locked stage and run its task at once, after commit."""
    dispatch = engine.Dispatch()
    engine.schedule_now(stage, dispatch, fields=tuple(fields))
    dispatch.send_on_commit()


def do_judge_stage(
    execution_id, ref_id: str, *, decision: str, user: Actor | str, judgment_input: str | None = None,
    comment: str = "",
) -> StageExecution:
    """Record a person's manual judgment (continue or stop), and their comment if any; the stage then finishes.

    Needs execute on the application and, when the stage names
    ``selectedStageRoles``, membership of one of them. An input the stage
    does not offer is refused at ``/input`` (InvalidDocument). The comment is
    kept in the stage's context as ``judgmentComment``, beside the input.
    """
    actor = Actor.of(user)
    if decision not in (CONTINUE, STOP):
        raise ActionRefused(f"judgment must be {CONTINUE!r} or {STOP!r}, not {decision!r}")
    with transaction.atomic():
        stage = _locked_stage(execution_id, ref_id)
        check_judge(actor, stage.execution, stage)
        refuse_if(judge_refusal(stage))
        options = judgment_options(stage.context)
        if judgment_input not in (None, "") and options and judgment_input not in options:
            raise InvalidDocument([Problem("/input", f"{judgment_input!r} is not one of: {', '.join(options)}")])
        stage.context = {
            **stage.context,
            "judgmentStatus": decision,
            "judgmentInput": judgment_input or None,
            "judgmentComment": comment.strip() or None,
            "lastModifiedBy": actor.username,
            "lastModified": {"user": actor.username, "time": int(timezone.now().timestamp() * 1000)},
        }
        _run_now(stage, ["context"])
        judged = {"decision": decision, "input": judgment_input}
        execution = _audit_stage_action("stage.judged", actor, stage, judged)
        if comment.strip():
            judged_comment = {"decision": decision, "comment": comment.strip()}
            _audit_stage_action("stage.judgment_comment", actor, stage, judged_comment)
            judged["comment"] = comment.strip()
        # One event for the judgment, its comment included (one INSERT in the transaction).
        eventlog.record_action("stage.judged", execution, stage, actor=actor.username, payload=judged)
    return stage


def _audit_stage_action(action: str, actor: Actor, stage: StageExecution, details: dict | None = None) -> Execution:
    """Audit a person's action on a stage, in the caller's transaction; returns the stage's execution."""
    execution = Execution.objects.select_related("application").get(id=stage.execution_id)
    record(action, actor, application=execution.application, object_type="execution", object_id=execution.id,
           details={"stage": stage.ref_id, "stageName": stage.name, **(details or {})})
    return execution


def _record_stage_action(action: str, actor: Actor, stage: StageExecution, details: dict | None = None) -> None:
    """Audit a person's action on a stage and add it to the event log, in the caller's transaction."""
    execution = _audit_stage_action(action, actor, stage, details)
    eventlog.record_action(action, execution, stage, actor=actor.username, payload=details)


def do_skip_wait(execution_id, ref_id: str, *, user: Actor | str) -> StageExecution:
    """End a running wait early, as a person may in Spinnaker ("skip remaining wait") — execute.

    A stage of any type that waits for its execution window is let through instead.
    """
    with transaction.atomic():
        stage = _locked_stage(execution_id, ref_id)
        check_permission(user, EXECUTE, stage.execution)
        if waits_for_window(stage):
            return do_skip_execution_window(execution_id, ref_id, user=user)
        refuse_if(skip_refusal(stage))
        actor = Actor.of(user)
        stage.context = {**stage.context, "skipRemainingWait": True, "skippedBy": actor.username}
        _run_now(stage, ["context"])
        _record_stage_action("stage.wait_skipped", actor, stage)
    return stage


def _locked_execution(execution_id) -> Execution:
    execution = engine.lock_execution(execution_id)
    if execution is None:
        raise ActionRefused(f"no execution {execution_id}")
    return execution


def _act(execution_id, action, audit_action: str, user: Actor | str, details: dict | None = None) -> Execution:
    """Check execute, then run ``action(execution, dispatch)`` on the locked execution in one transaction, audited."""
    with transaction.atomic():
        execution = _locked_execution(execution_id)
        check_permission(user, EXECUTE, execution)
        dispatch = engine.Dispatch()
        # Noted first, so the log reads "alice canceled" before the stages it stopped.
        dispatch.events.note(audit_action, execution, actor=Actor.of(user).username, payload=details)
        action(execution, dispatch)
        record(audit_action, user, application=execution.application, object_type="execution",
               object_id=execution.id, details=details)
        dispatch.send_on_commit()
    return execution


def do_cancel_execution(execution_id, *, user: Actor | str, reason: str = "") -> Execution:
    """Cancel an execution that has not ended: running stages stop and their cancel logic runs."""

    def cancel(execution, dispatch):
        refuse_if(cancel_refusal(execution))
        engine.cancel_execution(execution, dispatch, user=Actor.of(user).username, reason=reason)

    return _act(execution_id, cancel, "execution.canceled", user, {"reason": reason})


def do_pause_execution(execution_id, *, user: Actor | str) -> Execution:
    """Pause a running execution: nothing new starts until it is resumed."""

    def pause(execution, dispatch):
        refuse_if(pause_refusal(execution))
        engine.pause_execution(execution, dispatch)

    return _act(execution_id, pause, "execution.paused", user)


def _act_as(execution: Execution, user: Actor | str) -> None:
    """From now on the locked execution acts as ``user``, who restarts or resumes it."""
    fields = run_as_fields(user)
    for name, value in fields.items():
        setattr(execution, name, value)
    execution.save(update_fields=list(fields))


def do_resume_execution(execution_id, *, user: Actor | str) -> Execution:
    """Resume a paused execution where it stopped; from now on it acts as the person resuming it."""

    def resume(execution, dispatch):
        refuse_if(resume_refusal(execution))
        _act_as(execution, user)
        engine.resume_execution(execution, dispatch)

    return _act(execution_id, resume, "execution.resumed", user)


def do_restart_stage(execution_id, ref_id: str, *, user: Actor | str) -> Execution:
    """Run a finished stage and everything after it again, keeping what ran before it.

    From now on the execution acts as the person restarting it: a restarted
    ``pipeline`` stage starts its child as, and authorized as, the restarter.
    """

    def restart(execution, dispatch):
        refuse_if(restart_refusal(execution, list(execution.stages.all()), ref_id))
        _act_as(execution, user)
        engine.restart_stage(execution, ref_id, dispatch, user=Actor.of(user).username)

    return _act(execution_id, restart, "stage.restarted", user, {"stage": ref_id})


def do_skip_execution_window(execution_id, ref_id: str, *, user: Actor | str) -> StageExecution:
    """Let a stage that waits for its execution window run now (execute)."""
    with transaction.atomic():
        stage = _locked_stage(execution_id, ref_id)
        check_permission(user, EXECUTE, stage.execution)
        refuse_if(window_skip_refusal(stage))
        actor = Actor.of(user)
        stage.context = {**stage.context, "skipExecutionWindow": True, "skippedBy": actor.username}
        _run_now(stage, ["context"])
        _record_stage_action("stage.window_skipped", actor, stage)
    return stage
