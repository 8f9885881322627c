"""The API schema's error responses: one shape, declared on every operation it can come from."""

from django.conf import settings
from rest_framework import permissions, serializers

ERROR_DESCRIPTIONS = {
    "400": "The request is invalid; each error names the field by its JSON pointer.",
    "401": "Not authenticated: send a session cookie or 'Authorization: Bearer cdp_...'.",
    "403": "Authenticated, but not allowed to do this in the application.",
    "404": "No such object, or one you may not read.",
    "409": "The object's current state does not allow this action.",
    "413": "The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE bytes.",
    "415": "The body's Content-Type is not one this operation reads.",
    "429": "Too many requests from this token, user or address: wait the seconds Retry-After says.",
}
# A list answers 404 to a cursor it did not give out (rest_framework's CursorPagination).
BAD_CURSOR_DESCRIPTION = "The cursor is not one this list gave out: follow the next and previous links as they are."
# Query parameters never answered with a 400: a bad page size or ordering is ignored, and ``format`` and ``lang``
# (the schema's own, and the export's, which documents its 400 itself) are not filters.
NEVER_REFUSED = {"cursor", "page_size", "ordering", "format", "lang"}


class ErrorItemSerializer(serializers.Serializer):
    pointer = serializers.CharField(help_text="JSON pointer into the request body; empty for the whole request.")
    message = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    errors = ErrorItemSerializer(many=True)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
            },
        }
    },
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation documents the errors it can return."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Errors", ERROR_SCHEMA)
    reference = {"$ref": "#/components/schemas/Errors"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            query = {parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "query"}
            descriptions = {code: ERROR_DESCRIPTIONS[code] for code in ("401", "403", "429")}
            if "{" in path:
                descriptions["404"] = ERROR_DESCRIPTIONS["404"]
            elif "cursor" in query:
                descriptions["404"] = BAD_CURSOR_DESCRIPTION
            if method in ("post", "put", "patch") or "requestBody" in operation or query - NEVER_REFUSED:
                descriptions["400"] = ERROR_DESCRIPTIONS["400"]
            if "requestBody" in operation:
                descriptions["413"] = ERROR_DESCRIPTIONS["413"]
                descriptions["415"] = ERROR_DESCRIPTIONS["415"]
            responses = operation.setdefault("responses", {})
            content = {"application/json": {"schema": reference}}
            for code, description in descriptions.items():
                responses.setdefault(code, {"description": description, "content": content})
    return result


class SchemaAccess(permissions.BasePermission):
    """Who may read the schema and the docs: anyone with API_SCHEMA_PUBLIC, else the signed-in."""

    def has_permission(self, request, view) -> bool:
        return settings.API_SCHEMA_PUBLIC or bool(request.user and request.user.is_authenticated)
