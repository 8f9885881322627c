"""The executions API: list and read executions, start one, and steer it (cancel, pause, judge, ...).

Every change goes through the service functions of ``apps.pipelines.services``
with an audit Actor built from the request; they decide whether the user may
(PermissionRefused, 403: execute, judgment roles) and whether the state allows
it (ActionRefused, 409) before writing anything.
"""

import uuid

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.fields.json import KT
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.accounts.permissions import READ
from apps.pipelines.api.serializers_executions import (
    CancelSerializer,
    EvaluateSerializer,
    EvaluationSerializer,
    ExecutionDocumentSerializer,
    ExecutionSummarySerializer,
    JudgeSerializer,
    StageActionSerializer,
    StartExecutionSerializer,
)
from apps.pipelines.evaluation import check_evaluate_expression
from apps.pipelines.filtersets import ExecutionFilterSet
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.querysets import release_prefetched
from apps.pipelines.services import (
    do_cancel_execution,
    do_judge_stage,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_skip_wait,
    do_start_execution,
)
from cdplatform.api.filters import FilterBackend
from cdplatform.api.schema import ErrorsSerializer
from cdplatform.api.viewsets import RestrictedReadOnlyViewSet

SUMMARY_COLUMNS = ("id", "application__name", "pipeline_id", "name", "status", "created_at", "start_time", "end_time")
STAGE_SUMMARY_COLUMNS = ("id", "execution_id", "position", "ref_id", "name", "type", "status", "start_time", "end_time")


def summary_queryset(queryset: QuerySet) -> QuerySet:
    """Executions with just what a list row shows: two queries for a page, whatever its size."""
    stages = StageExecution.objects.only(*STAGE_SUMMARY_COLUMNS).order_by("position")
    return (
        queryset.select_related("application")
        .only(*SUMMARY_COLUMNS)
        .annotate(trigger_type=KT("trigger__type"), trigger_user=KT("trigger__user"),
                  document_id=KT("definition__id"))
        .prefetch_related(Prefetch("stages", queryset=stages))
    )


def document_queryset(queryset: QuerySet) -> QuerySet:
    """Executions with their application and all their stages, for ``execution_document``."""
    return queryset.select_related("application").prefetch_related(
        Prefetch("stages", queryset=StageExecution.objects.order_by("position"))
    )


def _document(execution_id) -> dict:
    """The execution document as it is now (after a change)."""
    execution = document_queryset(Execution.objects.all()).get(id=execution_id)
    return ExecutionDocumentSerializer(execution).data


def _pipeline_lookup(value: str) -> Q:
    """A pipeline named ``value``, or whose id it is."""
    lookup = Q(name=value)
    try:
        lookup |= Q(id=uuid.UUID(value))
    except ValueError:
        pass
    return lookup


# What each action reads (its request body) or, for list and retrieve, shows.
SERIALIZERS = {
    "list": ExecutionSummarySerializer,
    "retrieve": ExecutionDocumentSerializer,
    "create": StartExecutionSerializer,
    "cancel": CancelSerializer,
    "restart": StageActionSerializer,
    "judge": JudgeSerializer,
    "skip_wait": StageActionSerializer,
    "evaluate": EvaluateSerializer,
}
DOCUMENT_RESPONSE = OpenApiResponse(ExecutionDocumentSerializer, description="The execution after the change.")
REFUSED_RESPONSE = OpenApiResponse(ErrorsSerializer, description="The execution's current state does not allow this.")
STEERING_RESPONSES = {200: DOCUMENT_RESPONSE, 409: REFUSED_RESPONSE}


@extend_schema_view(
    list=extend_schema(summary="List executions, newest first", responses=ExecutionSummarySerializer(many=True)),
    retrieve=extend_schema(summary="An execution in Spinnaker's format", responses=ExecutionDocumentSerializer),
)
class ExecutionViewSet(RestrictedReadOnlyViewSet):
    """Executions of the applications the user may read; starting and steering them needs execute."""

    queryset = Execution.objects.all()
    serializer_class = ExecutionSummarySerializer
    filter_backends = [FilterBackend, OrderingFilter]
    filterset_class = ExecutionFilterSet
    ordering_fields = ["created_at"]
    ordering = "-created_at"

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            return summary_queryset(queryset)
        if self.action == "retrieve":
            return document_queryset(queryset)
        return queryset.select_related("application")

    def get_serializer_class(self):
        return SERIALIZERS.get(self.action, ExecutionSummarySerializer)

    # list and retrieve are DRF's own, then they let go of the rows they rendered (see release_prefetched): the
    # paginator, the serializer and its fields, the view and the request point at one another, and would keep
    # the page's rows until a full garbage collection.
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None, "the API always paginates (DEFAULT_PAGINATION_CLASS)"
        response = self.get_paginated_response(self.get_serializer(page, many=True).data)
        release_prefetched(page)
        page.clear()  # the paginator's and the serializer's list of rows
        return response

    def retrieve(self, request, *args, **kwargs):
        serializer = self.get_serializer(self.get_object())
        response = Response(serializer.data)
        release_prefetched([serializer.instance])
        serializer.instance = None
        return response

    def _body(self) -> dict:
        """The request body, validated by the action's serializer (400 with pointers otherwise)."""
        serializer = self.get_serializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _stage(self, execution: Execution, ref_id: str) -> StageExecution:
        """The execution's stage ``ref_id``; an unknown refId is a mistake in the request (400)."""
        stage = execution.stages.filter(ref_id=ref_id).first()
        if stage is None:
            raise exceptions.ValidationError({"stage": [f"The execution has no stage with refId {ref_id!r}."]})
        return stage

    @extend_schema(
        summary="Start a pipeline",
        request=StartExecutionSerializer,
        responses={
            201: OpenApiResponse(ExecutionDocumentSerializer, description="The new execution."),
            404: OpenApiResponse(ErrorsSerializer, description="No such pipeline in the application, or one you "
                                 "may not read."),
            409: OpenApiResponse(ErrorsSerializer, description="The pipeline is disabled."),
        },
    )
    def create(self, request):
        """Start the named pipeline with ``parameters``; the trigger is manual, as the requesting user."""
        body = self._body()
        pipeline = (
            Pipeline.objects.restrict(request.user, READ)
            .select_related("application")
            .filter(_pipeline_lookup(body["pipeline"]), application__name__iexact=body["application"])
            .first()
        )
        if pipeline is None:
            raise exceptions.NotFound(f"No pipeline {body['pipeline']!r} in application {body['application']!r}.")
        execution = do_start_execution(pipeline, parameters=body["parameters"], user=Actor.from_request(request))
        return Response(_document(execution.id), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Cancel an execution", request=CancelSerializer, responses=STEERING_RESPONSES)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        execution = self.get_object()
        body = self._body()
        do_cancel_execution(execution.id, user=Actor.from_request(request), reason=body["reason"])
        return Response(_document(execution.id))

    @extend_schema(summary="Pause a running execution", request=None, responses=STEERING_RESPONSES)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        execution = self.get_object()
        do_pause_execution(execution.id, user=Actor.from_request(request))
        return Response(_document(execution.id))

    @extend_schema(summary="Resume a paused execution", request=None, responses=STEERING_RESPONSES)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        execution = self.get_object()
        do_resume_execution(execution.id, user=Actor.from_request(request))
        return Response(_document(execution.id))

    @extend_schema(
        summary="Run a finished stage and everything after it again",
        request=StageActionSerializer,
        responses=STEERING_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def restart(self, request, pk=None):
        execution = self.get_object()
        stage = self._stage(execution, self._body()["stage"])
        do_restart_stage(execution.id, stage.ref_id, user=Actor.from_request(request))
        return Response(_document(execution.id))

    @extend_schema(
        summary="Judge a manual judgment stage",
        description="Needs execute on the application and, when the stage names `selectedStageRoles`, "
        "membership of one of those groups.",
        request=JudgeSerializer,
        responses=STEERING_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def judge(self, request, pk=None):
        execution = self.get_object()
        body = self._body()
        stage = self._stage(execution, body["stage"])
        do_judge_stage(
            execution.id, stage.ref_id, decision=body["decision"], user=Actor.from_request(request),
            judgment_input=body.get("input"), comment=body["comment"],
        )
        return Response(_document(execution.id))

    @extend_schema(
        summary="End a stage's wait (or execution window) now",
        request=StageActionSerializer,
        responses=STEERING_RESPONSES,
    )
    @action(detail=True, methods=["post"], url_path="skip-wait")
    def skip_wait(self, request, pk=None):
        execution = self.get_object()
        stage = self._stage(execution, self._body()["stage"])
        do_skip_wait(execution.id, stage.ref_id, user=Actor.from_request(request))
        return Response(_document(execution.id))

    @extend_schema(
        summary="Evaluate an expression against the execution",
        description="As Spinnaker's evaluateExpression, to debug an expression before saving it: evaluated as a "
        "stage's context is (what cannot be resolved is left as written, and `summary` says why), within the "
        "expression budgets (EXPRESSION_* settings). Needs **execute** on the application: an expression may make "
        "the platform fetch URLs (`#jsonFromUrl`), as running a stage does. Nothing is saved.",
        request=EvaluateSerializer,
        responses={
            200: EvaluationSerializer,
            400: OpenApiResponse(ErrorsSerializer, description="The expression is malformed, refused, or over budget."),
        },
    )
    @action(detail=True, methods=["post"])
    def evaluate(self, request, pk=None):
        execution = self.get_object()
        body = self._body()
        outcome = check_evaluate_expression(
            Actor.from_request(request), execution, body["expression"], body.get("stageId")
        )
        if "error" in outcome:
            raise InvalidDocument([Problem("/expression", outcome["error"])])
        return Response(outcome)
