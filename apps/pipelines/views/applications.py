"""The applications page, one application's page (pipelines with their recent executions), and the Run form."""

from __future__ import annotations

from collections import defaultdict
from html import escape

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import F, OuterRef, Prefetch, Q, Subquery, Window
from django.db.models.fields.json import KT
from django.db.models.functions import RowNumber
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from apps.accounts.permissions import EXECUTE, READ, WRITE, can
from apps.pipelines.checks import check_permission
from apps.pipelines.choices import STATUS_GROUPS
from apps.pipelines.filtersets import ExecutionFilterSet
from apps.pipelines.forms import RunPipelineForm
from apps.pipelines.models import Application, Execution, Pipeline, StageExecution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import ActionRefused, do_start_execution
from apps.pipelines.views.charts import runs_chart
from apps.pipelines.views.common import (
    moment_texts,
    readable,
    stage_title,
    state_version,
    web_actor,
    with_timings,
)

APPLICATIONS_PER_PAGE = 50
RECENT_EXECUTIONS = 10
EXECUTION_COLUMNS = ("id", "application_id", "pipeline_id", "name", "status", "created_at", "start_time",
                     "end_time", "started_by")
URL_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
STAGE_BAR_COLUMNS = ("id", "execution_id", "position", "ref_id", "name", "type", "status", "start_time", "end_time")


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


def newest_execution_ids(queryset, pipeline_ids: list, per_pipeline: int = RECENT_EXECUTIONS) -> list:
    """The ids of the newest ``per_pipeline`` executions in ``queryset`` of each of the pipelines, in one query:
    on PostgreSQL one index range scan per pipeline, ``LIMIT`` each (an application with a million executions
    reads only what it shows); elsewhere a window function ranks them."""
    if not pipeline_ids:
        return []
    newest = queryset.order_by("-created_at").values_list("id", flat=True)
    if connection.features.supports_slicing_ordering_in_compound:
        parts = [newest.filter(pipeline_id=pipeline_id)[:per_pipeline] for pipeline_id in pipeline_ids]
        return list(parts[0].union(*parts[1:], all=True)) if len(parts) > 1 else list(parts[0])
    ranked = queryset.filter(pipeline_id__in=pipeline_ids).annotate(
        rank=Window(RowNumber(), partition_by=[F("pipeline_id")], order_by=F("created_at").desc()))
    return list(ranked.filter(rank__lte=per_pipeline).values_list("id", flat=True))


def recent_executions(queryset, pipeline_ids: list, per_pipeline: int = RECENT_EXECUTIONS) -> dict:
    """The newest ``per_pipeline`` executions of each of the pipelines in ``queryset``, by pipeline id, each with
    its top-level stages on ``bar_stages`` (only the columns a stage bar needs): three queries whatever the
    number of pipelines and executions (the ids, the executions, their stages).

    The stages are grouped here rather than by ``prefetch_related``: its per-row querysets cost more than the
    rows, and each stage it caches points back at its execution, a reference cycle per row that only a full
    garbage collection frees."""
    ids = newest_execution_ids(queryset, pipeline_ids, per_pipeline)
    if not ids:
        return {}
    shown = (
        Execution.objects.filter(id__in=ids)
        .only(*EXECUTION_COLUMNS)
        .annotate(trigger_type=KT("trigger__type"))
        .order_by("pipeline_id", "-created_at")
    )
    stages_of = defaultdict(list)
    for stage in (StageExecution.objects.only(*STAGE_BAR_COLUMNS)
                  .filter(execution_id__in=ids, parent__isnull=True).order_by("position")):
        stages_of[stage.execution_id].append(with_timings(stage))
    # One reverse() for every link of the rows (an execution's own and its stage bars'), not one per link.
    url = reverse("pipelines:execution", args=[URL_PLACEHOLDER])
    by_pipeline = defaultdict(list)
    for execution in shown:
        execution.url = url.replace(URL_PLACEHOLDER, str(execution.id))
        execution.created_text, execution.created_iso = moment_texts(execution.created_at)
        by_pipeline[execution.pipeline_id].append(with_timings(execution))
        execution.bar_stages = stages_of[execution.id]
        execution.stage_bar = stage_bar(execution, execution.bar_stages)
    return by_pipeline


STAGE_SEGMENT = ('<a role="listitem" class="seg status-{status}" href="{url}?stage={id}" data-stage-id="{id}" '
                 'data-ref-id="{ref_id}" data-stage-status="{status}" data-stage-name="{name}"{times} '
                 'title="{title}"><span class="seg-label">{name}</span></a>')


def stage_bar(execution, stages: list) -> SafeString:
    """The segments of an execution's stage bar (what static/js/live.js updates), one per stage, built here:
    as template nodes, a hundred executions' stages were most of the application page's rendering time."""
    segments = []
    url = escape(execution.url)
    for stage in stages:
        times = "".join(f' data-{name}="{int(value)}"' for name, value in (("start-time", stage.start_ms),
                                                                            ("end-time", stage.end_ms)) if value)
        segments.append(STAGE_SEGMENT.format(status=escape(stage.status), url=url, id=stage.id,
                                             ref_id=escape(stage.ref_id), name=escape(stage.name), times=times,
                                             title=escape(stage_title(stage))))
    return mark_safe("".join(segments))  # noqa: S308 (every text escaped above; the ids are UUIDs, the times ints)


# The distinct trigger kinds of one application's executions, on PostgreSQL: a loose index scan of
# execution_app_trigger_type, one probe for each kind (the next one after the last found), so an application
# with a million executions costs as many probes as it has kinds. A plain DISTINCT reads every execution.
NEXT_TRIGGER_KIND = """
WITH RECURSIVE kinds(kind) AS (
    (SELECT "trigger" ->> 'type' FROM {table}
     WHERE application_id = %(application)s AND "trigger" ->> 'type' IS NOT NULL ORDER BY 1 LIMIT 1)
    UNION ALL
    SELECT (SELECT "trigger" ->> 'type' FROM {table}
            WHERE application_id = %(application)s AND "trigger" ->> 'type' > kinds.kind ORDER BY 1 LIMIT 1)
    FROM kinds WHERE kinds.kind IS NOT NULL
)
SELECT kind FROM kinds WHERE kind IS NOT NULL
"""


def trigger_types(application: Application, chosen: str) -> list[str]:
    """The trigger types the application's executions have, for the filter's choices."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(NEXT_TRIGGER_KIND.format(table=connection.ops.quote_name(Execution._meta.db_table)),
                           {"application": application.pk})
            found = [row[0] for row in cursor.fetchall()]
    else:
        found = list(
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
    application = readable(Application.objects.named(name), request.user)
    # The application's pipelines restrict the executions: an application filter besides would have
    # PostgreSQL's planner combine two indexes and sort all of each pipeline's executions.
    filterset = ExecutionFilterSet(request.GET or None, queryset=Execution.objects.all())
    pipelines = list(application.pipelines.only("id", "name", "application_id").order_by("name"))
    by_pipeline = recent_executions(filterset.qs, [pipeline.id for pipeline in pipelines])
    rows = [(pipeline, by_pipeline.get(pipeline.id, [])) for pipeline in pipelines]
    executions = [execution for _, shown in rows for execution in shown]
    rows = [(pipeline, shown, runs_chart(shown)) for pipeline, shown in rows]
    context = {
        "application": application,
        "rows": rows,
        "filterset": filterset,
        "status_groups": [(name, statuses[0]) for name, statuses in STATUS_GROUPS.items()],
        "chosen_groups": request.GET.getlist("status_group"),
        "filtered": bool(request.GET.getlist("status") or request.GET.getlist("status_group")
                         or request.GET.get("trigger_type")),
        "trigger_types": trigger_types(application, request.GET.get("trigger_type", "")),
        "may_execute": can(request.user, EXECUTE, application),
        "may_write": can(request.user, WRITE, application),
        "version": state_version((execution, execution.bar_stages) for execution in executions),
    }
    fragment = request.GET.get("fragment") == "executions"
    response = render(request, "pipelines/_executions.html" if fragment else "pipelines/application.html", context)
    # Rendered, the rows are let go: the template's context is a reference cycle that would keep them.
    for _, shown, _ in rows:
        shown.clear()
    return response


# --- Running a pipeline -----------------------------------------------------------------------------


@login_required
def run_pipeline(request, pipeline_id):
    """The run form built from the pipeline's ``parameterConfig``; submitting it starts an execution (EXECUTE)."""
    pipeline = readable(Pipeline.objects.select_related("application"), request.user, id=pipeline_id)
    check_permission(web_actor(request), EXECUTE, pipeline.application)  # the form only for those who may run it
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
