"""App configuration for deployments."""

from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    """Deployment accounts, server groups and the deploy and bake stages (Spinnaker's Clouddriver and Rosco)."""

    name = "apps.deployments"
    label = "deployments"
    verbose_name = "Deployments"
