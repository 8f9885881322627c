"""Routes of the triggers API: its own router."""

from apps.triggers.api.views import TriggerEventViewSet
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("trigger-events", TriggerEventViewSet, basename="trigger-event")

urlpatterns = [*router.urls]
