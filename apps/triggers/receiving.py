"""What every webhook endpoint does before and after its source's own reading: bounds, records, answers.

In order: the method must be POST; a client address past ``TRIGGER_RATE_LIMIT``
requests on one path is answered 429 (the first refusal of each window is
recorded); a body over ``TRIGGER_MAX_BODY_BYTES`` 413 unread; a body that is not
a JSON object 400. The source then reads the event and checks each candidate
trigger's proof (signature, token); if every candidate refused it, the request
is refused 401 (no proof) or 403 (a wrong one). A delivery id seen before in an
authenticated request is a replay, refused 403. Every answer but the 429s and
405s is recorded as an :class:`~apps.triggers.models.InboundEvent`; errors have
the API's shape, ``{"errors": [{"pointer": "", "message": "..."}]}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import IntegrityError, transaction
from django.http import JsonResponse

from apps.accounts.audit import client_ip
from apps.triggers.kinds.base import Event
from apps.triggers.models import Outcome, SeenDelivery, TriggerIndex
from apps.triggers.services import Inbound, candidates, do_fire, do_refuse

logger = logging.getLogger(__name__)

# The request headers kept on an inbound event: what it was and who sent it, never a proof.
RECORDED_HEADERS = (
    "Content-Type", "User-Agent", "X-GitHub-Event", "X-GitHub-Delivery", "X-Gitlab-Event", "X-Gitlab-Event-UUID",
    "X-Event-Key", "X-Request-UUID", "X-Request-Id", "X-Hook-UUID", "X-Delivery-Id",
)
PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class Refused(Exception):
    """The request as a whole is refused: ``status`` and a message saying why (``pointer`` into the body)."""

    def __init__(self, status: int, message: str, pointer: str = "", rows: list[TriggerIndex] = ()):
        super().__init__(message)
        self.status, self.message, self.pointer, self.rows = status, message, pointer, list(rows)


class Ignored(Exception):
    """A well-formed request with nothing to do (a ping, a branch deleted): answered 200, recorded."""


# A source: given the request's headers, raw body and parsed JSON, the event and its lookup keys, and a
# function telling whether the request proves itself to one candidate trigger ((status, reason) or None).
Reader = Callable[[dict, bytes, object], tuple[Event, list[str]]]
Prover = Callable[[TriggerIndex], "tuple[int, str] | None"]


def error(status: int, message: str, pointer: str = "", headers: dict | None = None) -> JsonResponse:
    response = JsonResponse({"errors": [{"pointer": pointer, "message": message}]}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _over_rate(request, path: str) -> tuple[bool, bool]:
    """(refused, first refusal of its window) for this client on this path; never refused without Redis."""
    count, _, period = settings.TRIGGER_RATE_LIMIT.partition("/")
    key = f"triggers:rate:{path}:{client_ip(request) or 'unknown'}"
    cache = caches["throttle"]
    try:
        try:
            seen = cache.incr(key)  # one round trip once the window's counter exists
        except ValueError:
            cache.add(key, 0, timeout=PERIOD_SECONDS[period])
            seen = cache.incr(key)
    except Exception as failure:  # noqa: BLE001  (Redis away: accept rather than refuse everyone)
        logger.warning("trigger rate limit not applied: %s", failure)
        return False, False
    return seen > int(count), seen == int(count) + 1


def read_body(request) -> bytes:
    """The body, refused 413 past TRIGGER_MAX_BODY_BYTES before more than that is read."""
    limit = settings.TRIGGER_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(400, "Content-Length is not a number") from None
    if declared > limit:
        raise Refused(413, f"the body is larger than {limit} bytes (TRIGGER_MAX_BODY_BYTES)")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refused(413, f"the body is larger than {limit} bytes (TRIGGER_MAX_BODY_BYTES)")
    return body


def parse_json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as failure:
        raise Refused(400, f"the body is not JSON: {failure}") from None
    if not isinstance(payload, dict):
        raise Refused(400, "the body must be a JSON object")
    return payload


def inbound_of(request, source: str, delivery_id: str = "") -> Inbound:
    headers = {name: request.headers[name][:300] for name in RECORDED_HEADERS if name in request.headers}
    return Inbound(source=source, delivery_id=delivery_id, client_ip=client_ip(request), headers=headers)


def receive(request, source: str, handle: Callable[[Inbound], JsonResponse]) -> JsonResponse:
    """The common bounds around ``handle``, which reads, authenticates and fires (see the module docstring)."""
    if request.method != "POST":
        return error(405, f"{request.method} is not allowed here; POST the event", headers={"Allow": "POST"})
    refused, first = _over_rate(request, request.path)
    if refused:
        if first:
            do_refuse(inbound_of(request, source), 429, f"more than {settings.TRIGGER_RATE_LIMIT} from this address")
        return error(429, f"more than {settings.TRIGGER_RATE_LIMIT} requests from this address",
                     headers={"Retry-After": "60"})
    inbound = inbound_of(request, source)
    try:
        inbound.body = read_body(request)
        return handle(inbound)
    except Refused as refusal:
        do_refuse(inbound, refusal.status, refusal.message, refusal.rows)
        return error(refusal.status, refusal.message, refusal.pointer)
    except Ignored as ignored:
        record = do_refuse(inbound, 200, str(ignored), outcome=Outcome.IGNORED)
        return JsonResponse({"eventProcessed": False, "eventId": str(record.uuid), "reason": str(ignored)})


def authenticate(rows: list[TriggerIndex], prove: Prover) -> tuple[list[TriggerIndex], list[tuple[TriggerIndex, str]]]:
    """The candidates the request proves itself to, and the others with why; Refused when none accepts it."""
    accepted, refused, statuses = [], [], []
    for row in rows:
        refusal = prove(row)
        if refusal is None:
            accepted.append(row)
        else:
            statuses.append(refusal[0])
            refused.append((row, refusal[1]))
    if rows and not accepted:
        raise Refused(min(statuses), refused[0][1], rows=rows)
    return accepted, refused


def fire(inbound: Inbound, event: Event, accepted: list[TriggerIndex],
         refused: list[tuple[TriggerIndex, str]]) -> JsonResponse:
    """Fire the accepted triggers, refusing a replayed delivery id (in the same transaction)."""
    with transaction.atomic():
        if inbound.delivery_id and accepted:
            try:
                with transaction.atomic():
                    SeenDelivery.objects.create(source=inbound.source[:300], delivery_id=inbound.delivery_id[:200])
            except IntegrityError:
                raise Refused(403, f"delivery {inbound.delivery_id!r} was already received (a replay)",
                              rows=accepted) from None
        record = do_fire(inbound, event, accepted, refused)
    return JsonResponse({"eventProcessed": True, "eventId": str(record.uuid), "executions": record.started})


def fire_each(inbound: Inbound, events: list[tuple[str, Event]]) -> JsonResponse:
    """Fire several events of one request (a registry's envelope), each recorded on its own with its own id.

    A replayed event is recorded as refused and the others go on: the sender
    retries a whole envelope when any part of it failed.
    """
    executions, recorded = [], []
    for delivery_id, event in events:
        single = dataclasses.replace(inbound, delivery_id=delivery_id)
        rows = candidates(event.type, [event.key, *event.aliases])
        try:
            response = json.loads(fire(single, event, rows, []).content)
        except Refused as refusal:
            recorded.append(str(do_refuse(single, refusal.status, refusal.message, refusal.rows).uuid))
            continue
        recorded.append(response["eventId"])
        executions += response["executions"]
    return JsonResponse({"eventProcessed": True, "eventIds": recorded, "executions": executions})
