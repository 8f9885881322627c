"""A judgment from a Slack button: signed, from a linked person with the right role, through the UI's own service."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client

from apps.accounts.models import AuditEvent
from apps.notifications.models import ChatRequest, SlackLink
from apps.pipelines.choices import Status
from apps.pipelines.models import StageExecution
from apps.pipelines.services import do_start_execution
from tests.conftest import wait_for_execution, wait_for_stage
from tests.notifications.conftest import receiver_env, slack_headers, slack_post
from tests.notifications.test_delivery import notify, wait_for_deliveries
from tests.scenarios import JUDGES, save, wait

PATH = "/webhooks/slack/interactions"


def judged_pipeline():
    approve = {"refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
               "selectedStageRoles": [JUDGES], "judgmentInputs": [{"value": "ship"}, {"value": "hold"}]}
    return save([wait("1", 0), approve], notifications=[notify("slack", "deploys", "manualJudgment")])


def click(execution, slack_user: str, decision: str = "continue", judgment_input: str = "ship") -> str:
    """The form body Slack sends for a click on one of the message's judgment buttons."""
    value = json.dumps({"e": str(execution.id), "s": "2", "d": decision, "i": judgment_input})
    payload = {"type": "block_actions", "user": {"id": slack_user}, "channel": {"id": "C0DEPLOYS"},
               "message": {"ts": "1700.0001"}, "response_url": "https://hooks.slack.invalid/actions/1",
               "actions": [{"action_id": "judge-continue-0", "block_id": "judgment", "value": value}]}
    return urlencode({"payload": json.dumps(payload)})


@pytest.fixture
def waiting(workers, slack_api, people, slack_signing):
    """An execution waiting at a judgment only release managers may make, its Slack message posted."""
    workers.start(1, **receiver_env(slack_api))
    execution = do_start_execution(judged_pipeline(), user="alice")
    wait_for_stage(execution.id, "2", {Status.RUNNING})
    wait_for_deliveries(execution, 1)
    for name, slack_user in (("dave", "U0DAVE"), ("alice", "U0ALICE"), ("bob", "U0BOB")):
        SlackLink.objects.create(slack_user_id=slack_user, user=people[name])
    return execution


def test_a_signed_click_from_a_linked_judge_continues_and_the_execution_proceeds(waiting, slack_api):
    response = slack_post(Client(), PATH, click(waiting, "U0DAVE"))

    assert response.status_code == 200 and response.json()["ok"] is True
    assert wait_for_execution(waiting.id).status == Status.SUCCEEDED
    stage = StageExecution.objects.get(execution=waiting, ref_id="2")
    assert (stage.context["judgmentStatus"], stage.context["judgmentInput"]) == ("continue", "ship")
    audit = AuditEvent.objects.get(action="stage.judged", object_id=str(waiting.id))
    assert (audit.actor, audit.source) == ("dave", "slack")
    deadline = time.monotonic() + 15
    while not slack_api.calls("/api/chat.update") and time.monotonic() < deadline:
        time.sleep(0.1)
    update = slack_api.calls("/api/chat.update")[0].json
    assert "*Approve* judged *continue* (ship) by dave" in str(update["blocks"])
    assert "actions" not in [block["type"] for block in update["blocks"]]


def test_forged_and_refused_clicks_change_nothing_and_say_why(waiting, slack_api):
    client, body = Client(), click(waiting, "U0DAVE")
    forged = [
        (slack_post(client, PATH, body, signed=False), "not signed"),
        (slack_post(client, PATH, body, timestamp=int(time.time()) - 301), "more than five minutes old"),
        (slack_post(client, PATH, body, secret="not-the-secret"), "signature does not match"),
    ]
    nobody = click(waiting, "U0NOBODY")
    nobody_headers = slack_headers(nobody)
    refused = [
        (slack_post(client, PATH, nobody, headers=nobody_headers), "not linked to a platform user"),
        (slack_post(client, PATH, click(waiting, "U0ALICE")), f"Only members of {JUDGES} may judge"),
        (slack_post(client, PATH, click(waiting, "U0BOB")), "execute"),
    ]
    again = slack_post(client, PATH, nobody, headers=nobody_headers)

    for response, reason in forged:
        assert response.status_code == 401 and reason in response.json()["error"]
    assert again.status_code == 401 and "a replay" in again.json()["error"]
    for response, reason in refused:
        assert response.status_code == 200 and response.json()["ok"] is False
        assert reason in response.json()["text"]
    stage = StageExecution.objects.get(execution=waiting, ref_id="2")
    assert stage.status == Status.RUNNING and not stage.context.get("judgmentStatus")
    assert ChatRequest.objects.filter(outcome="forged").count() == 4
    deadline = time.monotonic() + 15
    while len(slack_api.calls("/api/chat.postEphemeral")) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    answered = {call.json["user"]: call.json["text"] for call in slack_api.calls("/api/chat.postEphemeral")}
    assert set(answered) == {"U0NOBODY", "U0ALICE", "U0BOB"}
    assert f"Only members of {JUDGES} may judge" in answered["U0ALICE"]
