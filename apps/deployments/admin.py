"""Deployment accounts in the admin: listed to those who may read them, saved and deleted through the services.

Credentials are write-only here as everywhere: the form has a field to set
(or, left empty, keep) the password, token, client key or kubeconfig contents, and never shows it.
"""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from apps.accounts.admin import GrantsAdminMixin, RestrictedAdminMixin
from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.accounts.permissions import MANAGE, can, is_superuser
from apps.deployments.models import ArtifactAccount, DockerAccount, KubernetesAccount, RegistryAccount
from apps.deployments.services.accounts import (
    do_delete_account,
    do_save_docker_account,
    do_save_registry_account,
    docker_account_problems,
    registry_account_problems,
)
from apps.deployments.services.artifact_accounts import (
    TYPE_KEYS,
    artifact_account_problems,
    do_save_artifact_account,
)
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account, kubernetes_account_problems
from apps.pipelines.problems import InvalidDocument


def refuse(problems) -> None:
    """The services' problems as the form's errors, each on its field when the form has it."""
    if problems:
        raise forms.ValidationError([f"{problem.pointer.lstrip('/') or 'account'}: {problem.message}"
                                     for problem in problems])


class RegistryAccountForm(forms.ModelForm):
    password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                               help_text="Write-only. Leave empty to keep the one held; tick 'clear' to remove it.")
    clear_password = forms.BooleanField(required=False, label="Clear the password")

    class Meta:
        model = RegistryAccount
        fields = ("name", "address", "insecure", "username")

    def clean(self):
        data = super().clean()
        document = {"name": data.get("name") or self.instance.name, "address": data.get("address") or "",
                    "username": data.get("username") or "", "password": data.get("password") or ""}
        refuse(registry_account_problems(document, creating=self.instance.pk is None))
        return data


class DockerAccountForm(forms.ModelForm):
    client_key = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                 help_text="Write-only PEM of the TLS client key. Leave empty to keep the one held.")

    class Meta:
        model = DockerAccount
        fields = ("name", "host", "tls", "tls_verify", "ca_cert", "client_cert", "registries")

    def clean(self):
        data = super().clean()
        document = {"name": data.get("name") or self.instance.name, "host": data.get("host") or "",
                    "caCert": data.get("ca_cert") or "", "clientCert": data.get("client_cert") or ""}
        refuse(docker_account_problems(document, creating=self.instance.pk is None))
        return data


class KubernetesAccountForm(forms.ModelForm):
    kubeconfig_contents = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Write-only text of a kubeconfig. Leave empty to keep the one held; to use a file or the pod's "
                  "service account instead, leave it empty and fill that in.")

    class Meta:
        model = KubernetesAccount
        fields = ("name", "kubeconfig_file", "context", "in_cluster", "namespaces", "omit_namespaces", "kinds",
                  "omit_kinds")

    def document(self, data: dict) -> dict:
        """The account document of the form's values, in the services' names."""
        document = {"name": data.get("name") or self.instance.name, "kubeconfigFile": data.get("kubeconfig_file") or "",
                    "context": data.get("context") or "", "serviceAccount": bool(data.get("in_cluster")),
                    "namespaces": data.get("namespaces") or [], "omitNamespaces": data.get("omit_namespaces") or [],
                    "kinds": data.get("kinds") or [], "omitKinds": data.get("omit_kinds") or []}
        if data.get("kubeconfig_contents"):
            document["kubeconfigContents"] = data["kubeconfig_contents"]
        return document

    def clean(self):
        data = super().clean()
        refuse(kubernetes_account_problems(self.document(data), existing=self.instance if self.instance.pk else None))
        return data


class ArtifactAccountForm(forms.ModelForm):
    # Not named password and token: those are the model's encrypted fields, which no form edits.
    new_password = forms.CharField(label="Password", required=False, strip=False,
                                   widget=forms.PasswordInput(render_value=False),
                                   help_text="Write-only. Leave empty to keep the one held; tick 'clear' to remove it.")
    clear_password = forms.BooleanField(required=False, label="Clear the password")
    new_token = forms.CharField(label="Token", required=False, strip=False,
                                widget=forms.PasswordInput(render_value=False),
                                help_text="Write-only. Leave empty to keep the one held; tick 'clear' to remove it.")
    clear_token = forms.BooleanField(required=False, label="Clear the token")

    class Meta:
        model = ArtifactAccount
        fields = ("name", "type", "username", "token_file", "username_password_file")

    def document(self, data: dict) -> dict:
        """The account document of the form's values, in the services' names: only the fields its type has."""
        kind = data.get("type") or self.instance.type
        document = {"name": data.get("name") or self.instance.name, "type": kind}
        values = {"username": data.get("username") or "", "tokenFile": data.get("token_file") or "",
                  "usernamePasswordFile": data.get("username_password_file") or ""}
        for key in ("password", "token"):
            if data.get(f"clear_{key}"):
                values[key] = ""
            elif data.get(f"new_{key}"):
                values[key] = data[f"new_{key}"]
        allowed = TYPE_KEYS.get(kind, ())
        document.update({key: value for key, value in values.items() if key in allowed or value})
        return document

    def clean(self):
        data = super().clean()
        refuse(artifact_account_problems(self.document(data), existing=self.instance if self.instance.pk else None))
        return data


class AccountAdminMixin(GrantsAdminMixin, RestrictedAdminMixin):
    """Accounts: added by superusers, changed and deleted by their managers, always through the services."""

    def has_add_permission(self, request):
        return is_superuser(request.user)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or can(request.user, MANAGE, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or can(request.user, MANAGE, obj))

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None else ()

    def document(self, obj, form) -> dict:
        raise NotImplementedError

    # The service that saves this admin's kind of account (a staticmethod): (document, actor=) -> (account, created).
    save_account: Callable[..., tuple[Any, bool]]

    def save_model(self, request, obj, form, change):
        try:
            saved, _ = self.save_account(self.document(obj, form),
                                         actor=Actor.from_request(request, source=AuditSource.ADMIN))
        except InvalidDocument as error:
            raise forms.ValidationError(str(error)) from None
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        """The service has set the registries already."""

    def delete_model(self, request, obj):
        do_delete_account(obj, actor=Actor.from_request(request, source=AuditSource.ADMIN))

    def delete_queryset(self, request, queryset):
        for account in queryset:
            self.delete_model(request, account)


@admin.register(RegistryAccount)
class RegistryAccountAdmin(AccountAdminMixin, GuardedModelAdmin):
    """Registry accounts, their address and whether they hold credentials (never the credentials)."""

    form = RegistryAccountForm
    save_account = staticmethod(do_save_registry_account)
    list_display = ("name", "address", "insecure", "username", "has_credentials")
    search_fields = ("name", "address")

    def document(self, obj, form) -> dict:
        data = form.cleaned_data
        document = {"name": obj.name, "address": data["address"], "insecure": data["insecure"],
                    "username": data["username"]}
        if data.get("clear_password"):
            document["password"] = ""
        elif data.get("password"):
            document["password"] = data["password"]
        return document


@admin.register(DockerAccount)
class DockerAccountAdmin(AccountAdminMixin, GuardedModelAdmin):
    """Docker engine accounts: where they connect, the registries they pull from."""

    form = DockerAccountForm
    save_account = staticmethod(do_save_docker_account)
    list_display = ("name", "host", "tls")
    search_fields = ("name", "host")

    def document(self, obj, form) -> dict:
        data = form.cleaned_data
        document = {"name": obj.name, "host": data["host"], "tls": data["tls"], "tlsVerify": data["tls_verify"],
                    "caCert": data["ca_cert"], "clientCert": data["client_cert"],
                    "registries": [registry.name for registry in data["registries"]]}
        if data.get("client_key"):
            document["clientKey"] = data["client_key"]
        return document


@admin.register(KubernetesAccount)
class KubernetesAccountAdmin(AccountAdminMixin, GuardedModelAdmin):
    """Kubernetes accounts: where their credentials come from (never the kubeconfig's contents) and which
    namespaces and kinds they may touch."""

    form = KubernetesAccountForm
    save_account = staticmethod(do_save_kubernetes_account)
    list_display = ("name", "context", "kubeconfig_file", "in_cluster", "has_kubeconfig")
    search_fields = ("name", "context")

    def document(self, obj, form) -> dict:
        return form.document({**form.cleaned_data, "name": obj.name})


@admin.register(ArtifactAccount)
class ArtifactAccountAdmin(AccountAdminMixin, GuardedModelAdmin):
    """Artifact accounts: the type of artifacts they read and where their credentials come from (never the
    password or token)."""

    form = ArtifactAccountForm
    save_account = staticmethod(do_save_artifact_account)
    list_display = ("name", "type", "username", "has_password", "has_token", "token_file")
    search_fields = ("name", "username")
    list_filter = ("type",)

    def get_readonly_fields(self, request, obj=None):
        return ("name", "type") if obj is not None else ()

    def document(self, obj, form) -> dict:
        return form.document({**form.cleaned_data, "name": obj.name, "type": obj.type})
