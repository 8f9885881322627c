"""One transport per kind of target, registered by its Spinnaker ``type``: a summary in, one message sent.

A transport raises :class:`TransportError` when a message did not get
through, saying whether trying again may help (a timeout, a 5xx, a 429) or
not (a 4xx, an address that is not one), as Healthchecks' transports do.
Every HTTP call goes through the outbound URL policy (``apps/pipelines/outbound.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from apps.pipelines import outbound

if TYPE_CHECKING:
    from apps.notifications.messages import Summary
    from apps.notifications.models import Delivery


class TransportError(Exception):
    """A message that did not get through; ``retryable`` when a later try may succeed."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class Transport:
    """A kind of target. ``send`` delivers one message or raises TransportError."""

    type_name = ""

    def send(self, delivery: Delivery, summary: Summary, address: str) -> None:
        raise NotImplementedError


TRANSPORTS: dict[str, Transport] = {}


def register(cls: type[Transport]) -> type[Transport]:
    """Class decorator: make a transport available under its ``type_name``."""
    TRANSPORTS[cls.type_name] = cls()
    return cls


def post_json(url: str, body: dict, *, idempotency_key: str = "") -> outbound.OutboundResponse:
    """POST a JSON body through the outbound policy; a response other than 2xx raises TransportError."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    try:
        response = outbound.request("POST", url, headers=headers, json_body=body, send_body=True,
                                    timeout=settings.NOTIFICATION_TIMEOUT_SECONDS)
    except outbound.OutboundRefused as error:
        raise TransportError(str(error), retryable=False) from None
    except outbound.OutboundError as error:
        raise TransportError(str(error), retryable=error.retryable) from None
    if not 200 <= response.status_code < 300:
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise TransportError(f"{url_for_people(url)} answered {response.status_code}: {response.text[:300]}",
                             retryable=retryable)
    return response


def url_for_people(url: str) -> str:
    """A URL without its path and query, which may hold a token (Teams, Google Chat)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else "the URL"


def load() -> None:
    """Import the built-in transports (each registers itself)."""
    from apps.notifications.transports import chat, email, slack, webhook  # noqa: F401
