"""Routes of the accounts API: its own router, and its other views."""

from apps.accounts.api.views import AuditEventViewSet, ServiceAccountViewSet, TokenViewSet
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("tokens", TokenViewSet, basename="token")
router.register("service-accounts", ServiceAccountViewSet, basename="service-account")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = [*router.urls]
