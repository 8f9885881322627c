"""The execution page: the stage graph, a stage's panel, and the actions the viewer may take."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.pipelines.checks import AllowedActions, allowed_actions
from apps.pipelines.choices import COMPLETE
from apps.pipelines.documents import stage_tasks
from apps.pipelines.engine.composite import depth as composite_depth
from apps.pipelines.engine.composite import order_key
from apps.pipelines.evaluation import check_evaluate_expression
from apps.pipelines.forms import CancelForm, EvaluateForm, JudgmentForm
from apps.pipelines.models import Execution, StageExecution, epoch_millis
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.stages.base import get_stage_type
from apps.pipelines.stages.manual_judgment import judgment_options
from apps.pipelines.views.common import (
    duration_ms,
    format_duration,
    readable,
    stage_title,
    state_version,
    web_actor,
)

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
    # How deep a synthetic stage sits under its top-level stage (0: a top-level stage).
    depth: int = 0
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


def stage_views(execution: Execution, stages: list[StageExecution], allowed: AllowedActions) -> list[StageView]:
    """The stages with what the viewer may do to each, as ``allowed_actions`` decided for the whole page."""
    views = []
    for stage in stages:
        view = StageView(stage=stage, errors=stage_errors(stage), depth=composite_depth(stage.ref_id),
                         may_restart=stage.ref_id in allowed.restart, may_skip=stage.ref_id in allowed.skip)
        if stage.ref_id in allowed.judge:
            view.judgment = JudgmentForm(options=judgment_options(stage.context), prefix=f"judge-{stage.id}")
        views.append(view)
    return views


def execution_context(request, execution: Execution) -> dict:
    """What the execution page and its live fragment show."""
    # Each stage followed by its synthetic stages, which the list shows indented under it.
    stages = sorted(execution.stages.all(), key=order_key)
    allowed = allowed_actions(request.user, execution, stages)
    views = stage_views(execution, stages, allowed)
    top_level = [view for view in views if view.depth == 0]
    return {
        "execution": execution,
        "application": execution.application,
        "stages": views,
        # The graph shows the pipeline's own stages; a composite one's synthetic stages are in the list.
        "graph_stages": top_level,
        "graph": graph_layout(top_level),
        "judgments": [view for view in views if view.judgment is not None],
        "may_execute": allowed.execute,
        "allowed": allowed,
        "is_complete": execution.status in COMPLETE,
        "cancel_form": CancelForm(),
        "evaluate_form": EvaluateForm(stages=stages),
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

    context = {"view": view, "context_json": pretty(stage.context), "outputs_json": pretty(stage.outputs),
               "definition_json": pretty(stage.definition), "tasks": stage_tasks(stage)}
    kind = get_stage_type(stage.type)
    if kind is not None and kind.panel_template:
        context.update(stage_panel_template=kind.panel_template, stage_panel=kind.panel_context(stage))
    return context


@login_required
def stage_panel(request, execution_id, stage_id):
    """One stage's details (context, outputs, errors, timings as formatted JSON), as a fragment of the page."""
    stage = readable(StageExecution.objects.select_related("execution"), request.user, id=stage_id,
                     execution_id=execution_id)
    return render(request, "pipelines/_stage_panel.html", stage_panel_context(StageView(stage, errors=stage_errors(
        stage))))


@login_required
@require_POST
def evaluate_expression(request, execution_id):
    """The expression box: what an expression gives against this execution now (execute; see evaluation.py)."""
    execution = readable(Execution.objects.select_related("application"), request.user, id=execution_id)
    stages = sorted(execution.stages.all(), key=order_key)
    form = EvaluateForm(request.POST, stages=stages)
    outcome: dict = {}
    if form.is_valid():
        try:
            outcome = check_evaluate_expression(
                web_actor(request), execution, form.cleaned_data["expression"], form.cleaned_data["stage"] or None
            )
        except InvalidDocument as invalid:
            outcome = {"error": str(invalid)}

    def pretty(value) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)

    context = {"form": form, "outcome": outcome, "value_json": pretty(outcome.get("value")),
               "summary_json": pretty(outcome["summary"]) if outcome.get("summary") else ""}
    return render(request, "pipelines/_evaluation.html", context, status=200 if form.is_valid() else 400)
