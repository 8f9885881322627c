"""Routes of the canary API: metrics accounts, canary configs (an application's, and by id), analyses."""

from django.urls import path

from apps.canary.api.views import (
    ApplicationCanaryConfigsView,
    CanaryAnalysisViewSet,
    CanaryConfigViewSet,
    PrometheusAccountPermissionsView,
    PrometheusAccountViewSet,
)
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("prometheus-accounts", PrometheusAccountViewSet, basename="prometheus-account")
router.register("canary-configs", CanaryConfigViewSet, basename="canary-config")
router.register("canary-analyses", CanaryAnalysisViewSet, basename="canary-analysis")

urlpatterns = [
    path("applications/<str:name>/canary-configs/", ApplicationCanaryConfigsView.as_view(),
         name="application-canary-configs"),
    path("prometheus-accounts/<str:name>/permissions/", PrometheusAccountPermissionsView.as_view(),
         name="prometheus-account-permissions"),
    *router.urls,
]
