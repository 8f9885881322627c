"""``webhook`` triggers: any sender posting JSON to ``/webhooks/webhook/{source}``, as Spinnaker's generic webhooks.

A trigger names its ``source`` (the last part of the path) and may set
``payloadConstraints``: field → regex, every one of which must match the
payload's value (a dotted name reads a nested field: ``repo.branch``). With a
``secret`` (``${#secret('name')}``) a request must prove it, either with
``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`` or with the secret
itself in ``X-Webhook-Token``; ``X-Delivery-Id``, when sent, is checked for
replays. The execution sees the payload as ``${trigger.payload}``; the
payload's ``parameters`` object becomes the execution's parameters and its
``artifacts`` list ``trigger.artifacts``, as Spinnaker takes them.
"""

from __future__ import annotations

from typing import Any

import re2

from apps.pipelines.patterns import matches_pattern, pattern_problem
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages.base import StageField
from apps.triggers.kinds.base import (
    Event,
    TriggerKind,
    register_kind,
    secret_problem,
    text_field,
)
from apps.triggers.signatures import hmac_sha256_matches, token_matches

SOURCE_PATTERN = re2.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def payload_value(payload: Any, name: str) -> Any:
    """The payload's field ``name``: a top-level key, else a dotted path into nested objects."""
    if isinstance(payload, dict) and name in payload:
        return payload[name]
    for part in name.split("."):
        payload = payload.get(part) if isinstance(payload, dict) else None
    return payload


class WebhookKind(TriggerKind):
    type = "webhook"
    secret_fields = ("secret",)
    fields = (
        StageField("source", label="Source", required=True, help="The last part of /webhooks/webhook/<source>"),
        StageField("secret", label="Secret", help="A reference to an application secret, ${#secret('name')}, or "
                   "the value, which saving moves into the application's secrets"),
        StageField("payloadConstraints", "object", "Payload constraints",
                   help="Keys of the payload and the regular expression each must match"),
    )

    def key(self, trigger: dict) -> str | None:
        source = trigger.get("source")
        return source if isinstance(source, str) and source else None

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        problems = text_field(trigger, "source", pointer, required=True) + secret_problem(trigger, pointer)
        if not problems and not SOURCE_PATTERN.fullmatch(trigger["source"]):
            problems.append(Problem(pointer_join(pointer, "source"),
                                    "must be letters, digits, '.', '_' or '-' (it is the last part of the URL)"))
        constraints = trigger.get("payloadConstraints")
        if constraints is not None and not isinstance(constraints, dict):
            return problems + [Problem(pointer_join(pointer, "payloadConstraints"), "must be an object")]
        for name, pattern in (constraints or {}).items():
            problems += pattern_problem(pattern, pointer_join(pointer, "payloadConstraints", name))
        return problems

    def describe(self, trigger: dict) -> str:
        constraints = trigger.get("payloadConstraints") if isinstance(trigger.get("payloadConstraints"), dict) else {}
        where = f" where {', '.join(f'{k} matches {v}' for k, v in constraints.items())}" if constraints else ""
        return f"Runs when a webhook is received at /webhooks/webhook/{trigger.get('source')}{where}"

    def mismatch(self, trigger: dict, event: Event) -> str | None:
        constraints = trigger.get("payloadConstraints") if isinstance(trigger.get("payloadConstraints"), dict) else {}
        payload = event.fields["payload"]
        for name, pattern in constraints.items():
            value = payload_value(payload, name)
            if value is None or isinstance(value, dict | list) or not matches_pattern(pattern, value):
                return f"payload field {name!r} does not match {pattern!r}"
        return None


WEBHOOK = register_kind(WebhookKind())


def parse(source: str, payload: dict) -> Event:
    """The event a generic webhook's payload makes."""
    parameters = payload.get("parameters")
    artifacts = payload.get("artifacts")
    if parameters is not None and not isinstance(parameters, dict):
        raise ValueError("/parameters: must be an object (parameter name: value)")
    if artifacts is not None and (not isinstance(artifacts, list) or not all(isinstance(a, dict) for a in artifacts)):
        raise ValueError("/artifacts: must be a list of artifacts (objects with type, name, reference, version)")
    return Event("webhook", source, fields={"source": source, "payload": payload}, parameters=parameters or {},
                 artifacts=artifacts or [], summary={"source": source, "keys": sorted(payload)[:50]})


def proof_refusal(headers, body: bytes, secret: str) -> tuple[int, str] | None:
    """Why the request does not prove the trigger's secret (401 none, 403 wrong); None when it does."""
    signed, token = headers.get("X-Hub-Signature-256"), headers.get("X-Webhook-Token")
    if signed is None and token is None:
        return 401, "the trigger has a secret and the request has neither X-Hub-Signature-256 nor X-Webhook-Token"
    if signed is not None and hmac_sha256_matches(secret, body, signed):
        return None
    if token is not None and token_matches(token, secret):
        return None
    return 403, "the request's signature or token does not match the trigger's secret"
