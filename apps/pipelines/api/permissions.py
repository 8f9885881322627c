"""Who may read, write, execute and manage grants in an application: the accounts app's grants view, for them."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from apps.accounts.api.serializers import BaseGrantSerializer, GranteeSerializer
from apps.accounts.api.views import GrantsView
from apps.pipelines.governance import APPLICATION_ACTIONS
from apps.pipelines.models import Application


class GrantSerializer(BaseGrantSerializer):
    """A grant: a user or a group (name exactly one), and the action: read, write, execute or manage."""

    action = serializers.ChoiceField(choices=list(APPLICATION_ACTIONS))


class ApplicationGrantsSerializer(serializers.Serializer):
    """Who may do what in an application: users and groups, each with their actions."""

    application = serializers.CharField()
    users = GranteeSerializer(many=True)
    groups = GranteeSerializer(many=True)


GRANT_QUERY_PARAMETERS = [
    OpenApiParameter("user", OpenApiTypes.STR, description="User to revoke from (or send the JSON body)."),
    OpenApiParameter("group", OpenApiTypes.STR, description="Group to revoke from."),
    OpenApiParameter("action", OpenApiTypes.STR, enum=list(APPLICATION_ACTIONS)),
]


class ApplicationPermissionsView(GrantsView):
    """Who may read, write, execute and manage in an application: listed with read, changed with manage."""

    queryset = Application.objects.all()
    serializer_class = GrantSerializer
    object_key = "application"

    @extend_schema(summary="Who may do what in the application", responses=ApplicationGrantsSerializer)
    def get(self, request, name: str):
        return super().get(request, name=name)

    @extend_schema(
        summary="Grant a user or a group an action",
        request=GrantSerializer,
        responses={201: ApplicationGrantsSerializer},
    )
    def post(self, request, name: str):
        return super().post(request, name=name)

    @extend_schema(
        summary="Revoke an action from a user or a group",
        description="The grant is named in a JSON body like POST's, or in query parameters.",
        request=GrantSerializer,
        parameters=GRANT_QUERY_PARAMETERS,
        responses={204: None},
    )
    def delete(self, request, name: str):
        return super().delete(request, name=name)
