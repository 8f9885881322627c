"""An application's traffic guards: listed to its readers, added and removed by its writers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.deployments.services.traffic_guards import (
    CLOUD_PROVIDERS,
    do_add_traffic_guard,
    do_remove_traffic_guard,
    guard_to_remove,
    guards_of,
)
from apps.pipelines.api.secrets import readable_application
from cdplatform.api.schema import ErrorsSerializer


class TrafficGuardSerializer(serializers.Serializer):
    """Spinnaker's traffic guard: the ``account`` (a Docker engine or a Kubernetes account) and the cluster's
    ``stack`` and ``detail``, or the ``cluster`` name itself (a Kubernetes moniker cluster, e.g. ``replicaSet
    web``). ``location`` is the namespace of a Kubernetes guard (required) and ignored for a Docker one;
    ``cloudProvider`` settles an account name both kinds use."""

    account = serializers.CharField(max_length=200)
    location = serializers.CharField(max_length=200, required=False, allow_blank=True)
    cloudProvider = serializers.ChoiceField(choices=CLOUD_PROVIDERS, required=False, write_only=True)
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
                       ErrorsSerializer, description="Another application guards that cluster."),
                       400: OpenApiResponse(ErrorsSerializer, description="A field is wrong; the error names it.")})
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

    @extend_schema(summary="Remove a traffic guard (write)", request=None, responses={204: None},
                   parameters=[OpenApiParameter("location", str, description="The namespace of a Kubernetes guard "
                                                "(needed when the cluster is guarded in several)")])
    def delete(self, request, name: str, account: str, cluster: str):
        application = readable_application(request, name)
        guard = guard_to_remove(application, account, cluster, request.query_params.get("location", "")[:253])
        if guard is None:
            raise exceptions.NotFound(f"No traffic guard of cluster {cluster!r} on {account!r}.")
        do_remove_traffic_guard(guard, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
