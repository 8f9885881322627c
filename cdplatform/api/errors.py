"""One JSON shape for every error: ``{"errors": [{"pointer": "/field/0", "message": "..."}]}``.

``pointer`` is an RFC 6901 JSON pointer into the request body — or, for a
query parameter, ``/<name>`` — and "" when the error is about the request as
a whole. Validation errors, refused actions (403 when the user may not, 409 when the state does not allow it)
and pipeline-document problems all come out this way; so do 401/403/404/405, and
413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.accounts.permissions import PermissionRefused
from apps.pipelines.problems import InvalidDocument, pointer_join
from apps.pipelines.services import ActionRefused
from cdplatform.api.throttling import throttle_unauthenticated


def _flatten(detail, pointer: str = "") -> list[dict]:
    """DRF's nested error details as a flat list of pointer/message pairs."""
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            where = pointer if key in ("non_field_errors", "detail") else pointer_join(pointer, key)
            errors.extend(_flatten(value, where))
        return errors
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"pointer": pointer, "message": str(item)} for item in detail]
        errors = []
        for index, item in enumerate(detail):
            errors.extend(_flatten(item, pointer_join(pointer, index) if isinstance(item, dict | list) else pointer))
        return errors
    return [{"pointer": pointer, "message": str(detail)}]


def encodable(text: str) -> str:
    """``text`` with each lone surrogate (a JSON ``"\\ud800"`` escape in the request) written out as that escape.

    Errors quote the request (keys in pointers, values in messages), and a
    response with a lone surrogate in it cannot be encoded as UTF-8.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_items(errors: list[dict]) -> list[dict]:
    """Pointer/message pairs that can always be rendered."""
    return [{"pointer": encodable(error["pointer"]), "message": encodable(error["message"])} for error in errors]


def error_response(errors: list[dict], status_code: int, headers: dict | None = None) -> Response:
    return Response({"errors": error_items(errors)}, status=status_code, headers=headers)


def exception_handler(exc, context):
    """DRF's handler, then every error rewritten to the one shape; pipeline problems and refusals added."""
    if isinstance(exc, InvalidDocument):
        return error_response([problem.as_dict() for problem in exc.problems], status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PermissionRefused):
        # A field is a key ("application") or already a pointer ("/triggers/0/runAsUser").
        pointer = exc.field if exc.field.startswith("/") else pointer_join("", exc.field) if exc.field else ""
        return error_response([{"pointer": pointer, "message": exc.message}], status.HTTP_403_FORBIDDEN)
    if isinstance(exc, ActionRefused):
        return error_response([{"pointer": "", "message": str(exc)}], status.HTTP_409_CONFLICT)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
        return error_response([{"pointer": "", "message": message}], status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and "request" in context:
        exc = throttle_unauthenticated(context["request"], context.get("view")) or exc
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    headers = {name: value for name, value in response.items() if name in ("WWW-Authenticate", "Retry-After", "Allow")}
    return error_response(_flatten(response.data), response.status_code, headers)
