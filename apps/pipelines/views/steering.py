"""Steering an execution from its page: cancel, pause, resume, restart a stage, skip a wait, judge.

Each view finds what the user may read (404 otherwise) and calls the service
that performs the action; the service decides whether the user may
(PermissionRefused: 403) and whether the state allows it (ActionRefused:
shown as a message, back on the execution's page).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from apps.pipelines.checks import check_judge
from apps.pipelines.forms import CancelForm, JudgmentForm
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import (
    ActionRefused,
    do_cancel_execution,
    do_judge_stage,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_skip_wait,
)
from apps.pipelines.stages.manual_judgment import judgment_options
from apps.pipelines.views.common import readable, web_actor


def readable_execution(request, execution_id) -> Execution:
    """The execution to act on: 404 if the user may not read it."""
    return readable(Execution.objects.select_related("application"), request.user, id=execution_id)


def readable_stage(request, execution_id, stage_id) -> tuple[Execution, StageExecution]:
    """The execution to act on and one of its stages; a stage of another execution is a 404."""
    execution = readable_execution(request, execution_id)
    return execution, get_object_or_404(StageExecution, id=stage_id, execution=execution)


def steer(request, execution: Execution, action, done: str):
    """Run ``action(actor)``; show a state refusal, or ``done``, as a message; go back to the execution.

    A permission refusal is not caught: it answers 403.
    """
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
    execution = readable_execution(request, execution_id)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return steer(request, execution, lambda actor: do_cancel_execution(execution.id, user=actor, reason=reason),
                 "Execution canceled.")


@login_required
@require_POST
def pause_execution(request, execution_id):
    """Pause a running execution."""
    execution = readable_execution(request, execution_id)
    return steer(request, execution, lambda actor: do_pause_execution(execution.id, user=actor), "Execution paused.")


@login_required
@require_POST
def resume_execution(request, execution_id):
    """Resume a paused execution."""
    execution = readable_execution(request, execution_id)
    return steer(request, execution, lambda actor: do_resume_execution(execution.id, user=actor), "Execution resumed.")


@login_required
@require_POST
def restart_stage(request, execution_id, stage_id):
    """Run a finished stage, and everything after it, again."""
    execution, stage = readable_stage(request, execution_id, stage_id)
    return steer(request, execution, lambda actor: do_restart_stage(execution.id, stage.ref_id, user=actor),
                 f"Restarted {stage.name}.")


@login_required
@require_POST
def skip_wait(request, execution_id, stage_id):
    """End a running wait now, or let a stage waiting for its execution window through."""
    execution, stage = readable_stage(request, execution_id, stage_id)
    return steer(request, execution, lambda actor: do_skip_wait(execution.id, stage.ref_id, user=actor),
                 f"Skipped the wait of {stage.name}.")


@login_required
@require_POST
def judge_stage(request, execution_id, stage_id):
    """Continue or stop at a manual judgment (execute, and membership of one of its ``selectedStageRoles``)."""
    execution, stage = readable_stage(request, execution_id, stage_id)
    check_judge(web_actor(request), execution, stage)  # 403 before the form is read, as the API answers
    form = JudgmentForm(request.POST, options=judgment_options(stage.context), prefix=f"judge-{stage.id}")
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        messages.error(request, f"The judgment was not recorded: {problems}")
        return redirect("pipelines:execution", execution_id=execution.id)
    decision = form.cleaned_data["decision"]

    def judge(actor):
        do_judge_stage(execution.id, stage.ref_id, decision=decision, user=actor,
                       judgment_input=form.cleaned_data["judgment_input"] or None,
                       comment=form.cleaned_data["comment"])

    return steer(request, execution, judge, f"{stage.name}: {'continued' if decision == 'continue' else 'stopped'}.")
