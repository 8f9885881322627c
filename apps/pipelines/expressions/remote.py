"""``#fromUrl``, ``#jsonFromUrl``, ``#yamlFromUrl`` and ``#propertiesFromUrl``: Orca's helpers that read a URL.

Each fetch is a GET through the outbound policy (``apps/pipelines/outbound.py``): the same refusals as a
webhook's (no loopback, private or metadata addresses unless allowed, checked again at connect time), a
body cut at the policy's size, a timeout of ``FETCH_TIMEOUT_SECONDS``. One evaluation (one stage's context,
one request to the evaluate endpoint) may fetch at most ``MAX_FETCHES`` URLs: the CPU budget does not count
the time spent waiting for a server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.functions import _read_json, read_properties, read_yaml

FETCH_TIMEOUT_SECONDS = 5.0
MAX_FETCHES = 3


class UrlFunctions:
    """The URL helpers of one evaluation, counting its fetches."""

    def __init__(self) -> None:
        self.fetches = 0

    def table(self) -> dict[str, Callable[..., Any]]:
        return {
            "fromUrl": self.text,
            "jsonFromUrl": lambda url: _read_json(self.text(url)),
            "yamlFromUrl": lambda url: read_yaml(self.text(url)),
            "propertiesFromUrl": lambda url: read_properties(self.text(url)),
        }

    def text(self, url: Any) -> str:
        """The body of a GET of ``url`` as text; a status other than 2xx, or a refused URL, is a failure."""
        from apps.pipelines import outbound

        if not isinstance(url, str):
            raise Refusal("the URL must be a string")
        if self.fetches >= MAX_FETCHES:
            raise Refusal(f"an evaluation may fetch at most {MAX_FETCHES} URLs")
        self.fetches += 1
        try:
            response = outbound.request("GET", url, timeout=FETCH_TIMEOUT_SECONDS)
        except outbound.OutboundError as error:
            raise Refusal(str(error)) from None
        if not 200 <= response.status_code < 300:
            raise Refusal(f"GET {url} answered {response.status_code}")
        if response.truncated:
            raise Refusal(f"GET {url}: the body is larger than {outbound.MAX_BODY_BYTES:,} bytes")
        return response.text
