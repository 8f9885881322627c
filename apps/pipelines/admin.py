"""Admin pages for operators: find executions by id, filter by application, status and time.

Every list shows a staff member only what ``restrict()`` lets them read.
Changes go through the services or not at all: applications are created,
changed and deleted by ``do_*_application`` and their grants by
``do_grant``/``do_revoke`` (audited, with the live notice); pipelines are
saved by the editor, the API or the command line (validated, with a
revision), and here can only be deleted; executions and their stages belong
to the engine, so nobody adds or edits one by hand, and only a finished
execution may be deleted. Secrets are set, replaced and deleted by their
application's writers through ``do_set_secret``/``do_delete_secret``; no
page shows a value.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from apps.accounts.admin import GrantsAdminMixin, RestrictedAdminMixin
from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.accounts.permissions import WRITE, can
from apps.pipelines.choices import COMPLETE
from apps.pipelines.models import Application, Execution, Pipeline, PipelineRevision, Secret, StageExecution
from apps.pipelines.secrets import crypto
from apps.pipelines.secrets.services import do_delete_secret, do_set_secret, value_problems
from apps.pipelines.services import (
    ActionRefused,
    do_change_application,
    do_create_application,
    do_delete_application,
    do_delete_pipeline,
)

EDITABLE_APPLICATION_FIELDS = ("name", "owner", "description")


def _pretty_json(value) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))


def admin_actor(request) -> Actor:
    """The staff member as the audit log records what they do here."""
    return Actor.from_request(request, source=AuditSource.ADMIN)


class ServiceDeletesMixin:
    """Deleting goes through a service, which decides what may go (and takes what depends on it along)."""

    def get_deleted_objects(self, objs, request):
        # The admins of the rows deleted along (revisions, executions, stages) refuse deleting them on their own.
        deleted, counts, _needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


class ReadOnlyAdminMixin:
    """Rows that only the engine or a service writes: shown, never added or edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Application)
class ApplicationAdmin(ServiceDeletesMixin, GrantsAdminMixin, RestrictedAdminMixin, GuardedModelAdmin):
    """Applications, created, changed and deleted through the services; grants on django-guardian's pages."""

    list_display = ("name", "owner", "created_at")
    search_fields = ("name", "owner", "description")
    fields = EDITABLE_APPLICATION_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None else ()  # an application's name never changes

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in EDITABLE_APPLICATION_FIELDS if name in form.cleaned_data}
        if change:
            data.pop("name", None)
            do_change_application(Application.objects.get(pk=obj.pk), data, user=admin_actor(request))
        else:
            obj.pk = do_create_application(data, user=admin_actor(request)).pk
            obj._state.adding = False

    def delete_model(self, request, obj):
        do_delete_application(obj, user=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for application in queryset:
            do_delete_application(application, user=admin_actor(request))

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ActionRefused as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return redirect("admin:pipelines_application_change", object_id)


class PipelineRevisionInline(admin.TabularInline):
    model = PipelineRevision
    fields = ("number", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Pipeline)
class PipelineAdmin(ServiceDeletesMixin, ReadOnlyAdminMixin, RestrictedAdminMixin, admin.ModelAdmin):
    """Pipelines, to find and read; deleting one goes through the service (write, audited)."""

    list_display = ("name", "application", "updated_at", "updated_by")
    list_filter = (("application", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("application",)
    search_fields = ("=id", "name", "application__name")
    readonly_fields = ("id", "application", "name", "created_at", "updated_at", "updated_by", "definition_json")
    exclude = ("definition",)
    inlines = [PipelineRevisionInline]

    @admin.display(description="definition")
    def definition_json(self, pipeline):
        return _pretty_json(pipeline.definition)

    def delete_model(self, request, obj):
        do_delete_pipeline(obj, user=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for pipeline in queryset.select_related("application"):
            do_delete_pipeline(pipeline, user=admin_actor(request))


@admin.register(PipelineRevision)
class PipelineRevisionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Saved versions of pipelines, read-only, of the applications the staff member may read."""

    list_display = ("pipeline", "number", "created_at", "created_by")
    list_select_related = ("pipeline__application",)
    search_fields = ("=pipeline__id", "pipeline__name")
    readonly_fields = ("pipeline", "number", "created_at", "created_by", "definition_json")
    exclude = ("definition",)

    def get_queryset(self, request):
        readable = Pipeline.objects.restrict(request.user)
        return super().get_queryset(request).filter(pipeline__in=readable)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="definition")
    def definition_json(self, revision):
        return _pretty_json(revision.definition)


class StageExecutionInline(admin.TabularInline):
    model = StageExecution
    fields = ("ref_id", "name", "type", "status", "start_time", "end_time")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdminMixin, RestrictedAdminMixin, admin.ModelAdmin):
    """Executions, read-only: the engine owns them; a finished one may be deleted."""

    list_display = ("id", "application", "name", "status", "created_at", "start_time", "end_time", "started_by")
    list_filter = ("status", ("application", admin.RelatedOnlyFieldListFilter), "created_at", "start_time")
    list_select_related = ("application",)
    search_fields = ("=id", "name", "application__name")
    date_hierarchy = "created_at"
    readonly_fields = (
        "id", "application", "pipeline", "name", "status", "created_at", "start_time", "end_time",
        "started_by", "run_as_name", "run_as_system", "canceled_by", "cancel_reason", "trigger_json",
        "parameters_json",
    )
    exclude = ("definition", "trigger", "parameters", "run_as")
    inlines = [StageExecutionInline]

    def has_delete_permission(self, request, obj=None):
        # A running execution's rows are the engine's to change: deleting one would strand its jobs.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in COMPLETE)

    def get_deleted_objects(self, objs, request):
        # Stages are deleted with their execution, never on their own: their admin's refusal does not apply.
        deleted, counts, needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, needed - {StageExecution._meta.verbose_name}, protected

    def delete_queryset(self, request, queryset):
        finished = queryset.filter(status__in=COMPLETE)
        if finished.count() != queryset.count():
            self.message_user(request, "Executions that have not finished were kept.", messages.WARNING)
        finished.delete()

    @admin.display(description="trigger")
    def trigger_json(self, execution):
        return _pretty_json(execution.trigger)

    @admin.display(description="parameters")
    def parameters_json(self, execution):
        return _pretty_json(execution.parameters)


@admin.register(StageExecution)
class StageExecutionAdmin(ReadOnlyAdminMixin, RestrictedAdminMixin, admin.ModelAdmin):
    """Stage executions, read-only: the engine owns them, with their execution."""

    list_display = ("name", "type", "status", "execution", "start_time", "end_time")
    list_filter = ("status", "type", ("execution__application", admin.RelatedOnlyFieldListFilter), "start_time")
    list_select_related = ("execution__application",)
    search_fields = ("=id", "=execution__id", "name")
    readonly_fields = (
        "id", "execution", "ref_id", "type", "name", "status", "start_time", "end_time",
        "next_run_at", "context_json", "outputs_json",
    )
    exclude = ("definition", "context", "outputs", "requisite_ref_ids", "next_ref_ids", "run_token", "position")

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="context")
    def context_json(self, stage):
        return _pretty_json(stage.context)

    @admin.display(description="outputs")
    def outputs_json(self, stage):
        return _pretty_json(stage.outputs)


class SecretForm(forms.ModelForm):
    """A secret's name and a new value: the value field is empty on every page and never shows what is stored."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False), strip=False,
        help_text="Write-only: the stored value is never shown. A new value replaces it.",
    )

    class Meta:
        model = Secret
        fields = ("application", "name")

    def clean_value(self):
        value = self.cleaned_data["value"]
        problems = value_problems(value)
        if problems:
            raise forms.ValidationError(problems[0].message)
        if not settings.SECRETS_ENCRYPTION_KEYS and not crypto.uses_development_key():
            raise forms.ValidationError(crypto.NO_KEY_MESSAGE)
        return value


@admin.register(Secret)
class SecretAdmin(ServiceDeletesMixin, RestrictedAdminMixin, admin.ModelAdmin):
    """Secrets by name, of the applications the staff member may read; set, replaced and deleted with write."""

    form = SecretForm
    list_display = ("name", "application", "updated_at", "updated_by")
    list_filter = (("application", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("application",)
    search_fields = ("name", "application__name")
    STAMPS = ("created_at", "created_by", "updated_at", "updated_by")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("application", "name", "value")
        writable = self.has_change_permission(request, obj)
        return ("application", "name", *(("value",) if writable else ()), *self.STAMPS)

    def get_readonly_fields(self, request, obj=None):
        return ("application", "name", *self.STAMPS) if obj is not None else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "application":
            kwargs["queryset"] = Application.objects.restrict(request.user, WRITE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or can(request.user, WRITE, obj))

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or can(request.user, WRITE, obj))

    def save_model(self, request, obj, form, change):
        application = Application.objects.get(pk=obj.application_id)
        saved, _ = do_set_secret(application, obj.name, form.cleaned_data["value"], user=admin_actor(request))
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        do_delete_secret(obj, user=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for secret in queryset.select_related("application"):
            do_delete_secret(secret, user=admin_actor(request))
