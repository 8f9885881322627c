"""The generic JSON webhook: the event and the execution's summary, POSTed as JSON with an Idempotency-Key."""

from __future__ import annotations

from apps.notifications.transports import Transport, TransportError, post_json, register


def webhook_body(delivery, summary) -> dict:
    """The documented body of a generic webhook notification (README, "Notifications")."""
    body = {
        "event": summary.moment,
        "deliveryId": delivery.id,
        "application": summary.application,
        "pipeline": summary.pipeline,
        "execution": {
            "id": summary.execution_id, "status": summary.status, "url": summary.url,
            "startedBy": summary.started_by, "trigger": summary.trigger, "duration": summary.duration,
        },
        "text": summary.text,
    }
    if summary.failed_stage:
        body["failure"] = {"stage": summary.failed_stage, "error": summary.error}
    if summary.judgment is not None:
        judgment = summary.judgment
        body["judgment"] = {"stage": judgment.ref_id, "name": judgment.name, "instructions": judgment.instructions,
                            "options": judgment.options, "url": judgment.url, "decision": judgment.decision,
                            "judgedBy": judgment.judged_by}
    return body


@register
class WebhookTransport(Transport):
    type_name = "webhook"

    def send(self, delivery, summary, address: str) -> None:
        if not address.startswith(("http://", "https://")):
            raise TransportError("the webhook address must be an http(s) URL", retryable=False)
        post_json(address, webhook_body(delivery, summary), idempotency_key=delivery.key)
