"""Admin pages for service accounts, tokens (revocation only; tokens are issued through the API) and the audit log.

Also what every app's admin shares: :class:`RestrictedAdminMixin` shows a
staff member only the rows ``restrict()`` lets them read (model permissions
open an admin page; object grants decide its rows), and
:class:`GrantsAdminMixin` makes django-guardian's object-permission pages
grant and revoke through the services, audited and followed by the live notice.
"""

from axes.models import AccessAttempt
from django.contrib import admin
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from guardian.admin import AdminGroupObjectPermissionsForm, AdminUserObjectPermissionsForm

from apps.accounts.audit import Actor, record
from apps.accounts.models import ApiToken, AuditEvent, AuditSource, ServiceAccount
from apps.accounts.permissions import READ, governor_of
from apps.accounts.services import check_manage_grants, do_grant, do_revoke


class RestrictedAdminMixin:
    """A ModelAdmin of a governing or governed model: its lists and pages hold only what the user may read."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, READ)


class GrantFormMixin:
    """Guardian's grant form, offering the governing model's actions and saving through do_grant/do_revoke."""

    actor: Actor | None = None

    def grantee(self):
        raise NotImplementedError

    def get_obj_perms_field_choices(self) -> list:
        return [(codename, action) for action, codename in governor_of(self.obj).granted_as.items()]

    def save_obj_perms(self) -> None:
        chosen = set(self.cleaned_data[self.get_obj_perms_field_name()])
        held = set(self.get_obj_perms_field_initial())
        for action, codename in governor_of(self.obj).granted_as.items():
            if codename in chosen and codename not in held:
                do_grant(self.obj, self.grantee(), action, actor=self.actor)
            elif codename in held and codename not in chosen:
                do_revoke(self.obj, self.grantee(), action, actor=self.actor)


class UserGrantForm(GrantFormMixin, AdminUserObjectPermissionsForm):
    """The actions one user holds on the object."""

    def grantee(self):
        return self.user


class GroupGrantForm(GrantFormMixin, AdminGroupObjectPermissionsForm):
    """The actions one group (a team) holds on the object."""

    def grantee(self):
        return self.group


class GrantsAdminMixin:
    """For a GuardedModelAdmin of a governing model: grants pages for managers only, saved through the services."""

    def _managed(self, request, object_pk):
        obj = get_object_or_404(self.get_queryset(request), pk=object_pk)
        check_manage_grants(request.user, obj)  # 403 for a reader, as from the API
        return obj

    def _form(self, request, base):
        return type(base.__name__, (base,), {"actor": Actor.from_request(request, source=AuditSource.ADMIN)})

    def get_obj_perms_manage_user_form(self, request):
        return self._form(request, UserGrantForm)

    def get_obj_perms_manage_group_form(self, request):
        return self._form(request, GroupGrantForm)

    def obj_perms_manage_view(self, request, object_pk):
        self._managed(request, object_pk)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._managed(request, object_pk)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._managed(request, object_pk)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)


@admin.register(ServiceAccount)
class ServiceAccountAdmin(admin.ModelAdmin):
    """Service accounts and their owning teams."""

    list_display = ("user", "owner", "created_at")
    list_select_related = ("user", "owner")
    search_fields = ("user__username", "owner__name")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens, to find and revoke; they are issued from a signed-in session, never here."""

    list_display = ("name", "user", "key_prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "key_prefix")
    readonly_fields = ("user", "name", "key_prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("key_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


@admin.register(AuditEvent)
class AuditEventAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    """The audit log, read-only, of the applications the staff member may read."""

    list_display = ("created_at", "actor", "source", "action", "application_name", "object_type", "object_id")
    list_filter = ("source", "action", "application_name", "created_at")
    search_fields = ("actor", "object_id", "application_name")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccessAttempt)
class AccessAttemptAdmin(admin.ModelAdmin):
    """Failed sign-ins (django-axes) per user name and address; deleting them, or "Unlock", lifts a lockout."""

    list_display = ("attempt_time", "username", "ip_address", "failures_since_start", "path_info")
    list_filter = ("attempt_time",)
    search_fields = ("username", "ip_address")
    readonly_fields = ("attempt_time", "username", "ip_address", "user_agent", "path_info", "failures_since_start")
    exclude = ("get_data", "post_data", "http_accept")
    actions = ["unlock"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def _unlock(self, request, queryset) -> None:
        actor = Actor.from_request(request, source=AuditSource.ADMIN)
        with transaction.atomic():
            for attempt in queryset:
                record("login.unlocked", actor, object_type="user", object_id=attempt.username[:64],
                       details={"username": attempt.username, "ip_address": attempt.ip_address,
                                "failures": attempt.failures_since_start})
            queryset.delete()

    @admin.action(description="Unlock: forget the selected failed sign-ins")
    def unlock(self, request, queryset):
        self._unlock(request, queryset)

    def delete_queryset(self, request, queryset):
        self._unlock(request, queryset)

    def delete_model(self, request, obj):
        self._unlock(request, AccessAttempt.objects.filter(pk=obj.pk))
