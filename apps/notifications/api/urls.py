"""Routes of the notifications API."""

from django.urls import path

from apps.notifications.api.views import ApplicationSubscriptionsView, ApplicationSubscriptionView, DeliveryViewSet
from cdplatform.api.routers import ApiRouter

router = ApiRouter()
router.register("notification-deliveries", DeliveryViewSet, basename="notification-delivery")

urlpatterns = [
    path("applications/<str:name>/notifications/", ApplicationSubscriptionsView.as_view(),
         name="application-notifications"),
    path("applications/<str:name>/notifications/<int:subscription>/", ApplicationSubscriptionView.as_view(),
         name="application-notification"),
    *router.urls,
]
