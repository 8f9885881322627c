"""The API schema's error responses: one shape, declared on every operation it can come from."""

from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "The request is invalid; each error names the field by its JSON pointer.",
    "401": "Not authenticated: send a session cookie or 'Authorization: Bearer cdp_...'.",
    "403": "Authenticated, but not allowed to do this in the application.",
    "404": "No such object, or one you may not read.",
    "409": "The object's current state does not allow this action.",
}


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
            codes = ["401", "403"]
            if "{" in path:
                codes.append("404")
            if method in ("post", "put", "patch"):
                codes.append("400")
            responses = operation.setdefault("responses", {})
            content = {"application/json": {"schema": reference}}
            for code in codes:
                responses.setdefault(code, {"description": ERROR_DESCRIPTIONS[code], "content": content})
    return result
