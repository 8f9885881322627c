"""A client that sends a request to a load balancer every 20 ms, each on a new connection, and records every answer."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass
class TrafficLog:
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def versions_in_order(self) -> list[str]:
        """The distinct answers in the order they first appeared."""
        seen: list[str] = []
        for answer in self.answers:
            if answer not in seen:
                seen.append(answer)
        return seen


class SteadyClient:
    """``with SteadyClient(port) as log:`` sends GET / every ``interval`` seconds until the block ends."""

    def __init__(self, port: int, interval: float = 0.02, limit: int = 6000):
        self.port, self.interval, self.limit = port, interval, limit
        self.log = TrafficLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read().decode().strip()
            if response.status == 200:
                self.log.answers.append(body)
            else:
                self.log.failures.append(f"{response.status} {body[:80]}")
        except OSError as error:
            self.log.failures.append(repr(error))
        finally:
            connection.close()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.log.answers) + len(self.log.failures) < self.limit:
            started = time.monotonic()
            self._one()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> TrafficLog:
        self._thread.start()
        return self.log

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
