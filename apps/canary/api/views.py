"""The canary API: metrics accounts (administrators add them), an application's canary configs, analyses.

Bodies are checked by the services (apps/canary/services.py), which answer problems with JSON
pointers; metrics credentials go in and never come out. Configs are read with read on their
application and changed with write; an analysis is read with read.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts.api.views import GrantsView
from apps.accounts.audit import Actor
from apps.canary.api import serializers as s
from apps.canary.governance import ACCOUNT_ACTIONS
from apps.canary.models import CanaryAnalysis, CanaryConfig, PrometheusAccount
from apps.canary.services import (
    check_create_account,
    check_manage_account,
    check_write_configs,
    do_delete_account,
    do_delete_config,
    do_save_account,
    do_save_config,
)
from apps.pipelines.api.secrets import readable_application
from cdplatform.api.viewsets import RestrictedViewSetMixin


@extend_schema_view(
    list=extend_schema(summary="Metrics accounts you may read"),
    retrieve=extend_schema(summary="A metrics account (never its credentials)"),
    create=extend_schema(summary="Add a Prometheus metrics account (administrators)",
                         request=s.PrometheusAccountWriteSerializer, responses={201: s.PrometheusAccountSerializer}),
    update=extend_schema(summary="Change a metrics account (manage)", request=s.PrometheusAccountWriteSerializer,
                         responses=s.PrometheusAccountSerializer),
    destroy=extend_schema(summary="Delete a metrics account (manage)", responses={204: None}),
)
class PrometheusAccountViewSet(RestrictedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                               mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Prometheus servers canary analyses query, by name."""

    queryset = PrometheusAccount.objects.all()
    serializer_class = s.PrometheusAccountSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    filter_backends: list = []
    http_method_names = ["get", "post", "put", "delete"]

    def get_object(self):
        if "\x00" in self.kwargs["name"]:
            raise exceptions.NotFound()
        return super().get_object()

    def _document(self, request) -> dict:
        body = s.PrometheusAccountWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return dict(body.validated_data)

    def create(self, request):
        actor = Actor.from_request(request)
        check_create_account(actor)
        account, _ = do_save_account(self._document(request), actor=actor)
        return Response(self.get_serializer(account).data, status=status.HTTP_201_CREATED)

    def update(self, request, name: str):
        account = self.get_object()
        actor = Actor.from_request(request)
        check_manage_account(actor, account)
        saved, _ = do_save_account({**self._document(request), "name": account.name}, actor=actor)
        return Response(self.get_serializer(saved).data)

    def perform_destroy(self, instance) -> None:
        do_delete_account(instance, actor=Actor.from_request(self.request))


class ApplicationCanaryConfigsView(generics.GenericAPIView):
    """An application's canary configs: listed with read, added (a Kayenta document) with write."""

    serializer_class = s.CanaryConfigSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(summary="The application's canary configs", responses=s.CanaryConfigSerializer(many=True))
    def get(self, request, name: str):
        application = readable_application(request, name)
        configs = CanaryConfig.objects.filter(application=application).select_related("application")
        return Response(s.CanaryConfigSerializer(configs, many=True).data)

    @extend_schema(summary="Add a canary config (Kayenta's JSON format; write)", request=s.CanaryConfigWriteSerializer,
                   responses={201: s.CanaryConfigSerializer})
    def post(self, request, name: str):
        application = readable_application(request, name)
        actor = Actor.from_request(request)
        check_write_configs(actor, application)
        config = do_save_config(application, request.data, actor=actor)
        return Response(s.CanaryConfigSerializer(config).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    retrieve=extend_schema(summary="A canary config (read on its application)"),
    update=extend_schema(summary="Replace a canary config's document (write)", request=s.CanaryConfigWriteSerializer,
                         responses=s.CanaryConfigSerializer),
    destroy=extend_schema(summary="Delete a canary config (write)", responses={204: None}),
)
class CanaryConfigViewSet(RestrictedViewSetMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                          viewsets.GenericViewSet):
    """One canary config by id (the ``canaryConfigId`` a stage names)."""

    queryset = CanaryConfig.objects.select_related("application")
    serializer_class = s.CanaryConfigSerializer
    filter_backends: list = []
    http_method_names = ["get", "put", "delete"]

    def update(self, request, pk=None):
        config = self.get_object()
        actor = Actor.from_request(request)
        check_write_configs(actor, config.application)
        saved = do_save_config(config.application, request.data, actor=actor, config=config)
        return Response(self.get_serializer(saved).data)

    def perform_destroy(self, instance) -> None:
        do_delete_config(instance, actor=Actor.from_request(self.request))


@extend_schema_view(
    list=extend_schema(summary="Canary analyses you may read, newest first"),
    retrieve=extend_schema(summary="A canary analysis: per interval the score, and per metric the samples, "
                                   "the test's figures and the classification with its reason"),
)
class CanaryAnalysisViewSet(RestrictedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """The reports of kayentaCanary stages."""

    queryset = CanaryAnalysis.objects.select_related("application", "stage")
    serializer_class = s.CanaryAnalysisSerializer
    filter_backends: list = []


class PrometheusAccountPermissionsView(GrantsView):
    """Who may read, use and manage a metrics account: listed with read, changed with manage."""

    serializer_class = s.MetricsAccountGrantSerializer
    object_key = "account"
    queryset = PrometheusAccount.objects.all()

    @extend_schema(summary="Who may do what with the metrics account", responses=s.MetricsAccountGrantsSerializer)
    def get(self, request, name: str):
        return super().get(request, name=name)

    @extend_schema(summary="Grant a user or a group read, use or manage", request=s.MetricsAccountGrantSerializer,
                   responses={201: s.MetricsAccountGrantsSerializer})
    def post(self, request, name: str):
        return super().post(request, name=name)

    @extend_schema(summary="Revoke an action from a user or a group",
                   description="The grant is named in a JSON body like POST's, or in query parameters.",
                   request=s.MetricsAccountGrantSerializer, responses={204: None}, parameters=[
                       OpenApiParameter("user", OpenApiTypes.STR, description="User to revoke from."),
                       OpenApiParameter("group", OpenApiTypes.STR, description="Group to revoke from."),
                       OpenApiParameter("action", OpenApiTypes.STR, enum=list(ACCOUNT_ACTIONS))])
    def delete(self, request, name: str):
        return super().delete(request, name=name)
