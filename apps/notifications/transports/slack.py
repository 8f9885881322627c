"""Slack: one message per execution and channel, posted once (``chat.postMessage``) and then updated in place
(``chat.update``) with the execution as it stands, in Block Kit; a waiting judgment carries its buttons.
A target with ``thread`` (an execution started by ``/deploy``) also gets each stage's progress as a reply
in that message's thread.

Each send renders the execution's current state, so deliveries that arrive
out of order never show an older state over a newer one. A lease on the
:class:`SlackMessage` row (a compare-and-set, no lock held over the call)
lets one sender at a time post or update it: two never post two messages.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from apps.notifications.models import SlackMessage
from apps.notifications.transports import Transport, TransportError, register, slack_api

STATUS_WORDS = {"NOT_STARTED": "is starting", "BUFFERED": "is waiting its turn", "RUNNING": "is running",
                "PAUSED": "is paused", "SUCCEEDED": "succeeded", "TERMINAL": "failed", "CANCELED": "was canceled",
                "STOPPED": "was stopped", "FAILED_CONTINUE": "failed (continued)"}


class Busy(Exception):
    """Another sender is posting or updating this message right now: try again in a moment, no attempt spent."""


def judge_value(summary, decision: str, judgment_input: str = "") -> str:
    """What a judgment button carries: which execution and stage, and the choice."""
    return json.dumps({"e": summary.execution_id, "s": summary.judgment.ref_id, "d": decision, "i": judgment_input})


def _judgment_blocks(summary) -> list:
    judgment = summary.judgment
    if judgment is None:
        return []
    if judgment.decision:
        chosen = f" ({judgment.judgment_input})" if judgment.judgment_input else ""
        words = f"*{judgment.name}* judged *{judgment.decision}*{chosen} by {judgment.judged_by or 'someone'}"
        return [ContextBlock(elements=[MarkdownTextObject(text=words)])]
    asked = f"*{judgment.name}* awaits a judgment: {judgment.instructions or 'continue?'} <{judgment.url}|Open>"
    buttons = [ButtonElement(text=option[:75], action_id=f"judge-continue-{index}", style="primary",
                             value=judge_value(summary, "continue", option))
               for index, option in enumerate(judgment.options[:20])]
    if not buttons:
        buttons.append(ButtonElement(text="Continue", action_id="judge-continue", style="primary",
                                     value=judge_value(summary, "continue")))
    buttons.append(ButtonElement(text="Stop", action_id="judge-stop", style="danger",
                                 value=judge_value(summary, "stop")))
    return [SectionBlock(text=MarkdownTextObject(text=asked)), ActionsBlock(block_id="judgment", elements=buttons)]


def slack_message(summary) -> tuple[str, list[dict]]:
    """The fallback text and the Block Kit blocks of an execution's message."""
    headline = f"{summary.application} / {summary.pipeline} {STATUS_WORDS.get(summary.status, summary.status)}"
    blocks: list = []
    if summary.custom_text:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=summary.custom_text[:3000])))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*<{summary.url}|{headline}>*")))
    facts = [f"*{name}:* {value}" for name, value in summary.facts if name != "Status"]
    if facts:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fact[:2000]) for fact in facts[:10]]))
    blocks += _judgment_blocks(summary)
    return headline, [block.to_dict() for block in blocks]


def _claim(row: SlackMessage) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=settings.NOTIFICATION_TIMEOUT_SECONDS * 3)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return SlackMessage.objects.filter(free, pk=row.pk).update(lease_until=until) == 1


def sync_message(execution_id, channel: str, summary) -> SlackMessage:
    """Post the execution's message in ``channel``, or update it when it was posted; returns its row."""
    row, _ = SlackMessage.objects.get_or_create(execution_id=execution_id, channel=channel)
    if not _claim(row):
        raise Busy(channel)
    try:
        row.refresh_from_db(fields=["ts", "channel_id"])
        text, blocks = slack_message(summary)
        client = slack_api.client()
        if row.ts:
            slack_api.call(client.chat_update, channel=row.channel_id, ts=row.ts, text=text, blocks=blocks)
        else:
            answer = slack_api.call(client.chat_postMessage, channel=channel, text=text, blocks=blocks)
            row.ts, row.channel_id = str(answer.get("ts") or ""), str(answer.get("channel") or channel)
            if not row.ts:
                raise TransportError("Slack's answer to chat.postMessage has no ts", retryable=False)
            SlackMessage.objects.filter(pk=row.pk).update(ts=row.ts, channel_id=row.channel_id)
    finally:
        SlackMessage.objects.filter(pk=row.pk).update(lease_until=None)
    return row


@register
class SlackTransport(Transport):
    type_name = "slack"

    def send(self, delivery, summary, address: str) -> None:
        channel = address.strip()
        if not channel:
            raise TransportError("no Slack channel", retryable=False)
        row = sync_message(delivery.execution_id, channel, summary)
        if (delivery.target or {}).get("thread"):
            reply = summary.headline[:1].upper() + summary.headline[1:]
            if summary.moment.endswith("failed") and summary.error:
                reply += f": {summary.error}"
            slack_api.call(slack_api.client().chat_postMessage, channel=row.channel_id, thread_ts=row.ts,
                           text=reply[:3000])
