"""App configuration for accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, teams, service accounts, API tokens and per-object permissions (Spinnaker's Fiat)."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        import axes.signals  # noqa: F401  (connects axes' receivers, which must run first)
        from django.contrib.auth.signals import user_login_failed

        from apps.accounts.lockout import audit_failed_login

        user_login_failed.connect(audit_failed_login, dispatch_uid="accounts.audit_failed_login")
