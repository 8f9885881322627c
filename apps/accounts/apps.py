"""App configuration for accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, teams, service accounts, API tokens and per-object permissions (Spinnaker's Fiat)."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"
