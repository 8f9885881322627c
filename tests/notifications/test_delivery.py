"""Notifications reach real receivers on 127.0.0.1, once each, retried when a target fails, never slowing a pipeline."""

from __future__ import annotations

import time

import pytest

from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import Delivery
from apps.pipelines.choices import Status
from apps.pipelines.services import do_start_execution
from tests.conftest import wait_for_execution
from tests.hookserver import Reply
from tests.notifications.conftest import receiver_env
from tests.scenarios import failing, save, wait


def wait_for_deliveries(execution, count: int, statuses=(DeliveryStatus.DELIVERED, DeliveryStatus.FAILED),
                        timeout: float = 30.0) -> list[Delivery]:
    """Poll until the execution has ``count`` deliveries in ``statuses``; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(Delivery.objects.filter(execution_id=execution.id, status__in=statuses).order_by("id"))
        if len(rows) >= count:
            return rows
        if time.monotonic() > deadline:
            seen = list(Delivery.objects.filter(execution_id=execution.id).values_list("moment", "status",
                                                                                      "last_error"))
            pytest.fail(f"{len(rows)} of {count} deliveries done after {timeout} s: {seen}")
        time.sleep(0.1)


def notify(kind: str, address: str, *when: str, **extra) -> dict:
    return {"type": kind, "address": address, "level": "pipeline", "when": list(when), **extra}


def test_an_email_reaches_the_smtp_server_with_the_subject_and_the_link(workers, smtp_server):
    workers.start(1, **receiver_env(smtp=smtp_server, PUBLIC_URL="https://cd.example.com"))
    pipeline = save([failing("1")], notifications=[
        notify("email", "ops@example.com, lead@example.com", "pipeline.failed", "pipeline.complete")])
    execution = do_start_execution(pipeline, user="alice")
    wait_for_execution(execution.id)
    wait_for_deliveries(execution, 1)

    _, inbox = smtp_server
    assert len(inbox.messages) == 1
    sender, recipients, message = inbox.messages[0]
    assert recipients == ["ops@example.com", "lead@example.com"]
    assert message["Subject"] == "shop / deliver failed"
    body = message.get_content()
    assert f"https://cd.example.com/executions/{execution.id}/" in body
    assert "Failed stage: Check 1" in body
    assert "Trigger: manual, by alice" in body


def test_a_generic_webhook_receives_the_documented_body_once_per_event(workers, hook_server):
    workers.start(1, **receiver_env(hook_server))
    hook_server.script("/events", Reply(200, {}))
    pipeline = save([wait("1", 0)], notifications=[
        notify("webhook", hook_server.url("/events"), "pipeline.starting", "pipeline.complete")])
    execution = do_start_execution(pipeline, user="alice")
    wait_for_execution(execution.id)
    deliveries = wait_for_deliveries(execution, 2)

    calls = hook_server.calls("/events", "POST")
    assert sorted(call.json["event"] for call in calls) == ["pipeline.complete", "pipeline.starting"]
    body = next(call.json for call in calls if call.json["event"] == "pipeline.complete")
    assert body["application"] == "shop" and body["pipeline"] == "deliver"
    assert body["execution"]["id"] == str(execution.id)
    assert body["execution"]["status"] == Status.SUCCEEDED
    assert body["execution"]["url"].endswith(f"/executions/{execution.id}/")
    assert {call.headers["idempotency-key"] for call in calls} == {d.key for d in deliveries}


def test_a_receiver_that_fails_twice_then_succeeds_leaves_three_attempts_and_one_message(workers, hook_server):
    workers.start(1, **receiver_env(hook_server))
    hook_server.script("/flaky", Reply(503, {}), Reply(502, {}), Reply(200, {}))
    pipeline = save([wait("1", 0)], notifications=[notify("webhook", hook_server.url("/flaky"), "pipeline.complete")])
    execution = do_start_execution(pipeline, user="alice")
    wait_for_execution(execution.id)
    [delivery] = wait_for_deliveries(execution, 1)

    assert delivery.status == DeliveryStatus.DELIVERED
    attempts = list(delivery.attempt_rows.values_list("number", "succeeded"))
    assert attempts == [(1, False), (2, False), (3, True)]
    assert [call.path for call in hook_server.calls("/flaky")] == ["/flaky"] * 3
    assert "503" in delivery.attempt_rows.get(number=1).error


def test_a_pipeline_whose_every_target_is_down_still_succeeds(workers, down_url):
    workers.start(1, **receiver_env(EMAIL_HOST="127.0.0.1", EMAIL_PORT=down_url.split(":")[2].split("/")[0],
                                    SLACK_API_URL=down_url.rsplit("/", 1)[0] + "/api/",
                                    NOTIFICATION_MAX_ATTEMPTS="2"))
    when = ("pipeline.starting", "pipeline.complete")
    pipeline = save([wait("1", 0)], notifications=[
        notify("webhook", down_url, *when), notify("email", "ops@example.com", *when),
        notify("slack", "deploys", *when), notify("microsoftteams", down_url, *when),
        notify("googlechat", down_url, *when)])
    execution = do_start_execution(pipeline, user="alice")

    assert wait_for_execution(execution.id).status == Status.SUCCEEDED
    deliveries = wait_for_deliveries(execution, 10, statuses=(DeliveryStatus.FAILED,))
    assert {d.target_type for d in deliveries} == {"webhook", "email", "slack", "microsoftteams", "googlechat"}
    assert all(d.attempts == 2 and d.last_error for d in deliveries)
