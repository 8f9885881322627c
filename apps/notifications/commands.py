"""Slash commands from Slack: ``/deploy APPLICATION PIPELINE key=value ...`` and ``/cdp link|status|help``.

``/deploy`` starts the pipeline as the linked user through ``do_start_execution``
(execute checked, parameters validated with the API's own messages), answers
at once with a link, and subscribes the channel to the execution: its message
there is then updated in place as the execution goes on (``trigger.slackChannel``,
read by ``subscriptions.py``).
"""

from __future__ import annotations

import shlex

from django.db import transaction
from django.urls import reverse

from apps.accounts.permissions import READ, PermissionRefused, can
from apps.notifications import chatops
from apps.notifications.choices import ChatOutcome
from apps.notifications.messages import absolute
from apps.pipelines.checks import ActionRefused
from apps.pipelines.models import Application, Pipeline
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_start_execution

HELP = (
    "*/deploy APPLICATION PIPELINE key=value ...* starts a pipeline with those parameters, as you.\n"
    "*/cdp status APPLICATION* lists its latest executions.\n"
    "*/cdp link* gives you a code that links your Slack account to your platform user.\n"
    "*/cdp help* shows this."
)
STATUS_ROWS = 5
MAX_TEXT = 2000


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text[:MAX_TEXT])
    except ValueError as error:
        raise chatops.Refused(f"cannot read the command: {error}") from None


def _readable_pipeline(actor, application: str, name: str) -> Pipeline:
    pipeline = Pipeline.objects.select_related("application").filter(
        application__name=application, name=name).first()
    if pipeline is None or not can(actor.user, READ, pipeline.application):
        raise chatops.Refused(f"There is no pipeline {name!r} in an application {application!r} you can see.")
    return pipeline


def _parameters(words: list[str]) -> dict[str, str]:
    parameters = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise chatops.Refused(f"{word!r} is not a parameter: write key=value")
        parameters[key] = value
    return parameters


def deploy(form, words: list[str]) -> dict:
    """``/deploy APPLICATION PIPELINE key=value ...``: start it as the linked user; the answer everyone sees."""
    if len(words) < 2:
        raise chatops.Refused("Usage: /deploy APPLICATION PIPELINE key=value ...")
    actor = chatops.linked_actor(str(form.get("user_id") or ""))
    pipeline = _readable_pipeline(actor, words[0], words[1])
    trigger = {"type": "slack", "user": actor.username, "slackUser": str(form.get("user_id") or ""),
               "slackChannel": str(form.get("channel_id") or "")}
    try:
        execution = do_start_execution(pipeline, parameters=_parameters(words[2:]), trigger=trigger, user=actor)
    except InvalidDocument as error:
        raise chatops.Refused("Not started: " + "; ".join(str(problem) for problem in error.problems)) from None
    except (PermissionRefused, ActionRefused) as error:
        raise chatops.Refused(f"Not started: {error}") from None
    url = absolute(reverse("pipelines:execution", args=[execution.id]))
    return {"response_type": "in_channel",
            "text": f"<@{form.get('user_id')}> started {pipeline.application.name} / {pipeline.name}: <{url}|view>"}


def status(form, words: list[str]) -> dict:
    """``/cdp status APPLICATION``: the latest executions of an application the linked user can read."""
    if len(words) != 1:
        raise chatops.Refused("Usage: /cdp status APPLICATION")
    actor = chatops.linked_actor(str(form.get("user_id") or ""))
    application = Application.objects.filter(name=words[0]).first()
    if application is None or not can(actor.user, READ, application):
        raise chatops.Refused(f"There is no application {words[0]!r} you can see.")
    rows = application.executions.order_by("-created_at").only("id", "name", "status", "created_at")[:STATUS_ROWS]
    lines = [f"• {row.name}: {row.status} <{absolute(reverse('pipelines:execution', args=[row.id]))}|view> "
             f"({row.created_at:%Y-%m-%d %H:%M} UTC)" for row in rows]
    return {"response_type": "ephemeral", "text": "\n".join(lines) or f"{application.name} has no executions yet."}


def link(form, words: list[str]) -> dict:
    """``/cdp link``: a one-time code to enter on the Slack link page."""
    code = chatops.do_issue_link_code(str(form.get("user_id") or ""))
    page = absolute(reverse("notifications:slack-link"))
    return {"response_type": "ephemeral",
            "text": f"Your code is *{code}*. Enter it at {page} within {chatops.LINK_CODE_MINUTES} minutes."}


def _dispatch(form) -> dict:
    command = str(form.get("command") or "")
    words = _words(str(form.get("text") or ""))
    if command == "/deploy":
        return deploy(form, words)
    if command != "/cdp":
        raise chatops.Refused(f"Unknown command {command!r}. {HELP}")
    handlers = {"status": status, "link": link}
    if not words or words[0] == "help" or words[0] not in handlers:
        return {"response_type": "ephemeral", "text": HELP}
    return handlers[words[0]](form, words[1:])


def handle_command(form, verified: chatops.Verified) -> dict:
    """A verified slash command: Slack's answer (JSON), and a record of what became of it."""
    asked = f"{form.get('command', '')} {form.get('text', '')}".strip()
    user = str(form.get("user_id") or "")
    try:
        with transaction.atomic():
            answer = _dispatch(form)
            chatops.record_request("commands", ChatOutcome.DONE, "", verified=verified, slack_user_id=user,
                                   command=asked)
        return answer
    except chatops.Refused as error:
        chatops.record_request("commands", ChatOutcome.REFUSED, str(error), verified=verified,
                               slack_user_id=user, command=asked)
        return {"response_type": "ephemeral", "text": str(error)}
