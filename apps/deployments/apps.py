"""App configuration for deployments."""

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Deployment accounts, server groups and the deploy and bake stages (Spinnaker's Clouddriver and Rosco)."""

    name = "apps.deployments"
    label = "deployments"
    verbose_name = "Deployments"

    def ready(self) -> None:
        # Models can be imported only once the registry is ready, hence here and not at the top.
        from apps.deployments import governance
        from apps.deployments.stages import builtin  # noqa: F401  (registers the deployments' stage types)

        governance.register()
