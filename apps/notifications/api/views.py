"""The notifications API: deliveries (read, with their attempts) and an application's subscriptions.

Deliveries are listed to whoever reads their application (``restrict``);
subscriptions are listed to readers and changed by writers, through
``apps.notifications.services``. No answer carries a subscription's address.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.response import Response

from apps.accounts.audit import Actor
from apps.accounts.permissions import WRITE
from apps.notifications.api.serializers import DeliverySerializer, SubscriptionSerializer
from apps.notifications.filtersets import DeliveryFilterSet
from apps.notifications.models import Delivery, DeliveryAttempt, Subscription
from apps.notifications.services import do_create_subscription, do_delete_subscription
from apps.pipelines.api.secrets import readable_application
from apps.pipelines.checks import check_permission
from cdplatform.api.filters import FilterBackend
from cdplatform.api.pagination import NewestFirstPagination
from cdplatform.api.schema import ErrorsSerializer
from cdplatform.api.viewsets import RestrictedReadOnlyViewSet

APPLICATION_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The application.")
SUBSCRIPTION_ID = OpenApiParameter("subscription", OpenApiTypes.INT, OpenApiParameter.PATH,
                                   description="The subscription's id.")
REFUSED = OpenApiResponse(ErrorsSerializer, description="You may not change this application's subscriptions "
                                                        "(needs write).")


class DeliveryPagination(NewestFirstPagination):
    """Deliveries, newest first."""

    ordering = "-id"


@extend_schema_view(
    list=extend_schema(summary="Notification deliveries, newest first", responses=DeliverySerializer(many=True)),
    retrieve=extend_schema(summary="One notification delivery with its attempts", responses=DeliverySerializer),
)
class DeliveryViewSet(RestrictedReadOnlyViewSet):
    """Every notification sent or being sent for the applications the user reads: target, event, attempts."""

    queryset = Delivery.objects.all()
    serializer_class = DeliverySerializer
    pagination_class = DeliveryPagination
    filter_backends = [FilterBackend]
    filterset_class = DeliveryFilterSet

    def get_queryset(self):
        attempts = DeliveryAttempt.objects.order_by("number")
        return super().get_queryset().select_related("application").prefetch_related(
            Prefetch("attempt_rows", queryset=attempts))


class SubscriptionPagination(NewestFirstPagination):
    """Subscriptions in the order they were made."""

    ordering = "id"


class ApplicationSubscriptionsView(generics.GenericAPIView):
    """An application's subscriptions, inherited by every pipeline of it (read), and adding one (write)."""

    serializer_class = SubscriptionSerializer
    pagination_class = SubscriptionPagination
    queryset = Subscription.objects.all()

    @extend_schema(summary="The application's notification subscriptions", parameters=[APPLICATION_NAME],
                   responses=SubscriptionSerializer(many=True))
    def get(self, request, name: str):
        application = readable_application(request, name)
        rows = Subscription.objects.filter(application=application).select_related("application")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @extend_schema(summary="Subscribe the application to notifications", parameters=[APPLICATION_NAME],
                   request=SubscriptionSerializer, responses={201: SubscriptionSerializer, 403: REFUSED})
    def post(self, request, name: str):
        application = readable_application(request, name)
        actor = Actor.from_request(request)
        check_permission(actor, WRITE, application)  # refused before the body is read, as for every write
        body = SubscriptionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        subscription = do_create_subscription(application, dict(body.validated_data), user=actor)
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


class ApplicationSubscriptionView(generics.GenericAPIView):
    """One subscription of an application: removed by a writer."""

    serializer_class = SubscriptionSerializer
    queryset = Subscription.objects.all()

    @extend_schema(summary="Remove a subscription", parameters=[APPLICATION_NAME, SUBSCRIPTION_ID],
                   responses={204: None, 403: REFUSED})
    def delete(self, request, name: str, subscription: int):
        application = readable_application(request, name)
        found = Subscription.objects.filter(application=application, pk=subscription).select_related(
            "application").first()
        if found is None:
            raise exceptions.NotFound(f"Application {name!r} has no subscription {subscription}.")
        do_delete_subscription(found, user=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
