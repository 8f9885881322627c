"""Serializers of the canary API: metrics accounts (never their credentials), configs, analyses (the report)."""

from rest_framework import serializers

from apps.accounts.api.serializers import BaseGrantSerializer, GranteeSerializer
from apps.canary.governance import ACCOUNT_ACTIONS
from apps.canary.models import CanaryAnalysis, CanaryConfig, PrometheusAccount


class PrometheusAccountSerializer(serializers.ModelSerializer):
    """A Prometheus metrics account: its URL and whether it holds credentials (which never come out)."""

    hasCredentials = serializers.BooleanField(source="has_credentials", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = PrometheusAccount
        fields = ["name", "url", "username", "hasCredentials", "createdAt", "updatedAt"]
        read_only_fields = fields


class PrometheusAccountWriteSerializer(serializers.Serializer):
    """A metrics account to create or change: keys left out keep their value; credentials are write-only."""

    name = serializers.CharField(required=False)
    url = serializers.CharField(required=False, help_text="Base URL of the Prometheus server.")
    username = serializers.CharField(required=False, allow_blank=True, help_text="Basic auth user.")
    password = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                     help_text="Basic auth password; write-only, an empty string clears it.")
    bearerToken = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                        help_text="Bearer token; write-only, an empty string clears it.")


class CanaryConfigSerializer(serializers.ModelSerializer):
    """A canary config: its id (``canaryConfigId``), name, application and Kayenta document."""

    application = serializers.CharField(source="application.name", read_only=True)
    document = serializers.JSONField(read_only=True, help_text="The Kayenta canary config as saved.")
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)
    updatedBy = serializers.CharField(source="updated_by", read_only=True)

    class Meta:
        model = CanaryConfig
        fields = ["id", "name", "application", "document", "updatedAt", "updatedBy"]
        read_only_fields = fields


class CanaryConfigWriteSerializer(serializers.Serializer):
    """A Kayenta canary config document (name, metrics, classifier, ...), as Kayenta's API takes it."""

    name = serializers.CharField(help_text="The config's name, unique in the application.")
    metrics = serializers.ListField(child=serializers.DictField(), help_text="Kayenta metrics.")
    classifier = serializers.DictField(required=False, help_text="groupWeights (and scoreThresholds).")


class CanaryAnalysisSerializer(serializers.ModelSerializer):
    """One canary analysis: the config, the status and score, and each interval's report.

    Each interval: ``interval``, ``start``, ``end``, ``score``, ``groups`` (score and counts per
    group), ``criticalFailures`` and ``metrics``: per metric its ``classification``, ``reason``,
    ``canary`` and ``baseline`` samples (after NaN and outlier handling; the last interval's only, its
    cumulative window holding the earlier ones'), what was ``removed``,
    the ``test`` (U, p-value, Hodges-Lehmann estimate and interval, bounds, effect size) and the
    PromQL ``queries`` run.
    """

    application = serializers.CharField(source="application.name", read_only=True)
    execution = serializers.CharField(source="stage.execution_id", read_only=True)
    stage = serializers.CharField(source="stage_id", read_only=True)
    configName = serializers.CharField(source="config_name", read_only=True)
    accountName = serializers.CharField(source="account_name", read_only=True)
    intervals = serializers.ListField(child=serializers.DictField(), read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = CanaryAnalysis
        fields = ["id", "application", "execution", "stage", "configName", "accountName", "status", "score",
                  "intervals", "createdAt"]
        read_only_fields = fields


class MetricsAccountGrantSerializer(BaseGrantSerializer):
    """A grant on a metrics account: a user or a group (name exactly one), and the action: read, use or manage."""

    action = serializers.ChoiceField(choices=list(ACCOUNT_ACTIONS))


class MetricsAccountGrantsSerializer(serializers.Serializer):
    """Who may do what with a metrics account: users and groups, each with their actions."""

    account = serializers.CharField()
    users = GranteeSerializer(many=True)
    groups = GranteeSerializer(many=True)
