"""Routes of the pipelines API: its own router, and the application grants view."""

from django.urls import path

from apps.pipelines.api.executions import ExecutionViewSet
from apps.pipelines.api.permissions import ApplicationPermissionsView
from apps.pipelines.api.pipelines import ApplicationViewSet, PipelineViewSet
from apps.pipelines.api.secrets import ApplicationSecretsView, ApplicationSecretView
from apps.pipelines.api.stage_types import StageTypeViewSet
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("executions", ExecutionViewSet, basename="execution")
router.register("applications", ApplicationViewSet, basename="application")
router.register("pipelines", PipelineViewSet, basename="pipeline")
router.register("stage-types", StageTypeViewSet, basename="stage-type")

urlpatterns = [
    path("applications/<str:name>/permissions/", ApplicationPermissionsView.as_view(),
         name="application-permissions"),
    path("applications/<str:name>/secrets/", ApplicationSecretsView.as_view(), name="application-secrets"),
    path("applications/<str:name>/secrets/<str:secret>/", ApplicationSecretView.as_view(),
         name="application-secret"),
    *router.urls,
]
