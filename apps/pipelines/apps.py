"""App configuration for pipelines."""

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """Pipelines, executions and the engine that runs them (Spinnaker's Orca and Front50)."""

    name = "apps.pipelines"
    label = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        # Models can be imported only once the registry is ready, hence here and not at the top.
        from apps.pipelines import governance
        from apps.pipelines.stages import builtin  # noqa: F401  (registers the built-in stage types)

        governance.register()
