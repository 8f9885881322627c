"""An application's traffic guards: listed to its readers, added and removed by its writers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.deployments.models import TrafficGuard
from apps.deployments.services.traffic_guards import do_add_traffic_guard, do_remove_traffic_guard, guards_of
from apps.pipelines.api.secrets import readable_application
from cdplatform.api.schema import ErrorsSerializer


class TrafficGuardSerializer(serializers.Serializer):
    """Spinnaker's traffic guard: the engine ``account`` and the cluster's ``stack`` and ``detail`` (``location``
    is kept for Spinnaker's shape and ignored), or the ``cluster`` name itself."""

    account = serializers.CharField(max_length=200)
    location = serializers.CharField(max_length=200, required=False, allow_blank=True)
    stack = serializers.CharField(max_length=100, required=False, allow_blank=True)
    detail = serializers.CharField(max_length=100, required=False, allow_blank=True)
    cluster = serializers.CharField(max_length=200, required=False, allow_blank=True)


class TrafficGuardsView(generics.GenericAPIView):
    """The application's traffic guards."""

    serializer_class = TrafficGuardSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="The application's traffic guards", responses=TrafficGuardSerializer(many=True))
    def get(self, request, name: str):
        return Response(guards_of(readable_application(request, name)))

    @extend_schema(summary="Guard a cluster of the application (write)", request=TrafficGuardSerializer,
                   responses={201: TrafficGuardSerializer(many=True), 409: OpenApiResponse(
                       ErrorsSerializer, description="Another application guards that cluster.")})
    def post(self, request, name: str):
        application = readable_application(request, name)
        body = TrafficGuardSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        do_add_traffic_guard(application, dict(body.validated_data), actor=Actor.from_request(request))
        return Response(guards_of(application), status=status.HTTP_201_CREATED)


class TrafficGuardView(generics.GenericAPIView):
    """One traffic guard of the application."""

    serializer_class = TrafficGuardSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="Remove a traffic guard (write)", request=None, responses={204: None})
    def delete(self, request, name: str, account: str, cluster: str):
        application = readable_application(request, name)
        guard = None if "\x00" in account + cluster else TrafficGuard.objects.select_related(
            "account", "application").filter(application=application, account__name=account, cluster=cluster).first()
        if guard is None:
            raise exceptions.NotFound(f"No traffic guard of cluster {cluster!r} on {account!r}.")
        do_remove_traffic_guard(guard, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
