"""App configuration for notifications."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications of pipeline and stage events to Slack, e-mail and webhooks (Spinnaker's Echo), and chat-ops."""

    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Models can be imported only once the registry is ready, hence here and not at the top.
        from apps.notifications import checks, delivery, retention, subscriptions, transports, validation  # noqa: F401
        from apps.pipelines.definition.validation import register_document_check
        from apps.pipelines.eventlog import register_consumer
        from apps.pipelines.periodic import register_periodic

        transports.load()
        register_document_check(validation.document_problems)
        register_consumer(subscriptions.CONSUMER_NAME, subscriptions.take_events, batch_size=500)
        register_periodic("notifications.send-due", delivery.send_due, every=5)
        register_periodic("notifications.prune", retention.prune, every=3600)
