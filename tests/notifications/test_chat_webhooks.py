"""Microsoft Teams and Google Chat incoming webhooks receive their documented bodies."""

from __future__ import annotations

from apps.pipelines.services import do_start_execution
from tests.conftest import wait_for_execution
from tests.hookserver import Reply
from tests.notifications.conftest import receiver_env
from tests.notifications.test_delivery import notify, wait_for_deliveries
from tests.scenarios import failing, save


def test_teams_gets_an_adaptive_card_and_google_chat_a_text_message(workers, hook_server):
    workers.start(1, **receiver_env(hook_server))
    hook_server.script("/teams/hook", Reply(200, "1"))
    hook_server.script("/v1/spaces/AAA/messages", Reply(200, {"name": "spaces/AAA/messages/1"}))
    pipeline = save([failing("1")], notifications=[
        notify("microsoftteams", hook_server.url("/teams/hook"), "pipeline.failed"),
        notify("googlechat", hook_server.url("/v1/spaces/AAA/messages"), "pipeline.failed",
               message={"pipeline.failed": {"text": "Deploy of ${trigger.user} broke"}}),
    ])
    execution = do_start_execution(pipeline, user="alice")
    wait_for_execution(execution.id)
    wait_for_deliveries(execution, 2)

    [teams] = hook_server.calls("/teams/hook", "POST")
    assert teams.json["type"] == "message"
    [attachment] = teams.json["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "shop / deliver failed"
    assert {"title": "Failed stage", "value": "Check 1"} in card["body"][1]["facts"]
    assert card["actions"][0]["url"].endswith(f"/executions/{execution.id}/")

    [chat] = hook_server.calls("/v1/spaces/AAA/messages", "POST")
    assert list(chat.json) == ["text"]
    lines = chat.json["text"].splitlines()
    assert lines[0] == "Deploy of alice broke"
    assert lines[1] == "*shop / deliver failed*"
    assert lines[-1].endswith(f"/executions/{execution.id}/|View execution>")
