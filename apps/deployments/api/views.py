"""The accounts API of deployments: Docker engines, registries, Kubernetes clusters and artifact accounts, listed
to their readers, changed by managers.

Bodies are checked by the services (apps/deployments/services/accounts.py, kubernetes_accounts.py and
artifact_accounts.py),
which answer problems with JSON pointers; credentials go in and never come out.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.response import Response

from apps.accounts.api.views import GrantsView
from apps.accounts.audit import Actor
from apps.deployments.api import serializers as s
from apps.deployments.governance import ACCOUNT_ACTIONS, ARTIFACT_ACCOUNT_ACTIONS
from apps.deployments.models import ArtifactAccount, DockerAccount, KubernetesAccount, RegistryAccount
from apps.deployments.services.accounts import (
    check_create_account,
    check_manage_account,
    do_delete_account,
    do_save_docker_account,
    do_save_registry_account,
)
from apps.deployments.services.artifact_accounts import do_save_artifact_account
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from cdplatform.api.schema import ErrorsSerializer
from cdplatform.api.viewsets import RestrictedViewSetMixin


class AccountViewSet(RestrictedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Accounts by name: read by their readers, created by administrators, changed and deleted by managers."""

    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    filter_backends: list = []
    write_serializer_class: type = s.RegistryAccountWriteSerializer
    save = staticmethod(do_save_registry_account)

    def get_object(self):
        if "\x00" in self.kwargs["name"]:
            raise exceptions.NotFound()
        return super().get_object()

    def _document(self, request) -> dict:
        body = self.write_serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        return dict(body.validated_data)

    def create(self, request):
        actor = Actor.from_request(request)
        check_create_account(actor)  # refused before the body is read, as for every write
        account, _ = self.save(self._document(request), actor=actor)
        return Response(self.get_serializer(account).data, status=status.HTTP_201_CREATED)

    def update(self, request, name: str):
        account = self.get_object()
        actor = Actor.from_request(request)
        check_manage_account(actor, account)
        document = {**self._document(request), "name": account.name}
        saved, _ = self.save(document, actor=actor)
        return Response(self.get_serializer(saved).data)

    def perform_destroy(self, instance) -> None:
        do_delete_account(instance, actor=Actor.from_request(self.request))


@extend_schema_view(
    list=extend_schema(summary="Registry accounts you may read"),
    retrieve=extend_schema(summary="A registry account (never its credentials)"),
    create=extend_schema(summary="Add a registry account (administrators)", request=s.RegistryAccountWriteSerializer,
                         responses={201: s.RegistryAccountSerializer}),
    update=extend_schema(summary="Change a registry account (manage)", request=s.RegistryAccountWriteSerializer,
                         responses=s.RegistryAccountSerializer),
    destroy=extend_schema(summary="Delete a registry account (manage)", responses={204: None}),
)
class RegistryAccountViewSet(AccountViewSet):
    """Container registries images are pushed to and pulled from."""

    queryset = RegistryAccount.objects.all()
    serializer_class = s.RegistryAccountSerializer
    write_serializer_class = s.RegistryAccountWriteSerializer
    save = staticmethod(do_save_registry_account)
    http_method_names = ["get", "post", "put", "delete"]


@extend_schema_view(
    list=extend_schema(summary="Docker engine accounts you may read"),
    retrieve=extend_schema(summary="A Docker engine account (never its client key)"),
    create=extend_schema(summary="Add a Docker engine account (administrators)",
                         request=s.DockerAccountWriteSerializer, responses={201: s.DockerAccountSerializer}),
    update=extend_schema(summary="Change a Docker engine account (manage)", request=s.DockerAccountWriteSerializer,
                         responses=s.DockerAccountSerializer),
    destroy=extend_schema(summary="Delete a Docker engine account (manage)", responses={204: None, 409: OpenApiResponse(
        ErrorsSerializer, description="The account still runs server groups or load balancers.")}),
)
class DockerAccountViewSet(AccountViewSet):
    """Docker engines server groups are deployed to."""

    queryset = DockerAccount.objects.prefetch_related("registries")
    serializer_class = s.DockerAccountSerializer
    write_serializer_class = s.DockerAccountWriteSerializer
    save = staticmethod(do_save_docker_account)
    http_method_names = ["get", "post", "put", "delete"]


@extend_schema_view(
    list=extend_schema(summary="Kubernetes accounts you may read"),
    retrieve=extend_schema(summary="A Kubernetes account (never its kubeconfig's contents)"),
    create=extend_schema(summary="Add a Kubernetes account (administrators)",
                         request=s.KubernetesAccountWriteSerializer, responses={201: s.KubernetesAccountSerializer}),
    update=extend_schema(summary="Change a Kubernetes account (manage)", request=s.KubernetesAccountWriteSerializer,
                         responses=s.KubernetesAccountSerializer),
    destroy=extend_schema(summary="Delete a Kubernetes account (manage)", responses={204: None}),
)
class KubernetesAccountViewSet(AccountViewSet):
    """Kubernetes clusters manifests are deployed to."""

    queryset = KubernetesAccount.objects.all()
    serializer_class = s.KubernetesAccountSerializer
    write_serializer_class = s.KubernetesAccountWriteSerializer
    save = staticmethod(do_save_kubernetes_account)
    http_method_names = ["get", "post", "put", "delete"]


@extend_schema_view(
    list=extend_schema(summary="Artifact accounts you may read"),
    retrieve=extend_schema(summary="An artifact account (never its password or token)"),
    create=extend_schema(summary="Add an artifact account (administrators)",
                         request=s.ArtifactAccountWriteSerializer, responses={201: s.ArtifactAccountSerializer}),
    update=extend_schema(summary="Change an artifact account (manage)", request=s.ArtifactAccountWriteSerializer,
                         responses=s.ArtifactAccountSerializer),
    destroy=extend_schema(summary="Delete an artifact account (manage)", responses={204: None}),
)
class ArtifactAccountViewSet(AccountViewSet):
    """Credentials stages read artifacts (files of git repositories, GitHub, GitLab, Bitbucket, HTTP) with."""

    queryset = ArtifactAccount.objects.all()
    serializer_class = s.ArtifactAccountSerializer
    write_serializer_class = s.ArtifactAccountWriteSerializer
    save = staticmethod(do_save_artifact_account)
    http_method_names = ["get", "post", "put", "delete"]


class AccountPermissionsView(GrantsView):
    """Who may read, deploy to and manage an account: listed with read, changed with manage."""

    serializer_class = s.AccountGrantSerializer
    object_key = "account"

    @extend_schema(summary="Who may do what with the account", responses=s.AccountGrantsSerializer)
    def get(self, request, name: str):
        return super().get(request, name=name)

    @extend_schema(summary="Grant a user or a group read, deploy or manage", request=s.AccountGrantSerializer,
                   responses={201: s.AccountGrantsSerializer})
    def post(self, request, name: str):
        return super().post(request, name=name)

    @extend_schema(summary="Revoke an action from a user or a group",
                   description="The grant is named in a JSON body like POST's, or in query parameters.",
                   request=s.AccountGrantSerializer, responses={204: None}, parameters=[
                       OpenApiParameter("user", OpenApiTypes.STR, description="User to revoke from."),
                       OpenApiParameter("group", OpenApiTypes.STR, description="Group to revoke from."),
                       OpenApiParameter("action", OpenApiTypes.STR, enum=list(ACCOUNT_ACTIONS))])
    def delete(self, request, name: str):
        return super().delete(request, name=name)


class DockerAccountPermissionsView(AccountPermissionsView):
    queryset = DockerAccount.objects.all()


class RegistryAccountPermissionsView(AccountPermissionsView):
    queryset = RegistryAccount.objects.all()


class KubernetesAccountPermissionsView(AccountPermissionsView):
    queryset = KubernetesAccount.objects.all()


class ArtifactAccountPermissionsView(AccountPermissionsView):
    """Who may read, use and manage an artifact account."""

    queryset = ArtifactAccount.objects.all()
    serializer_class = s.ArtifactAccountGrantSerializer

    @extend_schema(summary="Who may do what with the artifact account", responses=s.AccountGrantsSerializer)
    def get(self, request, name: str):
        return super().get(request, name=name)

    @extend_schema(summary="Grant a user or a group read, use or manage", request=s.ArtifactAccountGrantSerializer,
                   responses={201: s.AccountGrantsSerializer})
    def post(self, request, name: str):
        return super().post(request, name=name)

    @extend_schema(summary="Revoke an action from a user or a group",
                   description="The grant is named in a JSON body like POST's, or in query parameters.",
                   request=s.ArtifactAccountGrantSerializer, responses={204: None}, parameters=[
                       OpenApiParameter("user", OpenApiTypes.STR, description="User to revoke from."),
                       OpenApiParameter("group", OpenApiTypes.STR, description="Group to revoke from."),
                       OpenApiParameter("action", OpenApiTypes.STR, enum=list(ARTIFACT_ACCOUNT_ACTIONS))])
    def delete(self, request, name: str):
        return super().delete(request, name=name)
