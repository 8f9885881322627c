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
        from apps.deployments.demo import docker_demo
        from apps.deployments.services.account_files import register_account_section
        from apps.deployments.services.artifact_accounts import artifact_file_entries, do_save_artifact_account
        from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
        from apps.deployments.stages import builtin  # noqa: F401  (registers the deployments' stage types)
        from apps.pipelines.demo_hooks import register_demo_hook

        governance.register()
        register_demo_hook(docker_demo)
        register_account_section("kubernetes", do_save_kubernetes_account)
        register_account_section("artifacts", do_save_artifact_account, artifact_file_entries)
        register_periodic_jobs()


def register_periodic_jobs() -> None:
    """Server groups kept at their desired capacity: a dead or unhealthy container is replaced."""
    from django.conf import settings

    from apps.deployments.services.server_groups import keep_every_group_at_capacity
    from apps.pipelines.periodic import register_periodic

    register_periodic("deployments.keep-capacity", keep_every_group_at_capacity,
                      every=settings.SERVER_GROUP_RECONCILE_SECONDS)
