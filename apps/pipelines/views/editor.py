"""The pipeline editor: the document as YAML or JSON, validated, saved (write), its revisions, diffs and restore."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import WRITE, can
from apps.pipelines.checks import check_permission
from apps.pipelines.definition import identity_problems, unified_diff
from apps.pipelines.definition.trigger_types import get_trigger_type, trigger_status, trigger_type_fields
from apps.pipelines.forms import DiffForm, PipelineEditorForm, RestoreForm, dump_document, parsed_or_problems
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_restore_revision, do_update_pipeline
from apps.pipelines.stages.base import offered_stage_types
from apps.pipelines.views.charts import stage_durations_chart
from apps.pipelines.views.common import readable, web_actor

REVISIONS_SHOWN = 50
RUNS_CHARTED = 20


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
    "manualJudgmentContinue": "when a judgment continues", "manualJudgmentStop": "when a judgment stops",
}
# The kinds apps/notifications sends (its transports); any other kind is kept in the document but not sent.
NOTIFICATION_WORDS = {
    "slack": lambda n: f"Sends Slack messages to #{_words(n.get('address')).lstrip('#')}",
    "email": lambda n: f"Sends e-mails to {_words(n.get('address'))}",
    "webhook": lambda n: f"Calls the webhook {_address_words(n.get('address'))}",
    "microsoftteams": lambda n: f"Sends Microsoft Teams messages to {_address_words(n.get('address'))}",
    "googlechat": lambda n: f"Sends Google Chat messages to {_address_words(n.get('address'))}",
}


def _address_words(address) -> str:
    """A webhook URL as the editor shows it: its origin, not the path that may hold a token."""
    text = _words(address)
    scheme, sep, rest = text.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…" if sep and "${" not in text else text


def describe_trigger(trigger: dict) -> str:
    """A trigger in plain words; unknown types get a generic sentence."""
    kind = str(trigger.get("type") or "unknown")
    registered = get_trigger_type(kind)
    describe = registered.describe if registered is not None else TRIGGER_WORDS.get(
        kind, lambda t: f"Runs on a {kind} trigger")
    words = describe(trigger)
    return words + (" (disabled)" if trigger.get("enabled") is False else "")


def describe_notification(notification: dict) -> str:
    """A notification in plain words: where it goes and when, or why it is never sent."""
    kind = str(notification.get("type") or "unknown")
    if kind not in NOTIFICATION_WORDS:
        return f"Sends nothing: {kind} notifications are not sent (sent: {', '.join(NOTIFICATION_WORDS)})"
    when = notification.get("when") if isinstance(notification.get("when"), list) else []
    moments = [WHEN_WORDS[str(item)] for item in when if str(item) in WHEN_WORDS]
    if not moments:
        return NOTIFICATION_WORDS[kind](notification) + " — never: it names no moment in when"
    return NOTIFICATION_WORDS[kind](notification) + " " + ", ".join(moments)


def last_runs(pipeline: Pipeline) -> list[Execution]:
    """The pipeline's newest executions with their top-level stages' timings: two queries."""
    stages = StageExecution.objects.filter(parent__isnull=True).only(
        "id", "execution_id", "name", "status", "start_time", "end_time", "position").order_by("position")
    return list(Execution.objects.filter(pipeline=pipeline).only("id", "pipeline_id", "created_at", "status")
                .order_by("-created_at").prefetch_related(Prefetch("stages", queryset=stages))[:RUNS_CHARTED])


def editor_context(request, pipeline: Pipeline, form: PipelineEditorForm) -> dict:
    """What the editor shows: the document for the stage editor, the stage types' fields, the text, revisions."""
    definition = pipeline.definition
    listed = definition.get("triggers") if isinstance(definition.get("triggers"), list) else []
    status = trigger_status(pipeline)
    triggers = [(describe_trigger(t), status.get(index, "")) for index, t in enumerate(listed) if isinstance(t, dict)]
    shown, _ = parsed_or_problems(form["text"].value() or "")
    notifications = [n for n in definition.get("notifications") or [] if isinstance(n, dict)]
    revisions = list(pipeline.revisions.defer("definition").order_by("-number")[:REVISIONS_SHOWN])
    newest = revisions[0].number if revisions else 1
    return {
        "pipeline": pipeline,
        "application": pipeline.application,
        "form": form,
        "may_write": can(request.user, WRITE, pipeline.application),
        "triggers": triggers,
        "notifications": [describe_notification(notification) for notification in notifications],
        "revisions": revisions,
        "stage_chart": stage_durations_chart(last_runs(pipeline)),
        "diff_form": DiffForm(initial={"base": max(newest - 1, 1), "other": newest}),
        # The stage editor works on the document the text holds; a text that does not parse opens as text.
        "document": shown,
        "stage_types": [stage_type.describe() for stage_type in offered_stage_types()],
        "trigger_types": trigger_type_fields(),
        "view": "text" if shown is None or (request.POST.get("view") or request.GET.get("view")) == "text"
        else "visual",
        "unsaved": request.method == "POST",
    }


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
        check_permission(web_actor(request), WRITE, pipeline.application)  # 403 before the text is read
    if not form.check(lambda document: identity_problems(document, pipeline)):
        if action == "save":
            messages.error(request, "Not saved: the document has problems.")
        return form, None
    if action != "save":
        messages.success(request, "The document is valid.")
        return form, None
    saved = do_update_pipeline(pipeline, form.document, user=web_actor(request))
    number = saved.revisions.order_by("-number").values_list("number", flat=True).first()
    messages.success(request, f"Saved as revision {number}.")
    view = "text" if request.POST.get("view") == "text" else "visual"
    url = reverse("pipelines:edit", args=[pipeline.id]) + f"?format={form.cleaned_data['format']}&view={view}"
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


@login_required
@require_POST
def convert_document(request):
    """The editor's two views of one document: ``text`` parsed (or its problems), or ``document`` as ``format`` text.

    Reads nothing stored and needs no permission beyond signing in; the body is
    bounded by DATA_UPLOAD_MAX_MEMORY_SIZE and the document by parse_document's limits.
    """
    if "text" in request.POST:
        document, problems = parsed_or_problems(request.POST["text"])
        if document is None:
            return JsonResponse({"problems": [{"pointer": p, "message": m, "line": line} for p, m, line in problems]},
                                status=400)
        return JsonResponse({"document": document})
    fmt = request.POST.get("format")
    try:
        document = json.loads(request.POST.get("document", ""))
        text = dump_document(document, fmt) if isinstance(document, dict) and fmt in ("yaml", "json") else None
    except (ValueError, RecursionError):
        text = None
    if text is None:
        message = "document must be a JSON object (not nested too deeply) and format yaml or json"
        return JsonResponse({"problems": [{"pointer": "", "message": message, "line": None}]}, status=400)
    return JsonResponse({"text": text})


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
    actor = web_actor(request)
    check_permission(actor, WRITE, pipeline.application)
    form = RestoreForm(request.POST)
    if not form.is_valid():
        messages.error(request, "No such revision of this pipeline.")
        return redirect("pipelines:edit", pipeline_id=pipeline.id)
    number = form.cleaned_data["revision"]
    try:
        saved = do_restore_revision(pipeline, number, user=actor)
    except InvalidDocument as error:
        missing = any(problem.pointer == "/revision" for problem in error.problems)
        messages.error(request, "No such revision of this pipeline." if missing
                       else f"Revision {number} cannot be restored: {error}")
    else:
        newest = saved.revisions.order_by("-number").values_list("number", flat=True).first()
        messages.success(request, f"Restored revision {number} as revision {newest}.")
    return redirect("pipelines:edit", pipeline_id=pipeline.id)
