"""Admin views of canary analysis: metrics accounts (never their credentials), configs and analyses, read-mostly."""

from django.contrib import admin

from apps.canary.models import CanaryAnalysis, CanaryConfig, PrometheusAccount


@admin.register(PrometheusAccount)
class PrometheusAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "username", "has_credentials", "updated_at")
    search_fields = ("name", "url")


@admin.register(CanaryConfig)
class CanaryConfigAdmin(admin.ModelAdmin):
    list_display = ("name", "application", "updated_at", "updated_by")
    list_select_related = ("application",)
    search_fields = ("name", "application__name")


@admin.register(CanaryAnalysis)
class CanaryAnalysisAdmin(admin.ModelAdmin):
    list_display = ("config_name", "application", "status", "score", "created_at")
    list_select_related = ("application",)
    readonly_fields = ("stage", "application", "config_name", "config", "account_name", "intervals", "status",
                       "score")
