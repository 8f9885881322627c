"""Querying Prometheus over its HTTP API (``/api/v1/query_range``), through the outbound-URL policy.

Public functions: :func:`query_range` (one PromQL query over a window: the values of its one
series) and :func:`account_named` (a stored account, or the one ``PROMETHEUS_URL`` describes).
Every call goes through ``apps.pipelines.outbound.request``: the account's URL must pass the
``OUTBOUND_URL_*`` policy (a Prometheus on a private or loopback address needs
``OUTBOUND_URL_ALLOWED_NETWORKS``), each call is bounded by ``CANARY_QUERY_TIMEOUT_SECONDS`` and
the response by the policy's body limit, and a range never asks for more than
:data:`MAX_POINTS` points.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings

from apps.canary.models import DEFAULT_ACCOUNT, PrometheusAccount
from apps.deployments.credentials import decrypted
from apps.pipelines import outbound

MAX_POINTS = 1000


class QueryFailed(Exception):
    """A query that gave no values: refused by the policy, no answer, an error from Prometheus, a bad answer.

    ``retryable`` when trying again may help (a timeout, a refused connection, a 5xx).
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Series:
    """The values of one query over a window: timestamps (seconds) and values (NaN where Prometheus says NaN)."""

    timestamps: list[float]
    values: list[float]
    step: float


def account_named(name: str | None) -> PrometheusAccount | None:
    """The stored account ``name``; else, for ``prometheus`` (or no name) with PROMETHEUS_URL set, that one.

    The one PROMETHEUS_URL describes is not stored: it exists as long as the setting does, and a
    stored account of the same name takes its place.
    """
    name = name or DEFAULT_ACCOUNT
    if "\x00" in name:
        return None
    account = PrometheusAccount.objects.filter(name=name).first()
    if account is None and name == DEFAULT_ACCOUNT and settings.PROMETHEUS_URL:
        account = PrometheusAccount(name=DEFAULT_ACCOUNT, url=settings.PROMETHEUS_URL)
    return account


def _headers(account: PrometheusAccount) -> dict[str, str]:
    if account.bearer_token:
        return {"Authorization": f"Bearer {decrypted(account.bearer_token)}"}
    if account.username:
        pair = f"{account.username}:{decrypted(account.password)}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}


def bounded_step(start: float, end: float, step: float) -> float:
    """``step`` seconds, widened so the window holds at most MAX_POINTS points."""
    return max(float(step), math.ceil((end - start) / MAX_POINTS), 1.0)


def query_range(account: PrometheusAccount, query: str, *, start: float, end: float, step: float) -> Series:
    """The values of ``query`` from ``start`` to ``end`` (epoch seconds) every ``step`` seconds.

    The query must give one series (aggregate it, e.g. ``sum(...)``) or none (no values: an empty
    Series). QueryFailed otherwise, naming what went wrong.
    """
    step = bounded_step(start, end, step)
    params = urlencode({"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
    url = f"{account.url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        response = outbound.request("GET", url, headers=_headers(account),
                                    timeout=settings.CANARY_QUERY_TIMEOUT_SECONDS)
    except outbound.OutboundRefused as refused:
        raise QueryFailed(f"metrics account {account.name}: {refused}") from None
    except outbound.OutboundError as error:
        raise QueryFailed(f"metrics account {account.name}: {error}", retryable=error.retryable) from None
    return _series(account, response, step)


def _series(account: PrometheusAccount, response: outbound.OutboundResponse, step: float) -> Series:
    where = f"metrics account {account.name}"
    if response.truncated:
        raise QueryFailed(f"{where}: the answer is over {outbound.MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise QueryFailed(f"{where}: HTTP {response.status_code}, not a Prometheus answer",
                          retryable=response.status_code >= 500) from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise QueryFailed(f"{where}: HTTP {response.status_code}: {error or 'not a Prometheus answer'}",
                          retryable=response.status_code >= 500)
    data = body.get("data") or {}
    result = data.get("result") if isinstance(data, dict) else None
    if data.get("resultType") != "matrix" or not isinstance(result, list):
        raise QueryFailed(f"{where}: the answer is not a range of values (resultType {data.get('resultType')!r})")
    if len(result) > 1:
        raise QueryFailed(f"{where}: the query gives {len(result)} series; aggregate it (sum(...), "
                          "histogram_quantile(..., sum by (le) (...))) so it gives one per scope")
    if not result:
        return Series([], [], step)
    try:
        pairs = [(float(stamp), float(value)) for stamp, value in result[0].get("values") or []]
    except (TypeError, ValueError):
        raise QueryFailed(f"{where}: the answer's values are not numbers") from None
    return Series([stamp for stamp, _ in pairs], [value for _, value in pairs], step)
