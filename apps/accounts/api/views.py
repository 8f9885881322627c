"""The accounts API: personal tokens, service accounts and their tokens, application grants, the audit log.

Grants go through ``do_grant``/``do_revoke``, which audit them; issuing and
revoking tokens and creating or deleting service accounts are audited here,
in the same transaction as the change.
"""


from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.api.serializers import (
    ApplicationGrantsSerializer,
    AuditEventSerializer,
    GrantSerializer,
    NewTokenSerializer,
    ServiceAccountCreateSerializer,
    ServiceAccountSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from apps.accounts.audit import Actor, record
from apps.accounts.filtersets import AuditEventFilterSet
from apps.accounts.models import (
    ApiToken,
    ApplicationGroupPermission,
    ApplicationUserPermission,
    AuditEvent,
    ServiceAccount,
)
from apps.accounts.permissions import PERMISSION_FOR, READ, WRITE, can, restrict_applications
from apps.accounts.services import do_create_token, do_grant, do_revoke, do_revoke_token
from apps.pipelines.models import Application
from cdplatform.api.filters import FilterBackend
from cdplatform.api.pagination import NewestFirstPagination

ACTION_OF_CODENAME = {codename: action for action, codename in PERMISSION_FOR.items()}
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


# --- Application grants -------------------------------------------------------------------------

GRANT_QUERY_PARAMETERS = [
    OpenApiParameter("user", OpenApiTypes.STR, description="User to revoke from (or send the JSON body)."),
    OpenApiParameter("group", OpenApiTypes.STR, description="Group to revoke from."),
    OpenApiParameter("action", OpenApiTypes.STR, enum=["read", "write", "execute"]),
]


def application_grants(application: Application) -> dict:
    """The application's users and groups, each with the actions granted to them (two queries)."""
    granted = {"content_object": application, "permission__codename__in": list(ACTION_OF_CODENAME)}
    rows = {
        "users": ApplicationUserPermission.objects.filter(**granted).values_list("user__username", CODENAME),
        "groups": ApplicationGroupPermission.objects.filter(**granted).values_list("group__name", CODENAME),
    }
    result = {"application": application.name}
    for kind, pairs in rows.items():
        actions: dict[str, set] = {}
        for name, codename in pairs:
            actions.setdefault(name, set()).add(ACTION_OF_CODENAME[codename])
        result[kind] = [{"name": name, "actions": sorted(actions[name])} for name in sorted(actions)]
    return result


class ApplicationPermissionsView(generics.GenericAPIView):
    """Who may read, write and execute in an application: listed with read, changed with write."""

    serializer_class = GrantSerializer
    pagination_class = None
    filter_backends = []

    def get_application(self, action: str) -> Application:
        """The application named in the URL: 404 if the user may not read it, 403 if not ``action``."""
        name = self.kwargs["name"]
        # No application has a NUL in its name, and PostgreSQL refuses to compare with one.
        applications = Application.objects.restrict(self.request.user, READ).filter(name=name)
        application = None if "\x00" in name else applications.first()
        if application is None:
            raise exceptions.NotFound(f"No application {self.kwargs['name']!r}.")
        if action != READ and not can(self.request.user, action, application):
            raise exceptions.PermissionDenied(f"You may not {action} in application {application}.")
        return application

    @extend_schema(summary="Who may do what in the application", responses=ApplicationGrantsSerializer)
    def get(self, request, name: str):
        return Response(application_grants(self.get_application(READ)))

    @extend_schema(
        summary="Grant a user or a group an action",
        request=GrantSerializer,
        responses={201: ApplicationGrantsSerializer},
    )
    def post(self, request, name: str):
        application = self.get_application(WRITE)
        body = _validated(GrantSerializer, request)
        do_grant(application, body["grantee"], body["action"], actor=Actor.from_request(request))
        return Response(application_grants(application), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke an action from a user or a group",
        description="The grant is named in a JSON body like POST's, or in query parameters.",
        request=GrantSerializer,
        parameters=GRANT_QUERY_PARAMETERS,
        responses={204: None},
    )
    def delete(self, request, name: str):
        application = self.get_application(WRITE)
        data = request.data if request.data else request.query_params
        serializer = GrantSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        do_revoke(application, body["grantee"], body["action"], actor=Actor.from_request(request))
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
        events = AuditEvent.objects.all()
        if self.request.user.is_superuser:
            return events
        return restrict_applications(events.filter(application__isnull=False), self.request.user, READ,
                                     field="application")
