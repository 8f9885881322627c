"""Slack: an execution's message is posted once with chat.postMessage, then updated in place with chat.update."""

from __future__ import annotations

from apps.notifications.models import SlackMessage
from apps.pipelines.choices import Status
from apps.pipelines.services import do_judge_stage, do_start_execution
from tests.conftest import wait_for_execution, wait_for_stage
from tests.notifications.conftest import SLACK_TOKEN, receiver_env
from tests.notifications.test_delivery import notify, wait_for_deliveries
from tests.scenarios import save, wait


def judgment(ref_id, requisites, **options):
    return {"refId": ref_id, "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": list(requisites),
            "instructions": "Ship it?", "judgmentInputs": [{"value": "ship"}, {"value": "hold"}], **options}


def test_one_execution_posts_one_message_and_updates_it_in_place(workers, slack_api):
    workers.start(1, **receiver_env(slack_api))
    pipeline = save([wait("1", 0)], notifications=[
        notify("slack", "deploys", "pipeline.starting", "pipeline.complete", "pipeline.failed")])
    execution = do_start_execution(pipeline, user="alice")
    wait_for_execution(execution.id)
    wait_for_deliveries(execution, 2)

    posts, updates = slack_api.calls("/api/chat.postMessage"), slack_api.calls("/api/chat.update")
    assert (len(posts), len(updates)) == (1, 1)
    assert posts[0].headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    posted = posts[0].json
    assert posted["channel"] == "deploys"
    assert posted["text"].startswith("shop / deliver")
    assert [block["type"] for block in posted["blocks"]][:1] == ["section"]
    updated = updates[0].json
    assert (updated["channel"], updated["ts"]) == ("C0DEPLOYS", "1700.0001")
    assert updated["text"] == "shop / deliver succeeded"
    assert f"/executions/{execution.id}/|" in updated["blocks"][0]["text"]["text"]
    assert SlackMessage.objects.get(execution_id=execution.id).ts == "1700.0001"


def test_a_waiting_judgment_carries_a_button_per_input_and_the_decision_replaces_them(workers, slack_api):
    workers.start(1, **receiver_env(slack_api))
    approve = judgment("2", ["1"], sendNotifications=True, notifications=[
        notify("slack", "deploys", "manualJudgment", "manualJudgmentContinue")])
    execution = do_start_execution(save([wait("1", 0), approve]), user="alice")
    wait_for_stage(execution.id, "2", {Status.RUNNING})
    wait_for_deliveries(execution, 1)

    [post] = slack_api.calls("/api/chat.postMessage")
    actions = next(block for block in post.json["blocks"] if block["type"] == "actions")
    assert [button["text"]["text"] for button in actions["elements"]] == ["ship", "hold", "Stop"]
    assert "Ship it?" in str(post.json["blocks"])

    do_judge_stage(execution.id, "2", decision="continue", user="dave", judgment_input="ship")
    wait_for_execution(execution.id)
    wait_for_deliveries(execution, 2)
    [update] = slack_api.calls("/api/chat.update")
    assert "actions" not in [block["type"] for block in update.json["blocks"]]
    assert "*Approve* judged *continue* (ship) by dave" in str(update.json["blocks"])
