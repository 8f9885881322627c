"""Routes of the accounts API: viewsets on the shared router, other views in ``urlpatterns``."""

from django.urls import path

from apps.accounts.api.views import ApplicationPermissionsView, AuditEventViewSet, ServiceAccountViewSet, TokenViewSet
from cdplatform.api.urls import router

router.register("tokens", TokenViewSet, basename="token")
router.register("service-accounts", ServiceAccountViewSet, basename="service-account")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path(
        "applications/<str:name>/permissions/",
        ApplicationPermissionsView.as_view(),
        name="application-permissions",
    ),
]
