"""App configuration for notifications."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications of pipeline and stage events to Slack, e-mail and webhooks (Spinnaker's Echo)."""

    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"
