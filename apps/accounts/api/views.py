"""The accounts API: personal tokens, service accounts and their tokens, grants (a base view), the audit log.

Grants go through ``do_grant``/``do_revoke``, which audit them; issuing and
revoking tokens and creating or deleting service accounts are audited here,
in the same transaction as the change.
"""


from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.api.serializers import (
    AuditEventSerializer,
    NewTokenSerializer,
    ServiceAccountCreateSerializer,
    ServiceAccountSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from apps.accounts.audit import Actor, record
from apps.accounts.filtersets import AuditEventFilterSet
from apps.accounts.models import ApiToken, AuditEvent, ServiceAccount
from apps.accounts.permissions import READ, governor_of
from apps.accounts.services import check_manage_grants, do_create_token, do_grant, do_revoke, do_revoke_token
from cdplatform.api.filters import FilterBackend
from cdplatform.api.pagination import NewestFirstPagination

CODENAME = "permission__codename"


def _validated(serializer_class, request, **context) -> dict:
    """The request body validated by ``serializer_class``; a ValidationError (400 with pointers) otherwise."""
    serializer = serializer_class(data=request.data, context={"request": request, **context})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def issue_token(request, owner, body: dict) -> Response:
    """Issue a token for ``owner`` (the requesting user or a service account); 201 with the token, shown once.

    Only a signed-in person may issue tokens: a token cannot mint more tokens,
    so a leaked one cannot outlive its own revocation.
    """
    if isinstance(request.auth, ApiToken):
        raise exceptions.PermissionDenied("Tokens are issued from a signed-in session, not with another token.")
    try:
        with transaction.atomic():
            row, token = do_create_token(owner, body["name"], expires_at=body["expiresAt"])
            record("token.created", Actor.from_request(request), object_type="token", object_id=row.pk,
                   details={"user": owner.username, "name": row.name, "prefix": row.key_prefix})
    except IntegrityError:  # the same name, created by a concurrent request
        raise exceptions.ValidationError({"name": ["A token with this name exists already."]}) from None
    return Response(NewTokenSerializer(row, context={"token": token}).data, status=status.HTTP_201_CREATED)


# --- Tokens -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Your API tokens, newest first"),
    destroy=extend_schema(summary="Revoke one of your tokens", responses={204: None}),
)
class TokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The requesting user's own API tokens; anyone else's answer 404."""

    serializer_class = TokenSerializer
    filter_backends = []

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(summary="Issue a token", request=TokenCreateSerializer, responses={201: NewTokenSerializer})
    def create(self, request):
        body = _validated(TokenCreateSerializer, request, owner=request.user)
        return issue_token(request, request.user, body)

    def perform_destroy(self, instance: ApiToken) -> None:
        """Revoke rather than delete: the row stays, with revokedAt, for the record."""
        with transaction.atomic():
            if instance.revoked_at is None:
                record("token.revoked", Actor.from_request(self.request), object_type="token", object_id=instance.pk,
                       details={"user": instance.user.username, "name": instance.name})
            do_revoke_token(instance)


# --- Service accounts ---------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Service accounts owned by your groups"),
    retrieve=extend_schema(summary="A service account"),
    destroy=extend_schema(summary="Delete a service account and its tokens", responses={204: None}),
)
class ServiceAccountViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Service accounts, visible to and managed by the members of their owning group (and superusers)."""

    serializer_class = ServiceAccountSerializer
    filter_backends = []
    lookup_field = "user__username"
    lookup_url_kwarg = "username"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self) -> QuerySet:
        queryset = ServiceAccount.objects.select_related("user", "owner")
        if self.request.user.is_superuser:
            return queryset
        return queryset.filter(owner__in=self.request.user.groups.all())

    @extend_schema(
        summary="Create a service account",
        description="Creates a user with no password, owned by a group you are a member of.",
        request=ServiceAccountCreateSerializer,
        responses={201: ServiceAccountSerializer},
    )
    def create(self, request):
        body = _validated(ServiceAccountCreateSerializer, request)
        owner = body["owner"]
        if not request.user.is_superuser and not request.user.groups.filter(pk=owner.pk).exists():
            raise exceptions.PermissionDenied(f"Only members of {owner.name} may create its service accounts.")
        try:
            with transaction.atomic():
                user = get_user_model().objects.create_user(body["username"], password=None)
                account = ServiceAccount.objects.create(user=user, owner=owner, description=body["description"])
                record("service_account.created", Actor.from_request(request), object_type="service_account",
                       object_id=user.username, details={"owner": owner.name})
        except IntegrityError:  # the name, taken by a concurrent request
            raise exceptions.ValidationError({"username": ["This user name is taken."]}) from None
        return Response(ServiceAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ServiceAccount) -> None:
        """Delete the account's user, and with it the account, its tokens and its grants."""
        with transaction.atomic():
            record("service_account.deleted", Actor.from_request(self.request), object_type="service_account",
                   object_id=instance.user.username, details={"owner": instance.owner.name})
            instance.user.delete()

    @extend_schema(
        summary="Issue a token for a service account",
        request=TokenCreateSerializer,
        responses={201: NewTokenSerializer},
    )
    @action(detail=True, methods=["post"])
    def tokens(self, request, username=None):
        account = self.get_object()
        body = _validated(TokenCreateSerializer, request, owner=account.user)
        return issue_token(request, account.user, body)


# --- Grants on governing objects --------------------------------------------------------------


def grants_of(obj) -> dict:
    """The object's users and groups, each with the actions granted to them (two queries)."""
    governor = governor_of(obj)
    granted = {"content_object": obj, "permission__codename__in": list(governor.granted_as.values())}
    rows = {
        "users": governor.user_grants.objects.filter(**granted).values_list("user__username", CODENAME),
        "groups": governor.group_grants.objects.filter(**granted).values_list("group__name", CODENAME),
    }
    result = {}
    for kind, pairs in rows.items():
        actions: dict[str, set] = {}
        for name, codename in pairs:
            actions.setdefault(name, set()).add(governor.action_of(codename))
        result[kind] = [{"name": name, "actions": sorted(actions[name])} for name in sorted(actions)]
    return result


class GrantsView(generics.GenericAPIView):
    """Who may do what to one governing object, found by ``lookup_field``: listed with read, changed by managers.

    A governing app subclasses it with its queryset, its grant serializer (whose
    ``action`` choices are the model's actions) and ``object_key``, the name of
    the object in the answer; the grant and revoke are the services' own.
    """

    pagination_class = None
    filter_backends = []
    lookup_field = "name"
    object_key = "object"

    def get_governing(self, *, manage: bool = False):
        """The object named in the URL: 404 if the user may not read it, 403 if they may not manage its grants."""
        name = self.kwargs[self.lookup_field]
        # No name has a NUL in it, and PostgreSQL refuses to compare with one.
        found = self.get_queryset().restrict(self.request.user, READ).filter(**{self.lookup_field: name})
        obj = None if "\x00" in name else found.first()
        if obj is None:
            raise exceptions.NotFound(f"No {self.get_queryset().model._meta.verbose_name} {name!r}.")
        if manage:
            check_manage_grants(self.request.user, obj)
        return obj

    def represent(self, obj) -> dict:
        """The object's name under ``object_key``, then its users and groups with their actions."""
        return {self.object_key: getattr(obj, self.lookup_field), **grants_of(obj)}

    def get(self, request, **kwargs):
        return Response(self.represent(self.get_governing()))

    def post(self, request, **kwargs):
        obj = self.get_governing(manage=True)
        body = _validated(self.get_serializer_class(), request)
        do_grant(obj, body["grantee"], body["action"], actor=Actor.from_request(request))
        return Response(self.represent(obj), status=status.HTTP_201_CREATED)

    def delete(self, request, **kwargs):
        obj = self.get_governing(manage=True)
        data = request.data if request.data else request.query_params
        serializer = self.get_serializer_class()(data=data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        do_revoke(obj, body["grantee"], body["action"], actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Audit events -------------------------------------------------------------------------------


class AuditEventPagination(NewestFirstPagination):
    # Events recorded in one transaction can share a time: the id keeps their order stable.
    ordering = ("-created_at", "-id")


@extend_schema_view(list=extend_schema(summary="The audit log, newest first"))
class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Audit events of the applications the user may read; events of no application only for superusers."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditEventPagination
    filter_backends = [FilterBackend]
    filterset_class = AuditEventFilterSet

    def get_queryset(self) -> QuerySet:
        return AuditEvent.objects.restrict(self.request.user, READ)
