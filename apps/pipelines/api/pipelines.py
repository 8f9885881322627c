"""The applications and pipelines API: applications by name, pipelines as Spinnaker documents, their revisions.

Every queryset is restricted to the applications the user may read (anything
else is a 404); writes need ``write`` on the application (403 otherwise) and
are audited with the requesting user, ``api`` as the source and the client's
address. Pipeline documents are accepted as JSON or YAML and answered, when
refused, with one error per problem, each at its JSON pointer.
"""

from __future__ import annotations

import json

import yaml
from django.conf import settings
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.accounts.permissions import EXECUTE, MANAGE, READ, WRITE, allowed_actions_by_id
from apps.pipelines.api.serializers_pipelines import (
    PIPELINE_DOCUMENT_SCHEMA,
    ApplicationChangeSerializer,
    ApplicationSerializer,
    DiffSerializer,
    PipelineSerializer,
    RestoreSerializer,
    RevisionDetailSerializer,
    RevisionSerializer,
    ValidationResultSerializer,
)
from apps.pipelines.checks import check_permission
from apps.pipelines.definition import parse_document, unified_diff, validate_pipeline
from apps.pipelines.filtersets import ApplicationFilterSet, PipelineFilterSet
from apps.pipelines.models import Application, Pipeline
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.secrets.services import unknown_secret_problems
from apps.pipelines.services import (
    check_save_pipeline,
    do_change_application,
    do_create_application,
    do_delete_application,
    do_delete_pipeline,
    do_restore_revision,
    do_save_pipeline,
    do_update_pipeline,
)
from cdplatform.api.errors import error_items
from cdplatform.api.pagination import NewestFirstPagination
from cdplatform.api.schema import ErrorsSerializer
from cdplatform.api.viewsets import RestrictedModelViewSet


class Conflict(exceptions.APIException):
    """The request collides with an existing object (a pipeline name already taken)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with an existing object."
    default_code = "conflict"


class DocumentTooLarge(exceptions.APIException):
    """A request body over DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The document is too large."
    default_code = "too_large"


CONFLICT_RESPONSE = OpenApiResponse(ErrorsSerializer, description="The object's current state does not allow this.")
BAD_QUERY_RESPONSE = OpenApiResponse(ErrorsSerializer, description="A query parameter is missing or wrong; the error "
                                     "names it as its pointer (/from, /to, /format).")


# --- Pipeline documents in and out -------------------------------------------------------------


class PipelineDocumentParser(BaseParser):
    """A pipeline document as JSON; parsed by ``parse_document``, so every problem has a pointer."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> dict:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        text = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(text) > limit:
            raise DocumentTooLarge(f"The document is larger than {limit} bytes.")
        return parse_document(text)


class PipelineYAMLParser(PipelineDocumentParser):
    """A pipeline document as YAML (``application/yaml``)."""

    media_type = "application/yaml"


class PipelineXYAMLParser(PipelineDocumentParser):
    """A pipeline document as YAML (``application/x-yaml``, the name most tools still send)."""

    media_type = "application/x-yaml"


class PipelineTextYAMLParser(PipelineDocumentParser):
    """A pipeline document as YAML (``text/yaml``)."""

    media_type = "text/yaml"


DOCUMENT_PARSERS = [PipelineDocumentParser, PipelineYAMLParser, PipelineXYAMLParser, PipelineTextYAMLParser]
DOCUMENT_REQUEST = {parser.media_type: PIPELINE_DOCUMENT_SCHEMA for parser in DOCUMENT_PARSERS}


class DocumentJSONRenderer(BaseRenderer):
    """A pipeline document as an indented JSON file."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


class DocumentYAMLRenderer(BaseRenderer):
    """A pipeline document as a YAML file, keys in the document's order."""

    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).encode()


EXPORT_FORMATS = {renderer.format: renderer for renderer in (DocumentJSONRenderer, DocumentYAMLRenderer)}


def readable_application(user, name: str) -> Application:
    """The application a new pipeline goes into: 404 at /application if the user may not read it (or it is missing)."""
    application = Application.objects.restrict(user, READ).named(name).first()
    if application is None:
        raise exceptions.NotFound({"application": f"no application {name!r} (or you may not read it); create it first"})
    return application


# The largest value PipelineRevision.number can hold; larger numbers name no revision.
MAX_REVISION_NUMBER = 2_147_483_647


def parse_revision_number(raw: str) -> int | None:
    """A revision number written in a URL or query string, or None if it cannot be one."""
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_REVISION_NUMBER:
        return None
    return int(raw)


def revision_numbers(request, names: tuple[str, ...]) -> dict[str, int]:
    """Revision numbers from query parameters, each required; a 400 names every bad one."""
    numbers, errors = {}, {}
    for name in names:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            errors[name] = "is required: a revision number"
        elif parse_revision_number(raw) is None:
            errors[name] = f"must be a revision number (a whole number from 1), not {raw!r}"
        else:
            numbers[name] = parse_revision_number(raw)
    if errors:
        raise exceptions.ValidationError(errors)
    return numbers


# --- Applications ------------------------------------------------------------------------------


def application_permissions(user, application_ids) -> dict[int, list[str]]:
    """Each listed application's actions for the user: one query per action for a whole page, none per row.

    The applications come from a queryset restricted to what the user may read, so ``read`` is given.
    """
    return allowed_actions_by_id(user, Application, application_ids, (WRITE, EXECUTE, MANAGE))


@extend_schema_view(
    create=extend_schema(description="Create an application; its creator may then read, write, execute and manage "
                                     "grants in it."),
    update=extend_schema(description="Change the owner and description (needs write); the name cannot change."),
    partial_update=extend_schema(description="Change the owner or the description (needs write)."),
    destroy=extend_schema(
        description="Delete an application with no pipelines (needs write).",
        responses={204: None, 409: CONFLICT_RESPONSE},
    ),
)
class ApplicationViewSet(RestrictedModelViewSet):
    """Applications by name, with the requesting user's permissions on each."""

    queryset = Application.objects.all()
    serializer_class = ApplicationSerializer
    filterset_class = ApplicationFilterSet
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"  # Spinnaker's application names may hold dots

    def get_object(self):
        """The application named in the URL, in any case: Spinnaker's application names are case-insensitive."""
        application = get_object_or_404(self.filter_queryset(self.get_queryset()).named(self.kwargs["name"]))
        self.check_object_permissions(self.request, application)
        return application

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return ApplicationChangeSerializer
        return ApplicationSerializer

    def represent(self, applications: list[Application] | Application, *, many: bool = False):
        """Serialize one application, or a page of them, with the user's permission flags computed in bulk."""
        rows = applications if many else [applications]
        context = {**self.get_serializer_context(), "permissions": application_permissions(
            self.request.user, [application.pk for application in rows])}
        return ApplicationSerializer(applications, many=many, context=context).data

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.represent(page, many=True))

    def retrieve(self, request, *args, **kwargs):
        return Response(self.represent(self.get_object()))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        application = do_create_application(serializer.validated_data, user=Actor.from_request(request))
        location = self.reverse_action("detail", args=[application.name])
        return Response(self.represent(application), status=status.HTTP_201_CREATED, headers={"Location": location})

    def update(self, request, *args, partial: bool = False, **kwargs):
        application = self.get_object()
        actor = Actor.from_request(request)
        check_permission(actor, WRITE, application)  # refused before the body is read, as for every write
        serializer = self.get_serializer(application, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        do_change_application(application, serializer.validated_data, user=actor)
        return Response(self.represent(application))

    def perform_destroy(self, instance: Application) -> None:
        do_delete_application(instance, user=Actor.from_request(self.request))


# --- Pipelines ---------------------------------------------------------------------------------


class RevisionPagination(NewestFirstPagination):
    """A pipeline's revisions, newest first."""

    ordering = "-number"


PIPELINE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The pipeline's id.")
REVISION_NUMBER = OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH, description="Revision number.")
DIFF_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.INT, required=True, description="The older revision's number."),
    OpenApiParameter("to", OpenApiTypes.INT, required=True, description="The newer revision's number."),
]
EXPORT_FORMAT = OpenApiParameter(
    "format", OpenApiTypes.STR, enum=sorted(EXPORT_FORMATS), default="json", description="File format of the download."
)
EXPORT_RESPONSES = {
    (200, "application/json"): OpenApiResponse(PIPELINE_DOCUMENT_SCHEMA, description="The document as a JSON file."),
    (200, "application/yaml"): OpenApiResponse(PIPELINE_DOCUMENT_SCHEMA, description="The document as a YAML file."),
    (400, "application/json"): BAD_QUERY_RESPONSE,
}
VALIDATE_DESCRIPTION = (
    "Validate a pipeline document (JSON or YAML) without saving it. The answer is 200 whether or not the "
    "document is valid: a document that does not parse, or breaks a rule, gives valid=false and one error per "
    "problem at its JSON pointer."
)


@extend_schema_view(
    list=extend_schema(description="Pipelines of the applications you may read."),
    retrieve=extend_schema(parameters=[PIPELINE_ID]),
    create=extend_schema(
        request=DOCUMENT_REQUEST,
        responses={
            201: PipelineSerializer,
            404: OpenApiResponse(ErrorsSerializer, description="No such application, or one you may not read."),
            409: CONFLICT_RESPONSE,
        },
        description="Save a new pipeline from its Spinnaker document (needs write on its existing application). "
        "Every problem with the document is a 400 error at its JSON pointer, and nothing is saved.",
    ),
    update=extend_schema(
        parameters=[PIPELINE_ID],
        request=DOCUMENT_REQUEST,
        responses={200: PipelineSerializer},
        description="Replace the pipeline's document (a new revision); its application and name cannot change.",
    ),
    destroy=extend_schema(parameters=[PIPELINE_ID], description="Delete the pipeline and its revisions."),
)
class PipelineViewSet(RestrictedModelViewSet):
    """Pipelines: saved as Spinnaker documents (JSON or YAML), with every revision kept."""

    queryset = Pipeline.objects.select_related("application")
    serializer_class = PipelineSerializer
    filterset_class = PipelineFilterSet
    parser_classes = DOCUMENT_PARSERS
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        document = request.data
        problems = validate_pipeline(document)
        if not any(problem.pointer == "/application" for problem in problems):
            readable_application(request.user, document["application"])
            check_save_pipeline(Actor.from_request(request), document["application"])
        if problems:
            raise InvalidDocument(problems)
        try:
            with transaction.atomic():
                pipeline, created = do_save_pipeline(document, user=Actor.from_request(request))
                if not created:
                    raise Conflict({"name": f"application {document['application']!r} already has a pipeline "
                                            f"named {document['name']!r}; PUT to it to change it"})
        except IntegrityError:
            raise Conflict({"name": "a pipeline with this name was just saved; PUT to it to change it"}) from None
        headers = {"Location": self.reverse_action("detail", args=[pipeline.pk])}
        return Response(PipelineSerializer(pipeline).data, status=status.HTTP_201_CREATED, headers=headers)

    def update(self, request, *args, **kwargs):
        pipeline = self.get_object()
        saved = do_update_pipeline(pipeline, request.data, user=Actor.from_request(request))
        return Response(PipelineSerializer(saved).data)

    def perform_destroy(self, instance: Pipeline) -> None:
        do_delete_pipeline(instance, user=Actor.from_request(self.request))

    @extend_schema(
        request=DOCUMENT_REQUEST, responses={200: ValidationResultSerializer}, description=VALIDATE_DESCRIPTION
    )
    @action(detail=False, methods=["post"], url_path="validate", url_name="validate", filter_backends=[])
    def validate_document(self, request, **kwargs):
        """Validate a document without saving it: always 200, with ``valid`` and every problem."""
        try:
            problems = validate_pipeline(request.data)
            problems = problems or unknown_secret_problems(request.data)
        except InvalidDocument as error:
            problems = error.problems
        return Response({"valid": not problems, "errors": error_items([problem.as_dict() for problem in problems])})

    @extend_schema(parameters=[PIPELINE_ID], responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=RevisionPagination)
    def revisions(self, request, **kwargs):
        """The pipeline's saved versions, newest first."""
        pipeline = self.get_object()
        page = self.paginate_queryset(pipeline.revisions.defer("definition"))
        return self.get_paginated_response(RevisionSerializer(page, many=True).data)

    @extend_schema(parameters=[PIPELINE_ID, REVISION_NUMBER], responses=RevisionDetailSerializer)
    @action(detail=True, methods=["get"], url_path=r"revisions/(?P<number>[^/.]+)", url_name="revision",
            filter_backends=[])
    def revision(self, request, number: str, **kwargs):
        """One saved version of the pipeline, with its document."""
        pipeline = self.get_object()
        wanted = parse_revision_number(number)
        found = pipeline.revisions.filter(number=wanted).first() if wanted is not None else None
        if found is None:
            raise exceptions.NotFound(f"Pipeline {pipeline.pk} has no revision {number}.")
        return Response(RevisionDetailSerializer(found).data)

    @extend_schema(parameters=[PIPELINE_ID, *DIFF_PARAMETERS], responses={200: DiffSerializer, 400: BAD_QUERY_RESPONSE})
    @action(detail=True, methods=["get"], filter_backends=[])
    def diff(self, request, **kwargs):
        """A unified diff between two revisions' documents (JSON, pretty-printed with sorted keys)."""
        pipeline = self.get_object()
        numbers = revision_numbers(request, ("from", "to"))
        found = {revision.number: revision for revision in pipeline.revisions.filter(number__in=numbers.values())}
        missing = {name: f"no revision {number} of this pipeline" for name, number in numbers.items()
                   if number not in found}
        if missing:
            raise exceptions.ValidationError(missing)
        old, new = found[numbers["from"]], found[numbers["to"]]
        return Response({"from": old.number, "to": new.number, "diff": unified_diff(old, new)})

    @extend_schema(parameters=[PIPELINE_ID], request=RestoreSerializer, responses=PipelineSerializer)
    @action(detail=True, methods=["post"], parser_classes=[JSONParser], filter_backends=[])
    def restore(self, request, **kwargs):
        """Save an earlier revision's document again, as a new revision (needs write)."""
        pipeline = self.get_object()
        actor = Actor.from_request(request)
        check_permission(actor, WRITE, pipeline.application)
        body = RestoreSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        saved = do_restore_revision(pipeline, body.validated_data["revision"], user=actor)
        return Response(PipelineSerializer(saved).data)

    @extend_schema(parameters=[PIPELINE_ID, EXPORT_FORMAT], responses=EXPORT_RESPONSES)
    @action(detail=True, methods=["get"], renderer_classes=list(EXPORT_FORMATS.values()), filter_backends=[])
    def export(self, request, **kwargs):
        """The stored document as a file download, JSON (default) or YAML."""
        pipeline = self.get_object()
        wanted = self.format_kwarg or request.query_params.get("format")
        if wanted is not None and wanted not in EXPORT_FORMATS:
            raise exceptions.ValidationError({"format": f"must be one of {', '.join(sorted(EXPORT_FORMATS))}"})
        stem = slugify(f"{pipeline.application.name}-{pipeline.name}", allow_unicode=True) or "pipeline"
        disposition = content_disposition_header(True, f"{stem}.{request.accepted_renderer.format}")
        return Response(pipeline.definition, headers={"Content-Disposition": disposition})

    def perform_content_negotiation(self, request, force: bool = False):
        # An unknown ?format= of an export is answered by the view (a 400 naming it), not a bare 404.
        return super().perform_content_negotiation(request, force=force or self.action == "export")

    def handle_exception(self, exc):
        if getattr(self, "action", None) == "export":
            # Errors keep the one JSON shape, whatever file format the download would have had.
            self.request.accepted_renderer = DocumentJSONRenderer()
            self.request.accepted_media_type = DocumentJSONRenderer.media_type
        return super().handle_exception(exc)
