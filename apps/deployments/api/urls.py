"""Routes of the deployments API: accounts (engines, registries) and their grants."""

from django.urls import path

from apps.deployments.api.clusters import ApplicationClustersView
from apps.deployments.api.views import (
    DockerAccountPermissionsView,
    DockerAccountViewSet,
    RegistryAccountPermissionsView,
    RegistryAccountViewSet,
)
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("docker-accounts", DockerAccountViewSet, basename="docker-account")
router.register("registry-accounts", RegistryAccountViewSet, basename="registry-account")

urlpatterns = [
    path("applications/<str:name>/clusters/", ApplicationClustersView.as_view(), name="application-clusters"),
    path("docker-accounts/<str:name>/permissions/", DockerAccountPermissionsView.as_view(),
         name="docker-account-permissions"),
    path("registry-accounts/<str:name>/permissions/", RegistryAccountPermissionsView.as_view(),
         name="registry-account-permissions"),
    *router.urls,
]
