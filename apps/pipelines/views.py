"""The dashboard's pipeline pages: applications, an application's executions, an execution, the pipeline editor.

Every lookup goes through ``restrict(user, READ)`` (anything else is a 404)
and every change through the ``do_*`` service functions, after the same
``can(user, action, application)`` check the API makes (403 otherwise): a
button the viewer may not use is not shown, and its endpoint refuses anyway.
Pages that change live render a fragment of themselves (``?fragment=...``)
that ``static/js/live.js`` fetches to catch up after a reconnect.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import F, OuterRef, Prefetch, Q, Subquery, Window
from django.db.models.fields.json import KT
from django.db.models.functions import RowNumber
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.audit import Actor, record
from apps.accounts.models import AuditSource
from apps.accounts.permissions import EXECUTE, READ, WRITE, can, in_any_role
from apps.pipelines.choices import ACTIVE, COMPLETE, Status
from apps.pipelines.definition import identity_problems, unified_diff
from apps.pipelines.engine import downstream_closure
from apps.pipelines.filtersets import ExecutionFilterSet
from apps.pipelines.forms import (
    CancelForm,
    DiffForm,
    JudgmentForm,
    PipelineEditorForm,
    RestoreForm,
    RunPipelineForm,
    dump_document,
)
from apps.pipelines.models import Application, Execution, Pipeline, StageExecution, epoch_millis
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import (
    ActionRefused,
    do_cancel_execution,
    do_judge_stage,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_save_pipeline,
    do_skip_wait,
    do_start_execution,
)
from apps.pipelines.stages import get_stage_type
from apps.pipelines.stages.manual_judgment import judge_roles, judgment_options

APPLICATIONS_PER_PAGE = 50
RECENT_EXECUTIONS = 10
REVISIONS_SHOWN = 50
EXECUTION_COLUMNS = ("id", "application_id", "pipeline_id", "name", "status", "created_at", "start_time",
                     "end_time", "started_by")
STAGE_BAR_COLUMNS = ("id", "execution_id", "position", "ref_id", "name", "type", "status", "start_time", "end_time")


# --- Shared helpers ------------------------------------------------------------------------------


def readable(queryset, user, **lookup):
    """The object ``lookup`` finds among those ``user`` may read; 404 for anything else."""
    return get_object_or_404(queryset.restrict(user, READ), **lookup)


def require(user, action: str, application: Application) -> None:
    """Refuse (403) a user who may read the application but not ``action`` in it."""
    if not can(user, action, application):
        raise PermissionDenied(f"You may not {action} in application {application}.")


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


# --- Applications --------------------------------------------------------------------------------


def pipelines_with_latest_execution():
    """Pipelines (without their documents) annotated with their latest execution's id and status."""
    latest = Execution.objects.filter(pipeline=OuterRef("pk")).order_by("-created_at")
    return (
        Pipeline.objects.only("id", "name", "application_id")
        .annotate(latest_id=Subquery(latest.values("id")[:1]), latest_status=Subquery(latest.values("status")[:1]))
        .order_by("name")
    )


@login_required
def applications(request):
    """Every application the user may read, with its pipelines and the status of each one's latest execution."""
    query = request.GET.get("q", "").strip()
    found = Application.objects.restrict(request.user, READ)
    if query:
        matches = Q(name__icontains=query) | Q(description__icontains=query) | Q(owner__icontains=query)
        found = found.filter(matches | Q(id__in=Pipeline.objects.filter(name__icontains=query).values("application")))
    page = Paginator(found.order_by("name"), APPLICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(
        page.object_list.prefetch_related(Prefetch("pipelines", queryset=pipelines_with_latest_execution()))
    )
    return render(request, "pipelines/applications.html", {"page": page, "query": query})


# --- One application ------------------------------------------------------------------------------


def recent_executions(queryset, per_pipeline: int = RECENT_EXECUTIONS) -> dict:
    """The newest ``per_pipeline`` executions of each pipeline in ``queryset``, by pipeline id, stages loaded.

    Two queries whatever the number of pipelines and executions: a window
    function ranks each pipeline's executions, and the stages are prefetched
    with only the columns a stage bar needs.
    """
    stages = StageExecution.objects.only(*STAGE_BAR_COLUMNS).order_by("position")
    ranked = (
        queryset.filter(pipeline__isnull=False)
        .only(*EXECUTION_COLUMNS)
        .annotate(
            trigger_type=KT("trigger__type"),
            rank=Window(RowNumber(), partition_by=[F("pipeline_id")], order_by=F("created_at").desc()),
        )
        .filter(rank__lte=per_pipeline)
        .order_by("pipeline_id", "-created_at")
        .prefetch_related(Prefetch("stages", queryset=stages))
    )
    by_pipeline = defaultdict(list)
    for execution in ranked:
        by_pipeline[execution.pipeline_id].append(with_timings(execution))
        for stage in execution.stages.all():
            with_timings(stage).title = stage_title(stage)
    return by_pipeline


def trigger_types(application: Application, chosen: str) -> list[str]:
    """The trigger types the application's executions have, for the filter's choices."""
    found = (
        Execution.objects.filter(application=application)
        .annotate(kind=KT("trigger__type"))
        .exclude(kind__isnull=True)
        .order_by("kind")
        .values_list("kind", flat=True)
        .distinct()
    )
    return sorted(set(found) | ({chosen} if chosen else set()))


@login_required
def application_detail(request, name: str):
    """An application's pipelines, each with its recent executions as stage bars, filtered by status and trigger."""
    application = readable(Application.objects, request.user, name=name)
    filterset = ExecutionFilterSet(request.GET or None, queryset=Execution.objects.filter(application=application))
    by_pipeline = recent_executions(filterset.qs)
    pipelines = list(application.pipelines.only("id", "name", "application_id").order_by("name"))
    rows = [(pipeline, by_pipeline.get(pipeline.id, [])) for pipeline in pipelines]
    executions = [execution for _, shown in rows for execution in shown]
    context = {
        "application": application,
        "rows": rows,
        "filterset": filterset,
        "statuses": Status.values,
        "chosen_statuses": request.GET.getlist("status"),
        "filtered": bool(request.GET.getlist("status") or request.GET.get("trigger_type")),
        "trigger_types": trigger_types(application, request.GET.get("trigger_type", "")),
        "may_execute": can(request.user, EXECUTE, application),
        "may_write": can(request.user, WRITE, application),
        "version": state_version((execution, execution.stages.all()) for execution in executions),
    }
    fragment = request.GET.get("fragment") == "executions"
    return render(request, "pipelines/_executions.html" if fragment else "pipelines/application.html", context)


# --- Running a pipeline -----------------------------------------------------------------------------


@login_required
def run_pipeline(request, pipeline_id):
    """The run form built from the pipeline's ``parameterConfig``; submitting it starts an execution (EXECUTE)."""
    pipeline = readable(Pipeline.objects.select_related("application"), request.user, id=pipeline_id)
    require(request.user, EXECUTE, pipeline.application)
    data = request.POST if request.method == "POST" else None
    form = RunPipelineForm(data, parameter_config=pipeline.definition.get("parameterConfig"))
    if data is not None and form.is_valid():
        try:
            execution = do_start_execution(pipeline, parameters=form.parameters(), user=web_actor(request))
        except InvalidDocument as error:
            form.add_problems(error.problems)
        except ActionRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, f"Started {pipeline.name}.")
            return redirect("pipelines:execution", execution_id=execution.id)
    return render(request, "pipelines/run.html", {"pipeline": pipeline, "form": form})


# --- One execution -------------------------------------------------------------------------------


NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 210, 62, 48, 14, 8


def stage_depths(stages: list[StageExecution]) -> dict[str, int]:
    """Each stage's column: the longest path to it from a stage with no requisites."""
    known = {stage.ref_id for stage in stages}
    requisites = {stage.ref_id: [ref for ref in stage.requisite_ref_ids if ref in known] for stage in stages}
    depths: dict[str, int] = {}
    pending = [stage.ref_id for stage in stages]
    while pending:
        waiting = []
        for ref in pending:
            if all(parent in depths for parent in requisites[ref]):
                depths[ref] = 1 + max((depths[parent] for parent in requisites[ref]), default=-1)
            else:
                waiting.append(ref)
        if len(waiting) == len(pending):  # a cycle (never saved, but never loop): put the rest at the end
            depths.update({ref: len(stages) for ref in waiting})
            break
        pending = waiting
    return depths


@dataclass
class StageView:
    """A stage as the execution page draws it: where it sits in the graph and what the viewer may do to it."""

    stage: StageExecution
    x: int = 0
    y: int = 0
    may_restart: bool = False
    may_skip: bool = False
    judgment: JudgmentForm | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def start_ms(self):
        return epoch_millis(self.stage.start_time)

    @property
    def end_ms(self):
        return epoch_millis(self.stage.end_time)

    @property
    def duration(self) -> str:
        return format_duration(duration_ms(self.stage.start_time, self.stage.end_time))

    @property
    def title(self) -> str:
        return stage_title(self.stage)


def graph_layout(views: list[StageView]) -> dict:
    """Place stages in columns by depth, parallel branches one under another, and draw an edge per requisite."""
    depths = stage_depths([view.stage for view in views])
    columns: dict[int, list[StageView]] = defaultdict(list)
    for view in views:
        columns[depths[view.stage.ref_id]].append(view)
    by_ref, rows = {view.stage.ref_id: view for view in views}, {}

    def parent_row(view: StageView) -> tuple[float, int]:
        """Under its requisites, on average: branches keep their order from column to column."""
        parents = [rows[ref] for ref in view.stage.requisite_ref_ids if ref in rows]
        return (sum(parents) / len(parents) if parents else 0, view.stage.position)

    for depth in sorted(columns):
        for row, view in enumerate(sorted(columns[depth], key=parent_row)):
            rows[view.stage.ref_id] = row
            view.x = MARGIN + depth * (NODE_WIDTH + COLUMN_GAP)
            view.y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
    edges = []
    for view in views:
        for ref in view.stage.requisite_ref_ids:
            if ref in by_ref:
                x1, y1 = by_ref[ref].x + NODE_WIDTH, by_ref[ref].y + NODE_HEIGHT // 2
                x2, y2 = view.x, view.y + NODE_HEIGHT // 2
                middle = (x1 + x2) // 2
                edges.append({"from": ref, "to": view.stage.ref_id,
                              "path": f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"})
    width = max((view.x for view in views), default=0) + NODE_WIDTH + MARGIN
    height = max((view.y for view in views), default=0) + NODE_HEIGHT + MARGIN
    return {"width": width, "height": height, "edges": edges, "node_width": NODE_WIDTH, "node_height": NODE_HEIGHT}


def stage_errors(stage: StageExecution) -> list[str]:
    """The errors a stage reports, Spinnaker's way: ``context.exception.details.errors``."""
    details = (stage.context.get("exception") or {}).get("details") or {}
    errors = details.get("errors") or ([details["error"]] if details.get("error") else [])
    return [str(error) for error in errors] if isinstance(errors, list) else [str(errors)]


def is_skippable(stage: StageExecution) -> bool:
    """A running wait, or any stage waiting for its execution window, may be let through."""
    if stage.status != Status.RUNNING:
        return False
    if (stage.context.get("executionWindow") or {}).get("waiting"):
        return True
    stage_type = get_stage_type(stage.type)
    return bool(stage_type and stage_type.skippable)


def awaits_judgment(stage: StageExecution) -> bool:
    """A running manual judgment nobody has judged yet."""
    return stage.type == "manualJudgment" and stage.status == Status.RUNNING and not stage.context.get("judgmentStatus")


def restartable_refs(execution: Execution, stages: list[StageExecution]) -> set[str]:
    """The finished stages a restart would accept: in a running execution, only those with nothing active after."""
    finished = {stage.ref_id for stage in stages if stage.status in COMPLETE}
    if execution.status in COMPLETE:
        return finished
    if execution.status != Status.RUNNING:
        return set()
    active = {stage.ref_id for stage in stages if stage.status in ACTIVE}
    return {ref for ref in finished if not active & set(downstream_closure([ref], stages))}


def stage_views(user, execution: Execution, stages: list[StageExecution], may_execute: bool) -> list[StageView]:
    """The stages with what the viewer may do to each; roles are checked once per distinct set of roles."""
    restartable = restartable_refs(execution, stages) if may_execute else set()
    role_answers: dict[tuple, bool] = {}
    views = []
    for stage in stages:
        view = StageView(stage=stage, errors=stage_errors(stage))
        if may_execute:
            view.may_restart = stage.ref_id in restartable
            view.may_skip = is_skippable(stage)
            if awaits_judgment(stage):
                roles = tuple(judge_roles(stage))
                if roles not in role_answers:
                    role_answers[roles] = in_any_role(user, list(roles))
                if role_answers[roles]:
                    view.judgment = JudgmentForm(options=judgment_options(stage.context), prefix=f"judge-{stage.id}")
        views.append(view)
    return views


def execution_context(request, execution: Execution) -> dict:
    """What the execution page and its live fragment show."""
    stages = list(execution.stages.order_by("position"))
    may_execute = can(request.user, EXECUTE, execution.application)
    views = stage_views(request.user, execution, stages, may_execute)
    return {
        "execution": execution,
        "application": execution.application,
        "stages": views,
        "graph": graph_layout(views),
        "judgments": [view for view in views if view.judgment is not None],
        "may_execute": may_execute,
        "is_complete": execution.status in COMPLETE,
        "cancel_form": CancelForm(),
        "start_ms": epoch_millis(execution.start_time),
        "end_ms": epoch_millis(execution.end_time),
        "duration": format_duration(duration_ms(execution.start_time, execution.end_time)),
        "trigger_json": json.dumps(execution.trigger, indent=2, sort_keys=True, ensure_ascii=False, default=str),
        "version": state_version([(execution, stages)]),
    }


@login_required
def execution_detail(request, execution_id):
    """An execution: its stage graph, judgments waiting for the viewer, trigger, and the actions allowed."""
    execution = readable(Execution.objects.select_related("application"), request.user, id=execution_id)
    context = execution_context(request, execution)
    selected = next((view for view in context["stages"] if str(view.stage.id) == request.GET.get("stage")), None)
    if selected is not None:
        context.update(stage_panel_context(selected), selected=selected)
    fragment = request.GET.get("fragment") == "execution"
    return render(request, "pipelines/_execution.html" if fragment else "pipelines/execution.html", context)


def stage_panel_context(view: StageView) -> dict:
    """What the stage panel shows: the stage's context, outputs and definition as formatted JSON."""
    stage = view.stage

    def pretty(value) -> str:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)

    return {"view": view, "context_json": pretty(stage.context), "outputs_json": pretty(stage.outputs),
            "definition_json": pretty(stage.definition)}


@login_required
def stage_panel(request, execution_id, stage_id):
    """One stage's details (context, outputs, errors, timings as formatted JSON), as a fragment of the page."""
    stage = readable(StageExecution.objects.select_related("execution"), request.user, id=stage_id,
                     execution_id=execution_id)
    return render(request, "pipelines/_stage_panel.html", stage_panel_context(StageView(stage, errors=stage_errors(
        stage))))


# --- Steering an execution -------------------------------------------------------------------------


def steerable(request, execution_id) -> Execution:
    """The execution to act on: 404 if the user may not read it, 403 if they may not execute in it."""
    execution = readable(Execution.objects.select_related("application"), request.user, id=execution_id)
    require(request.user, EXECUTE, execution.application)
    return execution


def steer(request, execution: Execution, action, done: str):
    """Run ``action(actor)``; show its refusal, or ``done``, as a message; go back to the execution."""
    try:
        action(web_actor(request))
    except (ActionRefused, InvalidDocument) as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, done)
    return redirect("pipelines:execution", execution_id=execution.id)


@login_required
@require_POST
def cancel_execution(request, execution_id):
    """Cancel the execution, with the reason given."""
    execution = steerable(request, execution_id)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return steer(request, execution, lambda actor: do_cancel_execution(execution.id, user=actor, reason=reason),
                 "Execution canceled.")


@login_required
@require_POST
def pause_execution(request, execution_id):
    """Pause a running execution."""
    execution = steerable(request, execution_id)
    return steer(request, execution, lambda actor: do_pause_execution(execution.id, user=actor), "Execution paused.")


@login_required
@require_POST
def resume_execution(request, execution_id):
    """Resume a paused execution."""
    execution = steerable(request, execution_id)
    return steer(request, execution, lambda actor: do_resume_execution(execution.id, user=actor), "Execution resumed.")


def steerable_stage(request, execution_id, stage_id) -> tuple[Execution, StageExecution]:
    """The execution to act on (see ``steerable``) and one of its stages; a stage of another execution is a 404."""
    execution = steerable(request, execution_id)
    return execution, get_object_or_404(StageExecution, id=stage_id, execution=execution)


@login_required
@require_POST
def restart_stage(request, execution_id, stage_id):
    """Run a finished stage, and everything after it, again."""
    execution, stage = steerable_stage(request, execution_id, stage_id)
    return steer(request, execution, lambda actor: do_restart_stage(execution.id, stage.ref_id, user=actor),
                 f"Restarted {stage.name}.")


@login_required
@require_POST
def skip_wait(request, execution_id, stage_id):
    """End a running wait now, or let a stage waiting for its execution window through."""
    execution, stage = steerable_stage(request, execution_id, stage_id)
    return steer(request, execution, lambda actor: do_skip_wait(execution.id, stage.ref_id, user=actor),
                 f"Skipped the wait of {stage.name}.")


def judge(execution: Execution, stage: StageExecution, form: JudgmentForm, actor: Actor) -> None:
    """Record the judgment and, in the same transaction, the judge's comment as an audit event."""
    comment = form.cleaned_data["comment"].strip()
    with transaction.atomic():
        do_judge_stage(execution.id, stage.ref_id, decision=form.cleaned_data["decision"], user=actor,
                       judgment_input=form.cleaned_data["judgment_input"] or None)
        if comment:
            record("stage.judgment_comment", actor, application=execution.application, object_type="execution",
                   object_id=execution.id, details={"stage": stage.ref_id, "stageName": stage.name,
                                                    "decision": form.cleaned_data["decision"], "comment": comment})


@login_required
@require_POST
def judge_stage(request, execution_id, stage_id):
    """Continue or stop at a manual judgment (EXECUTE, and membership of one of its ``selectedStageRoles``)."""
    execution, stage = steerable_stage(request, execution_id, stage_id)
    roles = judge_roles(stage)
    if roles and not in_any_role(request.user, roles):
        raise PermissionDenied(f"Only members of {', '.join(roles)} may judge this stage.")
    form = JudgmentForm(request.POST, options=judgment_options(stage.context), prefix=f"judge-{stage.id}")
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"The judgment was not recorded: {problems}")
        return redirect("pipelines:execution", execution_id=execution.id)
    decision = "continued" if form.cleaned_data["decision"] == "continue" else "stopped"
    return steer(request, execution, lambda actor: judge(execution, stage, form, actor),
                 f"{stage.name}: {decision}.")


# --- The pipeline editor ------------------------------------------------------------------------------


def _words(value, default: str = "any") -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or default
    return str(value) if value not in (None, "") else default


TRIGGER_WORDS = {
    "docker": lambda t: f"Runs when an image is pushed to registry {_words(t.get('registry'))}"
    f" (repository {_words(t.get('repository'))}, tag {_words(t.get('tag'))})",
    "git": lambda t: f"Runs on a push to {_words(t.get('source'), 'git')} repository "
    f"{_words(t.get('project'))}/{_words(t.get('slug'))}, branch {_words(t.get('branch'))}",
    "jenkins": lambda t: f"Runs when Jenkins job {_words(t.get('job'))} on {_words(t.get('master'))} succeeds",
    "cron": lambda t: f"Runs on the schedule {_words(t.get('cronExpression'))}",
    "pipeline": lambda t: f"Runs when pipeline {_words(t.get('pipeline'))} of application "
    f"{_words(t.get('application'))} ends {_words(t.get('status'), 'successful')}",
    "webhook": lambda t: f"Runs when a webhook is received for source {_words(t.get('source'))}",
    "manual": lambda t: "Runs when someone starts it",
}
WHEN_WORDS = {
    "pipeline.starting": "when it starts", "pipeline.complete": "on success", "pipeline.failed": "on failure",
    "stage.starting": "when a stage starts", "stage.complete": "when a stage succeeds",
    "stage.failed": "when a stage fails", "manualJudgment": "when a judgment is awaited",
}
NOTIFICATION_WORDS = {
    "slack": lambda n: f"Sends Slack messages to #{_words(n.get('address')).lstrip('#')}",
    "email": lambda n: f"Sends e-mails to {_words(n.get('address'))}",
    "webhook": lambda n: f"Calls the webhook {_words(n.get('address'))}",
    "microsoftteams": lambda n: f"Sends Microsoft Teams messages to {_words(n.get('address'))}",
}


def describe_trigger(trigger: dict) -> str:
    """A trigger in plain words; unknown types get a generic sentence."""
    kind = str(trigger.get("type") or "unknown")
    words = TRIGGER_WORDS.get(kind, lambda t: f"Runs on a {kind} trigger")(trigger)
    return words + (" (disabled)" if trigger.get("enabled") is False else "")


def describe_notification(notification: dict) -> str:
    """A notification in plain words: where it goes and when."""
    kind = str(notification.get("type") or "unknown")
    where = NOTIFICATION_WORDS.get(kind, lambda n: f"Sends {kind} notifications to {_words(n.get('address'))}")
    when = notification.get("when") if isinstance(notification.get("when"), list) else []
    moments = [WHEN_WORDS.get(str(item), f"on {item}") for item in when]
    return where(notification) + (" " + ", ".join(moments) if moments else "")


def editor_context(request, pipeline: Pipeline, form: PipelineEditorForm) -> dict:
    """What the editor shows beside the text: triggers and notifications in words, and the revisions."""
    definition = pipeline.definition
    triggers = [t for t in definition.get("triggers") or [] if isinstance(t, dict)]
    notifications = [n for n in definition.get("notifications") or [] if isinstance(n, dict)]
    revisions = list(pipeline.revisions.defer("definition").order_by("-number")[:REVISIONS_SHOWN])
    newest = revisions[0].number if revisions else 1
    return {
        "pipeline": pipeline,
        "application": pipeline.application,
        "form": form,
        "may_write": can(request.user, WRITE, pipeline.application),
        "triggers": [describe_trigger(trigger) for trigger in triggers],
        "notifications": [describe_notification(notification) for notification in notifications],
        "revisions": revisions,
        "diff_form": DiffForm(initial={"base": max(newest - 1, 1), "other": newest}),
    }


def save_document(pipeline: Pipeline, document: dict, actor: Actor) -> Pipeline:
    """Save a new revision of a pipeline that must still exist; if it was deleted meanwhile, nothing is saved."""
    with transaction.atomic():
        saved, created = do_save_pipeline(document, user=actor)
        if created:
            raise Http404("The pipeline was deleted meanwhile.")
    return saved


def handle_editor_post(request, pipeline: Pipeline) -> tuple[PipelineEditorForm, HttpResponse | None]:
    """Validate, save (WRITE) or convert the submitted text: the form to show, or a redirect after a save."""
    form = PipelineEditorForm(request.POST)
    action = request.POST.get("action", "validate")
    if action in ("yaml", "json"):
        text = form.converted(action)
        if text is not None:
            form = PipelineEditorForm(initial={"text": text, "format": action})
        return form, None
    if action == "save":
        require(request.user, WRITE, pipeline.application)
    if not form.check(lambda document: identity_problems(document, pipeline)):
        if action == "save":
            messages.error(request, "Not saved: the document has problems.")
        return form, None
    if action != "save":
        messages.success(request, "The document is valid.")
        return form, None
    saved = save_document(pipeline, form.document, web_actor(request))
    number = saved.revisions.order_by("-number").values_list("number", flat=True).first()
    messages.success(request, f"Saved as revision {number}.")
    url = reverse("pipelines:edit", args=[pipeline.id]) + f"?format={form.cleaned_data['format']}"
    return form, redirect(url)


@login_required
def edit_pipeline(request, pipeline_id):
    """The pipeline's document as YAML or JSON: validate it (READ), save it (WRITE), see and restore revisions."""
    pipeline = readable(Pipeline.objects.select_related("application"), request.user, id=pipeline_id)
    if request.method == "POST":
        form, response = handle_editor_post(request, pipeline)
        if response is not None:
            return response
    else:
        fmt = "json" if request.GET.get("format") == "json" else "yaml"
        form = PipelineEditorForm(initial={"text": dump_document(pipeline.definition, fmt), "format": fmt})
    return render(request, "pipelines/editor.html", editor_context(request, pipeline, form))


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """Each line of a unified diff with its kind: added, removed, hunk, file or context."""
    kinds = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kinds.append(("file", line))
        elif line.startswith("@@"):
            kinds.append(("hunk", line))
        elif line.startswith("+"):
            kinds.append(("added", line))
        elif line.startswith("-"):
            kinds.append(("removed", line))
        else:
            kinds.append(("context", line))
    return kinds


@login_required
def pipeline_diff(request, pipeline_id):
    """The changes between two revisions of a pipeline, line by line."""
    pipeline = readable(Pipeline.objects.select_related("application"), request.user, id=pipeline_id)
    form = DiffForm(request.GET)
    lines, old, new = [], None, None
    if form.is_valid():
        wanted = (form.cleaned_data["base"], form.cleaned_data["other"])
        found = {revision.number: revision for revision in pipeline.revisions.filter(number__in=wanted)}
        for number in wanted:
            if number not in found:
                form.add_error("base" if number == wanted[0] else "other", f"No revision {number}.")
        if not form.errors:
            old, new = found[wanted[0]], found[wanted[1]]
            lines = diff_lines(unified_diff(old, new))
    context = {"pipeline": pipeline, "application": pipeline.application, "form": form, "lines": lines,
               "old": old, "new": new, "may_write": can(request.user, WRITE, pipeline.application)}
    return render(request, "pipelines/diff.html", context)


@login_required
@require_POST
def restore_revision(request, pipeline_id):
    """Save an earlier revision's document again, as the newest revision (WRITE)."""
    pipeline = readable(Pipeline.objects.select_related("application"), request.user, id=pipeline_id)
    require(request.user, WRITE, pipeline.application)
    form = RestoreForm(request.POST)
    revision = pipeline.revisions.filter(number=form.cleaned_data["revision"]).first() if form.is_valid() else None
    if revision is None:
        messages.error(request, "No such revision of this pipeline.")
        return redirect("pipelines:edit", pipeline_id=pipeline.id)
    document = {**revision.definition, "application": pipeline.application.name, "name": pipeline.name}
    try:
        saved = save_document(pipeline, document, web_actor(request))
    except InvalidDocument as error:
        messages.error(request, f"Revision {revision.number} cannot be restored: {error}")
    else:
        number = saved.revisions.order_by("-number").values_list("number", flat=True).first()
        messages.success(request, f"Restored revision {revision.number} as revision {number}.")
    return redirect("pipelines:edit", pipeline_id=pipeline.id)
