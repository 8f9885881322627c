"""An application's clusters, server groups, instances and load balancers, to those who read the application.

Read from the rows the stages and the periodic capacity job keep in line with
the engine; a constant number of queries whatever the size.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.response import Response

from apps.deployments.api.serializers import ApplicationClustersSerializer
from apps.deployments.models import Instance, LoadBalancer, ServerGroup
from apps.pipelines.api.secrets import readable_application


def clusters_of(application) -> dict:
    """The application's live server groups grouped by (account, cluster), and its load balancers."""
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
    return {"application": application.name, "clusters": list(clusters.values()), "loadBalancers": list(balancers)}


class ApplicationClustersView(generics.GenericAPIView):
    """What an application runs, as Deck's clusters tab shows it."""

    serializer_class = ApplicationClustersSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="The application's clusters, server groups, instances and load balancers",
                   responses=ApplicationClustersSerializer)
    def get(self, request, name: str):
        return Response(ApplicationClustersSerializer(clusters_of(readable_application(request, name))).data)
