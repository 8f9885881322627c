"""App configuration for pipelines."""

from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class PipelinesConfig(AppConfig):
    """Pipelines, executions and the engine that runs them (Spinnaker's Orca and Front50)."""

    name = "apps.pipelines"
    label = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        # Models can be imported only once the registry is ready, hence here and not at the top.
        from apps.pipelines import governance
        from apps.pipelines.secrets import checks  # noqa: F401  (registers the secrets' system checks)
        from apps.pipelines.stages import builtin  # noqa: F401  (registers the built-in stage types)

        governance.register()
        register_periodic_jobs()
        for module in settings.STAGE_TYPE_MODULES:
            try:
                import_module(module)
            except ImportError as error:
                raise ImproperlyConfigured(f"STAGE_TYPE_MODULES: cannot import {module!r}: {error}") from error


def register_periodic_jobs() -> None:
    """The engine's own periodic work: recovering lost messages, delivering and pruning the event log."""
    from apps.pipelines import engine, eventlog
    from apps.pipelines.periodic import register_periodic

    register_periodic("pipelines.sweep-engine", engine.sweep, every=settings.ENGINE_SWEEP_INTERVAL_SECONDS)
    register_periodic("pipelines.deliver-events", eventlog.run_consumers, every=1)
    register_periodic("pipelines.prune-events", eventlog.prune_events, every=3600)
