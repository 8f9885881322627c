"""App configuration for triggers."""

from django.apps import AppConfig


class TriggersConfig(AppConfig):
    """What starts pipelines: webhooks, git and registry pushes, CI, cron, other pipelines (Spinnaker's Igor)."""

    name = "apps.triggers"
    label = "triggers"
    verbose_name = "Triggers"

    def ready(self) -> None:
        # Models can be imported only once the registry is ready, hence here and not at the top.
        from apps.pipelines.definition.trigger_types import register_document_check, register_trigger_status
        from apps.triggers import artifacts, index, kinds  # noqa: F401  (the kinds register themselves)
        from apps.triggers.jobs import register_jobs

        register_document_check(artifacts.artifact_problems)
        register_trigger_status(index.trigger_status)
        register_jobs()
