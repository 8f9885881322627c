"""An application's secrets: names listed to its readers, values set, replaced and deleted by its writers.

No response carries a value, and no endpoint reads one back: a value goes
in (POST, PUT) and is only ever used by the stages that reference it.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.accounts.permissions import READ, WRITE
from apps.pipelines.models import Application, Secret
from apps.pipelines.secrets.services import (
    MAX_VALUE_LENGTH,
    MIN_VALUE_LENGTH,
    check_permission,
    do_delete_secret,
    do_set_secret,
)
from cdplatform.api.pagination import NewestFirstPagination
from cdplatform.api.schema import ErrorsSerializer


class SecretSerializer(serializers.ModelSerializer):
    """A secret as anyone who reads its application sees it: its name and who set it when, never its value."""

    application = serializers.CharField(source="application.name", read_only=True)

    class Meta:
        model = Secret
        fields = ["application", "name", "created_at", "created_by", "updated_at", "updated_by"]
        read_only_fields = fields


class SecretValueSerializer(serializers.Serializer):
    """A secret's new value (write-only: it is never answered back)."""

    value = serializers.CharField(write_only=True, trim_whitespace=False, min_length=MIN_VALUE_LENGTH,
                                  max_length=MAX_VALUE_LENGTH)


class SecretCreateSerializer(SecretValueSerializer):
    """A secret to set: its name and value; a name the application already has gets the new value."""

    name = serializers.CharField(max_length=100)


class SecretPagination(NewestFirstPagination):
    """An application's secrets by name."""

    ordering = "name"


APPLICATION_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The application.")
SECRET_NAME = OpenApiParameter("secret", OpenApiTypes.STR, OpenApiParameter.PATH, description="The secret's name.")
REFUSED = OpenApiResponse(ErrorsSerializer, description="You may not manage this application's secrets (needs write).")


def readable_application(request, name: str) -> Application:
    """The application named in the URL, if the user may read it; 404 otherwise."""
    # No name has a NUL in it, and PostgreSQL refuses to compare with one.
    found = Application.objects.restrict(request.user, READ).named(name)
    application = None if "\x00" in name else found.first()
    if application is None:
        raise exceptions.NotFound(f"No application {name!r}.")
    return application


class ApplicationSecretsView(generics.GenericAPIView):
    """The names of an application's secrets (read), and setting one (write)."""

    serializer_class = SecretSerializer
    pagination_class = SecretPagination
    queryset = Secret.objects.all()

    @extend_schema(summary="The application's secrets: names only", parameters=[APPLICATION_NAME],
                   responses=SecretSerializer(many=True))
    def get(self, request, name: str):
        application = readable_application(request, name)
        page = self.paginate_queryset(Secret.objects.filter(application=application).select_related("application"))
        return self.get_paginated_response(SecretSerializer(page, many=True).data)

    @extend_schema(
        summary="Set a secret (create it, or replace its value)",
        parameters=[APPLICATION_NAME],
        request=SecretCreateSerializer,
        responses={201: SecretSerializer, 200: SecretSerializer, 403: REFUSED},
    )
    def post(self, request, name: str):
        application = readable_application(request, name)
        actor = Actor.from_request(request)
        check_permission(actor, WRITE, application)  # refused before the body is read, as for every write
        body = SecretCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        secret, created = do_set_secret(application, body.validated_data["name"], body.validated_data["value"],
                                        user=actor)
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(SecretSerializer(secret).data, status=answer)


class ApplicationSecretView(generics.GenericAPIView):
    """One secret of an application: its value replaced, or the secret deleted (write)."""

    serializer_class = SecretSerializer
    queryset = Secret.objects.all()

    def get_object(self) -> Secret:
        name, secret = self.kwargs["name"], self.kwargs["secret"]
        application = readable_application(self.request, name)
        found = None if "\x00" in secret else Secret.objects.filter(
            application=application, name=secret).select_related("application").first()
        if found is None:
            raise exceptions.NotFound(f"Application {name!r} has no secret {secret!r}.")
        return found

    @extend_schema(summary="One secret: its name, never its value", parameters=[APPLICATION_NAME, SECRET_NAME],
                   responses=SecretSerializer)
    def get(self, request, name: str, secret: str):
        return Response(SecretSerializer(self.get_object()).data)

    @extend_schema(summary="Replace a secret's value", parameters=[APPLICATION_NAME, SECRET_NAME],
                   request=SecretValueSerializer, responses={200: SecretSerializer, 403: REFUSED})
    def put(self, request, name: str, secret: str):
        found = self.get_object()
        actor = Actor.from_request(request)
        check_permission(actor, WRITE, found.application)
        body = SecretValueSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        saved, _ = do_set_secret(found.application, found.name, body.validated_data["value"], user=actor)
        return Response(SecretSerializer(saved).data)

    @extend_schema(summary="Delete a secret", parameters=[APPLICATION_NAME, SECRET_NAME],
                   responses={204: None, 403: REFUSED})
    def delete(self, request, name: str, secret: str):
        do_delete_secret(self.get_object(), user=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
