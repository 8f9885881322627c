"""Canary analysis in the admin: metrics accounts saved through the services (credentials write-only), and
canary configs and analyses to read (configs are edited on their page or over the API, which validate them)."""

from django import forms
from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from apps.accounts.admin import GrantsAdminMixin, RestrictedAdminMixin
from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.accounts.permissions import MANAGE, can, is_superuser
from apps.canary.models import CanaryAnalysis, CanaryConfig, PrometheusAccount
from apps.canary.services import account_problems, do_delete_account, do_save_account
from apps.pipelines.problems import InvalidDocument


class PrometheusAccountForm(forms.ModelForm):
    new_password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                   label="Password",
                                   help_text="Write-only basic auth password. Leave empty to keep the one held.")
    new_bearer_token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                       label="Bearer token",
                                       help_text="Write-only bearer token. Leave empty to keep the one held.")
    clear_credentials = forms.BooleanField(required=False, label="Clear the password and the token")

    class Meta:
        model = PrometheusAccount
        fields = ("name", "url", "username")

    def clean(self):
        data = super().clean()
        document = {"name": data.get("name") or self.instance.name, "url": data.get("url") or "",
                    "username": data.get("username") or ""}
        problems = account_problems(document, creating=self.instance.pk is None)
        if problems:
            raise forms.ValidationError([f"{p.pointer.lstrip('/') or 'account'}: {p.message}" for p in problems])
        return data


@admin.register(PrometheusAccount)
class PrometheusAccountAdmin(GrantsAdminMixin, RestrictedAdminMixin, GuardedModelAdmin):
    """Metrics accounts: added by superusers, changed and deleted by their managers, through the services."""

    form = PrometheusAccountForm
    list_display = ("name", "url", "username", "has_credentials")
    search_fields = ("name", "url")

    def has_add_permission(self, request):
        return is_superuser(request.user)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or can(request.user, MANAGE, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or can(request.user, MANAGE, obj))

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        document = {"name": obj.name, "url": data["url"], "username": data["username"]}
        if data.get("clear_credentials"):
            document.update(password="", bearerToken="")
        for field, key in (("new_password", "password"), ("new_bearer_token", "bearerToken")):
            if data.get(field):
                document[key] = data[field]
        try:
            saved, _ = do_save_account(document, actor=Actor.from_request(request, source=AuditSource.ADMIN))
        except InvalidDocument as error:
            raise forms.ValidationError(str(error)) from None
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        do_delete_account(obj, actor=Actor.from_request(request, source=AuditSource.ADMIN))

    def delete_queryset(self, request, queryset):
        for account in queryset:
            self.delete_model(request, account)


class ReadOnlyAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    """Rows to read in the admin, only those the user may read; they change elsewhere."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CanaryConfig)
class CanaryConfigAdmin(ReadOnlyAdmin):
    list_display = ("name", "application", "updated_at", "updated_by")
    list_select_related = ("application",)
    search_fields = ("name", "application__name")


@admin.register(CanaryAnalysis)
class CanaryAnalysisAdmin(ReadOnlyAdmin):
    list_display = ("config_name", "application", "status", "score", "created_at")
    list_select_related = ("application",)
