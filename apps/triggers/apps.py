"""App configuration for triggers."""

from django.apps import AppConfig


class TriggersConfig(AppConfig):
    """What starts pipelines: webhooks, git and registry pushes, CI, cron, other pipelines (Spinnaker's Igor)."""

    name = "apps.triggers"
    label = "triggers"
    verbose_name = "Triggers"
