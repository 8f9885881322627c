"""Creating in the dashboard: a new application, a new pipeline (blank, a copy, or an imported Spinnaker file).

Both go through the service functions the API calls (``do_create_application``,
``do_save_pipeline``), so permissions, validation and the audit log are the same.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render

from apps.accounts.permissions import READ, WRITE
from apps.pipelines.checks import check_permission
from apps.pipelines.forms import NewApplicationForm, NewPipelineForm
from apps.pipelines.models import Application, Pipeline
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.services import do_create_application, do_save_pipeline
from apps.pipelines.views.common import readable, web_actor


def add_problems(form, problems: list[Problem]) -> None:
    """Show a service's problems: one about the name at the name field, the others (with their pointer) above."""
    for problem in problems:
        if problem.pointer == "/name":
            form.add_error("name", problem.message)
        else:
            form.add_error(None, str(problem))


@login_required
def new_application(request):
    """A form for a new application; whoever creates it may then read, write, execute and manage it."""
    form = NewApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            application = do_create_application(form.cleaned_data, user=web_actor(request))
        except InvalidDocument as error:
            add_problems(form, error.problems)
        else:
            messages.success(request, f"Created application {application.name}.")
            return redirect("pipelines:application", name=application.name)
    return render(request, "pipelines/new_application.html", {"form": form})


class PipelineExists(Exception):
    """The name is already taken in the application: a new pipeline never overwrites one."""


def create_pipeline(form: NewPipelineForm, actor) -> Pipeline:
    """Save the form's document as a new pipeline; InvalidDocument for its problems, PipelineExists if taken."""
    document = form.document()
    with transaction.atomic():
        pipeline, created = do_save_pipeline(document, user=actor)
        if not created:
            raise PipelineExists(document["name"])
    return pipeline


@login_required
def new_pipeline(request, name: str):
    """A new pipeline in an application the user may write in: blank, a copy, or an imported file."""
    application = readable(Application.objects, request.user, name=name)
    actor = web_actor(request)
    check_permission(actor, WRITE, application)
    copyable = Pipeline.objects.restrict(request.user, READ).select_related("application").only(
        "id", "name", "definition", "application__name").order_by("application__name", "name")
    form = NewPipelineForm(request.POST or None, request.FILES or None, application=application, copyable=copyable)
    if request.method == "POST" and form.is_valid():
        try:
            pipeline = create_pipeline(form, actor)
        except InvalidDocument as error:
            add_problems(form, error.problems)
        except PipelineExists as taken:
            form.add_error("name", f"{application.name} already has a pipeline named {taken}.")
        else:
            messages.success(request, f"Created pipeline {pipeline.name}.")
            return redirect("pipelines:edit", pipeline_id=pipeline.id)
    return render(request, "pipelines/new_pipeline.html", {"application": application, "form": form})
