"""Routes of the deployments API: accounts (engines, registries, Kubernetes clusters, artifact accounts) and their
grants."""

from django.urls import path, re_path

from apps.deployments.api.clusters import ApplicationClustersView, ManifestActionView, ServerGroupActionView
from apps.deployments.api.traffic_guards import TrafficGuardsView, TrafficGuardView
from apps.deployments.api.views import (
    ArtifactAccountPermissionsView,
    ArtifactAccountViewSet,
    DockerAccountPermissionsView,
    DockerAccountViewSet,
    KubernetesAccountPermissionsView,
    KubernetesAccountViewSet,
    RegistryAccountPermissionsView,
    RegistryAccountViewSet,
)
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("docker-accounts", DockerAccountViewSet, basename="docker-account")
router.register("registry-accounts", RegistryAccountViewSet, basename="registry-account")
router.register("kubernetes-accounts", KubernetesAccountViewSet, basename="kubernetes-account")
router.register("artifact-accounts", ArtifactAccountViewSet, basename="artifact-account")

urlpatterns = [
    path("applications/<str:name>/clusters/", ApplicationClustersView.as_view(), name="application-clusters"),
    path("applications/<str:name>/traffic-guards/", TrafficGuardsView.as_view(), name="traffic-guards"),
    path("applications/<str:name>/traffic-guards/<str:account>/<str:cluster>/", TrafficGuardView.as_view(),
         name="traffic-guard"),
    re_path(r"^applications/(?P<name>[^/]+)/server-groups/(?P<account>[^/]+)/(?P<server_group>[^/]+)/"
            r"(?P<action>resize|enable|disable|destroy|rollback)/$", ServerGroupActionView.as_view(),
            name="server-group-action"),
    re_path(r"^applications/(?P<name>[^/]+)/manifests/(?P<account>[^/]+)/(?P<namespace>[^/]+)/(?P<kind>[^/]+)/"
            r"(?P<resource>[^/]+)/(?P<action>scale|enable|disable|delete|undo-rollout)/$",
            ManifestActionView.as_view(), name="manifest-action"),
    path("docker-accounts/<str:name>/permissions/", DockerAccountPermissionsView.as_view(),
         name="docker-account-permissions"),
    path("registry-accounts/<str:name>/permissions/", RegistryAccountPermissionsView.as_view(),
         name="registry-account-permissions"),
    path("kubernetes-accounts/<str:name>/permissions/", KubernetesAccountPermissionsView.as_view(),
         name="kubernetes-account-permissions"),
    path("artifact-accounts/<str:name>/permissions/", ArtifactAccountPermissionsView.as_view(),
         name="artifact-account-permissions"),
    *router.urls,
]
