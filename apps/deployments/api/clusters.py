"""An application's clusters, server groups, instances and load balancers, to those who read the application.

Docker's are read from the rows the stages and the periodic capacity job keep
in line with the engine, in a constant number of queries whatever the size;
Kubernetes' live from the clusters (services/kubernetes_clusters.py), a
constant number of calls per namespace the application was deployed to.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.deployments.api.serializers import (
    ApplicationClustersSerializer,
    ManifestActionResultSerializer,
    ManifestActionSerializer,
    ServerGroupActionResultSerializer,
    ServerGroupActionSerializer,
)
from apps.deployments.models import Instance, KubernetesAccount, LoadBalancer, ServerGroup
from apps.deployments.services import kubernetes_clusters
from apps.deployments.services.actions import ACTIONS, EngineFailed, do_server_group_action
from apps.deployments.services.kubernetes_clusters import ClusterUnavailable, kubernetes_clusters_of
from apps.pipelines.api.secrets import readable_application
from cdplatform.api.schema import ErrorsSerializer


def clusters_of(application) -> dict:
    """The application's live server groups grouped by (account, cluster), and its load balancers (Docker's and
    Kubernetes')."""
    live = Instance.objects.filter(ended_at=None).order_by("created_at", "name")
    groups = (ServerGroup.objects.filter(application=application, destroyed_at=None).select_related("account")
              .prefetch_related(Prefetch("instances", queryset=live, to_attr="live_instances"))
              .order_by("cluster", "-created_at"))
    clusters: dict[tuple[str, str], dict] = {}
    for group in groups:
        key = (group.account.name, group.cluster)
        clusters.setdefault(key, {"name": group.cluster, "account": group.account.name, "serverGroups": []})
        clusters[key]["serverGroups"].append(group)
    balancers = LoadBalancer.objects.filter(application=application).select_related("account")
    kubernetes = kubernetes_clusters_of(application)
    return {"application": application.name, "clusters": list(clusters.values()), "loadBalancers": list(balancers),
            "kubernetesClusters": kubernetes.clusters, "kubernetesLoadBalancers": kubernetes.load_balancers,
            "unavailable": kubernetes.unavailable}


class ApplicationClustersView(generics.GenericAPIView):
    """What an application runs, as Deck's clusters tab shows it."""

    serializer_class = ApplicationClustersSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="The application's clusters, server groups, instances and load balancers",
                   responses=ApplicationClustersSerializer)
    def get(self, request, name: str):
        return Response(ApplicationClustersSerializer(clusters_of(readable_application(request, name))).data)


class EngineUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The Docker engine or the load balancer failed."


def live_group(application, account: str, name: str) -> ServerGroup:
    """The application's live server group ``name`` on ``account``; 404 otherwise."""
    if "\x00" in account or "\x00" in name:
        raise exceptions.NotFound()
    group = (ServerGroup.objects.filter(application=application, account__name=account, name=name, destroyed_at=None)
             .select_related("account", "application").first())
    if group is None:
        raise exceptions.NotFound(f"No live server group {name!r} on account {account!r}.")
    return group


class ServerGroupActionView(generics.GenericAPIView):
    """Resize, enable, disable, destroy or roll back one server group (execute on the application, deploy on the
    account); 409 when a traffic guard or the cluster's state refuses it."""

    serializer_class = ServerGroupActionSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Resize, enable, disable, destroy or roll back a server group",
        description="`resize` needs `capacity.desired`; `rollback` enables the cluster's previous server group "
                    "(resized up to this one's size) and disables this one. Disabling, destroying or resizing to 0 "
                    "the last enabled group of a cluster with a traffic guard is refused (409).",
        parameters=[OpenApiParameter("action", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(ACTIONS))],
        request=ServerGroupActionSerializer, responses={
            200: ServerGroupActionResultSerializer,
            409: OpenApiResponse(ErrorsSerializer, description="A traffic guard or the cluster's state refuses it."),
            503: OpenApiResponse(ErrorsSerializer, description="The account's Docker engine or the load balancer "
                                                               "failed or did not answer.")})
    def post(self, request, name: str, account: str, server_group: str, action: str):
        group = live_group(readable_application(request, name), account, server_group)
        body = ServerGroupActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        desired = body.validated_data.get("capacity", {}).get("desired")
        if action == "resize" and desired is None:
            raise exceptions.ValidationError({"capacity": {"desired": ["This field is required for a resize."]}})
        try:
            details = do_server_group_action(group, action, actor=Actor.from_request(request), desired=desired)
        except EngineFailed as error:
            raise EngineUnavailable(str(error)) from None
        return Response({"action": action, "serverGroup": group.name, "details": details})


class ClusterUnreachable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The Kubernetes cluster did not answer."


def kubernetes_account_named(name: str) -> KubernetesAccount:
    account = KubernetesAccount.objects.filter(name=name).first() if "\x00" not in name else None
    if account is None:
        raise exceptions.NotFound(f"No Kubernetes account {name!r}.")
    return account


class ManifestActionView(generics.GenericAPIView):
    """Scale, enable, disable, delete or undo the rollout of one of the application's Kubernetes resources (execute
    on the application, deploy on the account); 409 when the resource is not the application's or the action
    does not apply to its kind."""

    serializer_class = ManifestActionSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Scale, enable, disable, delete or undo the rollout of a Kubernetes server group",
        description="`scale` needs `replicas` (Deployment, ReplicaSet, StatefulSet); `enable` and `disable` move a "
                    "ReplicaSet deployed with traffic management in and out of its services; `undo-rollout` "
                    "rolls a Deployment back `revisionsBack` revisions (default 1); `delete` deletes the resource "
                    "and what it owns. The account's namespaces and kinds apply (400).",
        parameters=[OpenApiParameter("action", OpenApiTypes.STR, OpenApiParameter.PATH,
                                     enum=list(kubernetes_clusters.ACTIONS))],
        request=ManifestActionSerializer, responses={
            200: ManifestActionResultSerializer,
            409: OpenApiResponse(ErrorsSerializer, description="Not the application's resource, or the action does "
                                                               "not apply to it."),
            503: OpenApiResponse(ErrorsSerializer, description="The cluster did not answer.")})
    def post(self, request, name: str, account: str, namespace: str, kind: str, resource: str, action: str):
        application = readable_application(request, name)
        body = ManifestActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        replicas = body.validated_data.get("replicas")
        if action == "scale" and replicas is None:
            raise exceptions.ValidationError({"replicas": ["This field is required for a scale."]})
        try:
            details = kubernetes_clusters.do_manifest_action(
                application, kubernetes_account_named(account), namespace, kind, resource, action,
                actor=Actor.from_request(request), replicas=replicas,
                revisions_back=body.validated_data["revisionsBack"])
        except ClusterUnavailable as error:
            raise ClusterUnreachable(str(error)) from None
        return Response({"action": action, "manifest": details["manifest"], "details": details})
