"""A scriptable HTTP server on 127.0.0.1 for tests of stages that call out (webhooks).

The outbound-URL policy refuses loopback addresses unless an operator allows
them: the tests that use this server opt in to its address alone,
:data:`LOOPBACK` (``hook_server`` does it for the test process, the
``workers`` fixture for worker processes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# The one network the tests allow outbound calls to reach: this server's address.
LOOPBACK = "127.0.0.1/32"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Called (in the server's thread) once the request is received, before the reply is sent.
    before: Callable[[], None] | None = None


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HookServer:
    """Answers each (method, path) with the replies scripted for it, in order, the last one repeating."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[tuple[str, str], list[Reply]] = {}
        self.received: list[Received] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def script(self, path: str, *replies: Reply, method: str = "*") -> None:
        with self._lock:
            self._scripts[(method, path)] = list(replies)

    def calls(self, path: str | None = None, method: str | None = None) -> list[Received]:
        with self._lock:
            return [
                r for r in self.received if (path is None or r.path == path) and (method is None or r.method == method)
            ]

    def _answer(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            replies = self._scripts.get((received.method, received.path)) or self._scripts.get(("*", received.path))
            if not replies:
                return Reply(404, {"error": "not scripted"})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = server._answer(Received(self.command, self.path, headers, body))
                if reply.before is not None:
                    reply.before()
                payload = b"" if reply.body is None else reply.body
                if not isinstance(payload, bytes | str):
                    payload = json.dumps(payload)
                payload = payload.encode() if isinstance(payload, str) else payload
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
                pass

        return Handler


@contextmanager
def serving() -> Iterator[HookServer]:
    """A hook server answering on 127.0.0.1 for the block, shut down after it."""
    server = HookServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(5)


@pytest.fixture
def hook_server(settings):
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = [LOOPBACK]
    with serving() as server:
        yield server
