"""Microsoft Teams and Google Chat, through their incoming webhooks (the URL is the address, a credential).

Teams gets an Adaptive Card in a ``message`` envelope, the body its incoming
webhooks (connectors and Workflows alike) document; Google Chat gets a text
message (``{"text": ...}``), whose ``<url|label>`` links it renders.
"""

from __future__ import annotations

from apps.notifications.transports import Transport, TransportError, post_json, register


def _check(address: str) -> None:
    if not address.startswith(("http://", "https://")):
        raise TransportError("the address must be the incoming webhook's http(s) URL", retryable=False)


def teams_body(summary) -> dict:
    """An Adaptive Card (version 1.4) with the summary's title, facts and a button to the execution."""
    body: list[dict] = [{"type": "TextBlock", "text": summary.title, "weight": "Bolder", "size": "Medium",
                         "wrap": True}]
    if summary.custom_text:
        body.append({"type": "TextBlock", "text": summary.custom_text, "wrap": True})
    body.append({"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in summary.facts]})
    actions = [{"type": "Action.OpenUrl", "title": "View execution", "url": summary.url}]
    if summary.judgment is not None and not summary.judgment.decision:
        body.append({"type": "TextBlock", "text": summary.judgment.instructions or "Continue?", "wrap": True})
        actions.insert(0, {"type": "Action.OpenUrl", "title": "Judge", "url": summary.judgment.url})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body, "actions": actions}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    ]}


def google_chat_body(summary) -> dict:
    """A Google Chat text message: the title in bold, the facts, and links."""
    lines = [summary.custom_text] if summary.custom_text else []
    lines.append(f"*{summary.title}*")
    lines += [f"{name}: {value}" for name, value in summary.facts]
    if summary.judgment is not None and not summary.judgment.decision:
        lines.append(f"{summary.judgment.instructions or 'Continue?'} <{summary.judgment.url}|Judge it>")
    lines.append(f"<{summary.url}|View execution>")
    return {"text": "\n".join(lines)}


@register
class TeamsTransport(Transport):
    type_name = "microsoftteams"

    def send(self, delivery, summary, address: str) -> None:
        _check(address)
        post_json(address, teams_body(summary))


@register
class GoogleChatTransport(Transport):
    type_name = "googlechat"

    def send(self, delivery, summary, address: str) -> None:
        _check(address)
        post_json(address, google_chat_body(summary))
