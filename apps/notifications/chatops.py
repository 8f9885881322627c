"""Chat-ops from Slack: a judgment from a button, a deploy from a slash command, linking Slack users to people.

A request from Slack is believed only when it is signed with
``SLACK_SIGNING_SECRET`` (slack_sdk's ``SignatureVerifier``: HMAC-SHA256 of
``v0:timestamp:body``), its timestamp is within five minutes, and its
signature was not seen before (a replay inside the window): anything else is
refused before its body is read, and recorded (:class:`ChatRequest`). A
verified request acts as the platform user linked to the Slack user
(:class:`SlackLink`), through the same services as the API and the pages —
``do_judge_stage`` and ``do_start_execution``, with their permission checks —
audited with source ``slack``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from slack_sdk.signature import SignatureVerifier

from apps.accounts.audit import Actor, record
from apps.accounts.models import AuditSource
from apps.accounts.permissions import PermissionRefused
from apps.notifications.choices import ChatOutcome
from apps.notifications.delivery import notification_queue
from apps.notifications.models import ChatRequest, SlackLink, SlackLinkCode
from apps.pipelines.checks import ActionRefused
from apps.pipelines.services import do_judge_stage

SIGNATURE_WINDOW_SECONDS = 300
LINK_CODE_MINUTES = 10
MAX_BODY_BYTES = 256 * 1024
ANSWER_PRIVATELY = "apps.notifications.jobs.answer_privately"
REFRESH_MESSAGES = "apps.notifications.jobs.refresh_messages"
REPLAYED = "this request was received before (a replay)"


class Forged(Exception):
    """A request that cannot be shown to come from Slack: nothing in it is acted on."""


class Refused(Exception):
    """A verified request that is not done (not linked, not allowed, bad input); the message says why."""


@dataclass(frozen=True)
class Verified:
    """A request that came from Slack: its signature's hash (kept against replays) and the client address."""

    signature_hash: str
    ip_address: str | None


def verify(body: bytes, timestamp: str | None, signature: str | None) -> str:
    """The hash of the request's signature when Slack signed it, now; raises Forged with the reason otherwise."""
    if not settings.SLACK_SIGNING_SECRET:
        raise Forged("Slack requests are not accepted: SLACK_SIGNING_SECRET is not set")
    if not timestamp or not signature:
        raise Forged("the request is not signed (X-Slack-Request-Timestamp and X-Slack-Signature)")
    if len(body) > MAX_BODY_BYTES:
        raise Forged(f"the request is larger than {MAX_BODY_BYTES} bytes")
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise Forged("X-Slack-Request-Timestamp is not a number") from None
    if age > SIGNATURE_WINDOW_SECONDS:
        raise Forged("the request's timestamp is more than five minutes old (a replay?)")
    verifier = SignatureVerifier(settings.SLACK_SIGNING_SECRET)
    if not verifier.is_valid(body=body.decode("utf-8", errors="replace"), timestamp=timestamp, signature=signature):
        raise Forged("the signature does not match the signing secret")
    signature_hash = hashlib.sha256(signature.encode()).hexdigest()
    if ChatRequest.objects.filter(signature_hash=signature_hash).exists():
        raise Forged(REPLAYED)
    return signature_hash


def record_request(endpoint: str, outcome: str, reason: str, *, verified: Verified | None = None,
                   ip_address: str | None = None, slack_user_id: str = "", command: str = "") -> None:
    """Keep what came to a Slack endpoint and what became of it."""
    ChatRequest.objects.create(
        endpoint=endpoint, outcome=outcome, reason=reason[:2000], slack_user_id=slack_user_id[:40],
        command=command[:200], signature_hash=verified.signature_hash if verified else "",
        ip_address=verified.ip_address if verified else ip_address,
    )


def linked_actor(slack_user_id: str) -> Actor:
    """The platform user a Slack user is linked to, acting through Slack; Refused when there is none."""
    link = SlackLink.objects.select_related("user").filter(slack_user_id=slack_user_id).first()
    if link is None or not link.user.is_active:
        raise Refused("Your Slack account is not linked to a platform user: run /cdp link, then enter the code "
                      "on your Slack link page.")
    return Actor(username=link.user.get_username(), source=AuditSource.SLACK, user=link.user)


# --- Buttons: manual judgments -------------------------------------------------------------------


@dataclass(frozen=True)
class Click:
    """A judgment button as clicked: who, where, and what the button carries."""

    slack_user_id: str
    channel: str
    execution_id: str
    ref_id: str
    decision: str
    judgment_input: str


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def read_click(payload) -> Click:
    """The judgment a ``block_actions`` payload asks for; Refused when it is not one."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise Refused("only judgment buttons are understood here")
    user = _object(payload.get("user"))
    channel = _object(payload.get("channel"))
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    action = _object(actions[0] if actions else None)
    try:
        value = json.loads(action.get("value") or "")
        execution_id = str(uuid.UUID(str(value["e"])))
        click = Click(str(user.get("id") or ""), str(channel.get("id") or ""), execution_id, str(value["s"]),
                      str(value["d"]), str(value.get("i") or ""))
    except (ValueError, KeyError, TypeError):
        raise Refused("the button does not name a judgment") from None
    if not click.slack_user_id:
        raise Refused("the click names no Slack user")
    return click


def do_judge_from_slack(click: Click) -> str:
    """Judge as the linked user through the UI's own service; returns what to tell the clicker."""
    actor = linked_actor(click.slack_user_id)
    try:
        do_judge_stage(click.execution_id, click.ref_id, decision=click.decision, user=actor,
                       judgment_input=click.judgment_input or None)
    except (PermissionRefused, ActionRefused) as error:
        raise Refused(str(error)) from None
    transaction.on_commit(lambda: _queue(REFRESH_MESSAGES, click.execution_id))
    chosen = f" ({click.judgment_input})" if click.judgment_input else ""
    return f"You judged {click.decision}{chosen}."


def handle_click(payload, verified: Verified) -> tuple[bool, str]:
    """A verified button click: judged (True, what happened) or refused (False, why, also told privately)."""
    try:
        click = read_click(payload)
    except Refused as error:
        record_request("interactions", ChatOutcome.REFUSED, str(error), verified=verified)
        return False, str(error)
    command = f"judge {click.execution_id} {click.ref_id} {click.decision} {click.judgment_input}".strip()
    try:
        with transaction.atomic():
            text = do_judge_from_slack(click)
            record_request("interactions", ChatOutcome.DONE, text, verified=verified,
                           slack_user_id=click.slack_user_id, command=command)
        return True, text
    except Refused as error:
        reason = str(error)
        record_request("interactions", ChatOutcome.REFUSED, reason, verified=verified,
                       slack_user_id=click.slack_user_id, command=command)
        if click.channel:
            transaction.on_commit(lambda: _queue(ANSWER_PRIVATELY, click.channel, click.slack_user_id, reason))
        return False, reason


def _queue(job: str, *args) -> None:
    notification_queue().enqueue(job, *args, result_ttl=0, job_timeout=60)


# --- Linking Slack users to people ---------------------------------------------------------------


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def do_issue_link_code(slack_user_id: str) -> str:
    """A one-time code for ``/cdp link`` (valid LINK_CODE_MINUTES), kept hashed; the earlier ones are void."""
    code = secrets.token_hex(4).upper()
    with transaction.atomic():
        SlackLinkCode.objects.filter(slack_user_id=slack_user_id).delete()
        SlackLinkCode.objects.create(code_hash=_hash_code(code), slack_user_id=slack_user_id,
                                     expires_at=timezone.now() + timedelta(minutes=LINK_CODE_MINUTES))
    return code


def do_link_slack_user(user, slack_user_id: str, *, actor: Actor | str) -> SlackLink:
    """Link a Slack user to ``user`` (replacing an earlier link of that Slack user), audited."""
    with transaction.atomic():
        link, _ = SlackLink.objects.update_or_create(
            slack_user_id=slack_user_id, defaults={"user": user, "linked_by": Actor.of(actor).username})
        record("slack.linked", actor, object_type="user", object_id=user.pk,
               details={"slackUser": slack_user_id, "user": user.get_username()})
    return link


def do_redeem_link_code(user, code: str, *, actor: Actor) -> SlackLink:
    """Link the Slack user who was given ``code`` to ``user``; Refused for an unknown or expired code."""
    with transaction.atomic():
        row = SlackLinkCode.objects.select_for_update().filter(code_hash=_hash_code(code)).first()
        if row is None or row.expires_at < timezone.now():
            raise Refused("This code is unknown or has expired: run /cdp link in Slack for a new one.")
        row.delete()
        return do_link_slack_user(user, row.slack_user_id, actor=actor)
