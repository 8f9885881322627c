"""Real receivers on 127.0.0.1 for notifications: an SMTP server (aiosmtpd) and Slack's Web API (a hook server)."""

from __future__ import annotations

import threading

import pytest

from cdplatform.webprocess import free_port
from tests.conftest import missing_service
from tests.hookserver import Reply

SLACK_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class Inbox:
    """What the SMTP server received: each message as (envelope sender, recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's handler name)
        from email import message_from_bytes, policy

        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """An aiosmtpd server on 127.0.0.1; yields (port, inbox)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        missing_service("needs aiosmtpd (requirements-dev.txt) for a real SMTP receiver")
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture
def slack_api(hook_server):
    """A hook server that answers Slack's Web API methods as Slack does: chat.postMessage gives a ts."""
    hook_server.script("/api/chat.postMessage", Reply(200, {"ok": True, "channel": "C0DEPLOYS", "ts": "1700.0001"}))
    hook_server.script("/api/chat.update", Reply(200, {"ok": True, "channel": "C0DEPLOYS", "ts": "1700.0001"}))
    hook_server.script("/api/chat.postEphemeral", Reply(200, {"ok": True, "message_ts": "1700.0002"}))
    return hook_server


def receiver_env(hook_server=None, smtp=None, **extra: str) -> dict[str, str]:
    """Settings for worker processes: where Slack and the SMTP server are, and quick retries."""
    env = {"NOTIFICATION_RETRY_BACKOFF_SECONDS": "0.2", "SLACK_BOT_TOKEN": SLACK_TOKEN, **extra}
    if hook_server is not None:
        env["SLACK_API_URL"] = hook_server.url("/api/")
    if smtp is not None:
        env.update(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp[0]))
    return env


@pytest.fixture
def down_url():
    """A URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/hook"





def slack_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with: ``v0=HMAC-SHA256(secret, "v0:timestamp:body")``."""
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": stamp, "HTTP_X_SLACK_SIGNATURE": signature}


def slack_post(client, path: str, body: str, *, headers: dict[str, str] | None = None, signed: bool = True,
               **signing):
    """POST ``body`` (form-encoded) to a Slack endpoint as Slack does: signed, unless ``signed`` is false."""
    if headers is None:
        headers = slack_headers(body, **signing) if signed else {}
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded", **headers)


@pytest.fixture
def slack_signing(settings):
    """The test process believes requests signed with SIGNING_SECRET."""
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_BOT_TOKEN = SLACK_TOKEN
