"""Slash commands: /deploy starts a pipeline as the linked person, /cdp link, status and help."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client

from apps.accounts.models import AuditEvent
from apps.notifications.models import ChatRequest, SlackLink
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution
from tests.conftest import wait_for_execution
from tests.notifications.conftest import receiver_env, slack_post
from tests.notifications.test_delivery import wait_for_deliveries
from tests.scenarios import client_for, save, wait

PATH = "/webhooks/slack/commands"
pytestmark = pytest.mark.django_db


def command(text: str, name: str = "/deploy", user: str = "U0ALICE") -> str:
    """The form body Slack sends for a slash command typed in #deploys."""
    return urlencode({"command": name, "text": text, "user_id": user, "channel_id": "C0DEPLOYS",
                      "team_id": "T0TEAM", "response_url": "https://hooks.slack.invalid/commands/1"})


def test_a_signed_deploy_starts_the_pipeline_with_its_parameters_and_follows_it_in_the_channel(
        workers, slack_api, people, slack_signing):
    workers.start(1, **receiver_env(slack_api))
    save([wait("1", 0), wait("2", 0, requisites=["1"])], name="release",
         parameterConfig=[{"name": "env", "required": True}, {"name": "note"}])
    SlackLink.objects.create(slack_user_id="U0ALICE", user=people["alice"])

    answer = slack_post(Client(), PATH, command('shop release env=prod "note=first try"'))

    assert answer.status_code == 200
    execution = Execution.objects.get(name="release")
    assert answer.json()["response_type"] == "in_channel"
    assert f"/executions/{execution.id}/|view>" in answer.json()["text"]
    assert execution.parameters == {"env": "prod", "note": "first try"}
    assert (execution.trigger["type"], execution.trigger["user"], execution.started_by) == ("slack", "alice", "alice")
    assert AuditEvent.objects.get(action="execution.started", object_id=str(execution.id)).source == "slack"
    assert wait_for_execution(execution.id).status == Status.SUCCEEDED
    # The execution's message (started, succeeded) and each stage's start and end in its thread.
    wait_for_deliveries(execution, 6)
    posts = slack_api.calls("/api/chat.postMessage")
    [parent] = [post for post in posts if "thread_ts" not in post.json]
    assert parent.json["channel"] == "C0DEPLOYS"
    replies = [post.json for post in posts if "thread_ts" in post.json]
    assert {(reply["channel"], reply["thread_ts"]) for reply in replies} == {("C0DEPLOYS", "1700.0001")}
    assert sorted(reply["text"] for reply in replies) == [
        "Stage Wait 1 started", "Stage Wait 1 succeeded", "Stage Wait 2 started", "Stage Wait 2 succeeded"]
    assert slack_api.calls("/api/chat.update")[-1].json["text"] == "shop / release succeeded"


def test_a_bad_parameter_gets_the_apis_message_and_starts_nothing(people, shop, slack_signing):
    SlackLink.objects.create(slack_user_id="U0ALICE", user=people["alice"])
    api = client_for(people["alice"]).post("/api/executions/", {
        "application": "shop", "pipeline": "deliver", "parameters": {"env": "qa"}}, format="json")
    api_message = next(e["message"] for e in api.json()["errors"] if e["pointer"] == "/parameters/env")

    answer = slack_post(Client(), PATH, command("shop deliver env=qa")).json()

    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == f"Not started: /parameters/env: {api_message}"
    assert not Execution.objects.exists()


def test_deploy_needs_a_linked_user_with_execute(people, shop, slack_signing):
    SlackLink.objects.create(slack_user_id="U0BOB", user=people["bob"])
    client = Client()

    unlinked = slack_post(client, PATH, command("shop deliver env=prod", user="U0NOBODY")).json()
    reader = slack_post(client, PATH, command("shop deliver env=prod", user="U0BOB")).json()
    outsider = slack_post(client, PATH, command("blog publish", user="U0BOB")).json()
    forged = slack_post(client, PATH, command("shop deliver env=prod"), secret="guess")

    assert "not linked" in unlinked["text"]
    assert reader["text"].startswith("Not started:") and "execute" in reader["text"]
    assert "no pipeline 'publish'" in outsider["text"]
    assert forged.status_code == 401
    assert not Execution.objects.exists()
    assert list(ChatRequest.objects.order_by("id").values_list("outcome", flat=True)) == [
        "refused", "refused", "refused", "forged"]


def test_cdp_link_gives_a_code_that_links_the_slack_user_on_the_profile_page(people, slack_signing):
    answer = slack_post(Client(), PATH, command("link", name="/cdp", user="U0CAROL")).json()
    code = answer["text"].split("*")[1]
    page = Client()
    page.force_login(people["charlie"])

    wrong = page.post("/profile/slack/", {"code": "NOTACODE"}, follow=True)
    linked = page.post("/profile/slack/", {"code": code.lower()}, follow=True)
    reused = page.post("/profile/slack/", {"code": code}, follow=True)

    assert "unknown or has expired" in wrong.content.decode()
    assert "U0CAROL" in linked.content.decode()
    assert SlackLink.objects.get(slack_user_id="U0CAROL").user == people["charlie"]
    assert "unknown or has expired" in reused.content.decode()
    assert AuditEvent.objects.get(action="slack.linked").actor == "charlie"


def test_cdp_status_lists_the_latest_executions_and_help_explains(people, shop, slack_signing):
    SlackLink.objects.create(slack_user_id="U0BOB", user=people["bob"])
    from apps.pipelines.services import do_start_execution

    execution = do_start_execution(shop, parameters={"env": "prod"}, user="alice")
    client = Client()

    status = slack_post(client, PATH, command("status shop", name="/cdp", user="U0BOB")).json()
    hidden = slack_post(client, PATH, command("status blog", name="/cdp", user="U0BOB")).json()
    helped = slack_post(client, PATH, command("help", name="/cdp", user="U0BOB")).json()

    assert f"deliver: {execution.status}" in status["text"] and str(execution.id) in status["text"]
    assert "no application 'blog'" in hidden["text"]
    assert "/deploy APPLICATION PIPELINE" in helped["text"]
