"""slack_sdk's WebClient, its calls sent through the outbound URL policy to ``SLACK_API_URL``.

The official SDK gives the Web API methods (``chat_postMessage``,
``chat_update``, ``chat_postEphemeral``), its errors (``SlackApiError`` with
Slack's ``error`` code) and Block Kit's classes; only the HTTP call is ours,
so it goes through ``apps/pipelines/outbound.py`` like every outbound call
(the SDK's own urllib transport would bypass the policy's checks).
"""

from __future__ import annotations

import json

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from apps.notifications.transports import TransportError
from apps.pipelines import outbound

# Slack's error codes that trying again can cure.
RETRYABLE_ERRORS = {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"}


class PolicyWebClient(WebClient):
    """A WebClient whose every call is one POST of JSON through the outbound policy."""

    def api_call(self, api_method: str, *, http_verb: str = "POST", files=None, data=None, params=None,
                 json=None, headers=None, auth=None) -> SlackResponse:  # noqa: A002  (the SDK's names)
        url = f"{self.base_url}{api_method}"
        body = {**(params or {}), **(data or {}), **(json or {})}
        response = outbound.request(
            "POST", url, headers={"Authorization": f"Bearer {self.token}",
                                  "Content-Type": "application/json; charset=utf-8"},
            json_body=body, send_body=True, timeout=self.timeout,
        )
        return SlackResponse(
            client=self, http_verb="POST", api_url=url, req_args={"json": body}, data=_parsed(response.content),
            headers=dict(response.headers), status_code=response.status_code,
        ).validate()


def _parsed(content: bytes) -> dict:
    try:
        data = json.loads(content or b"{}")
    except ValueError:
        return {"ok": False, "error": "invalid_response"}
    return data if isinstance(data, dict) else {"ok": False, "error": "invalid_response"}


def client() -> PolicyWebClient:
    """A client with the bot token (``SLACK_BOT_TOKEN``) for ``SLACK_API_URL``."""
    if not settings.SLACK_BOT_TOKEN:
        raise TransportError("SLACK_BOT_TOKEN is not set: Slack messages cannot be sent", retryable=False)
    return PolicyWebClient(token=settings.SLACK_BOT_TOKEN, base_url=settings.SLACK_API_URL,
                           timeout=int(max(settings.NOTIFICATION_TIMEOUT_SECONDS, 1)))


def call(method, **arguments) -> SlackResponse:
    """Call a client method, turning failures into TransportError (retryable or not)."""
    try:
        return method(**arguments)
    except SlackApiError as error:
        code = error.response.get("error") if isinstance(error.response.data, dict) else ""
        status = error.response.status_code
        retryable = code in RETRYABLE_ERRORS or status >= 500 or status == 429
        raise TransportError(f"Slack answered {status} {code or ''}".strip(), retryable=retryable) from None
    except outbound.OutboundRefused as error:
        raise TransportError(str(error), retryable=False) from None
    except outbound.OutboundError as error:
        raise TransportError(str(error), retryable=error.retryable) from None
