"""App configuration for canary analysis."""

from django.apps import AppConfig


class CanaryConfig(AppConfig):
    """Automated canary analysis (Spinnaker's Kayenta): metrics accounts, canary configs, the judge, the stage."""

    name = "apps.canary"
    label = "canary"
    verbose_name = "Canary analysis"

    def ready(self) -> None:
        # Models can be imported only once the registry is ready, hence here and not at the top.
        from apps.canary import (
            governance,
            stage,  # noqa: F401  (registers the kayentaCanary stage type)
        )
        from apps.canary.services import do_save_account
        from apps.deployments.services.account_files import register_account_section

        governance.register()
        register_account_section("prometheus", do_save_account)
