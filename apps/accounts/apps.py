"""App configuration for accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, teams, service accounts, API tokens and per-object permissions (Spinnaker's Fiat)."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        import axes.signals  # noqa: F401  (connects axes' receivers, which must run first)
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.contrib.auth.signals import user_login_failed
        from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

        from apps.accounts import events
        from apps.accounts.lockout import audit_failed_login

        user_login_failed.connect(audit_failed_login, dispatch_uid="accounts.audit_failed_login")
        # What changes a user's permissions outside the grant services tells their live sockets (events.py).
        user_model = get_user_model()
        post_save.connect(events.user_saved, sender=user_model, dispatch_uid="accounts.user_saved")
        post_delete.connect(events.user_deleted, sender=user_model, dispatch_uid="accounts.user_deleted")
        m2m_changed.connect(
            events.membership_changed, sender=user_model.groups.through, dispatch_uid="accounts.membership_changed"
        )
        pre_delete.connect(events.team_deleted, sender=Group, dispatch_uid="accounts.team_deleted")
