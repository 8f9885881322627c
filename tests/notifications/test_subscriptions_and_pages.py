"""Application subscriptions, secret addresses, validation at save, and where operators read deliveries."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.test import Client

from apps.notifications.models import Delivery, DeliveryAttempt, SlackLink, Subscription
from apps.pipelines.models import Application
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution
from tests.hookserver import Reply
from tests.notifications.conftest import receiver_env
from tests.notifications.test_delivery import notify, wait_for_deliveries
from tests.scenarios import client_for, count_queries, save, wait


def test_an_application_subscription_and_a_secret_address_reach_their_targets_unseen(workers, hook_server, people):
    workers.start(1, **receiver_env(hook_server))
    hook_server.script("/app-hook", Reply(200, {}))
    hook_server.script("/secret-hook", Reply(200, {}))
    created = client_for(people["alice"]).post("/api/applications/shop/notifications/", {
        "type": "webhook", "address": hook_server.url("/app-hook"), "when": ["pipeline.complete"]}, format="json")
    assert created.status_code == 201, created.content
    assert "address" not in created.json() and created.json()["address_hint"].endswith("/…")
    do_set_secret(Application.objects.get(name="shop"), "hook-url", hook_server.url("/secret-hook"), user="alice")
    pipeline = save([wait("1", 0)], notifications=[
        notify("webhook", "${#secret('hook-url')}", "pipeline.complete")])

    execution = do_start_execution(pipeline, user="alice")
    wait_for_execution(execution.id)
    deliveries = wait_for_deliveries(execution, 2)

    assert {d.source for d in deliveries} == {"application", "pipeline"}
    assert len(hook_server.calls("/app-hook")) == len(hook_server.calls("/secret-hook")) == 1
    shown = " ".join(str(d.target) + d.target_hint for d in deliveries)
    assert "/app-hook" not in shown and "/secret-hook" not in shown
    listed = client_for(people["bob"]).get(f"/api/notification-deliveries/?execution={execution.id}").json()
    assert {(row["status"], row["attempt_log"][0]["succeeded"]) for row in listed["results"]} == {("DELIVERED", True)}


@pytest.mark.django_db
def test_a_notification_of_a_kind_sent_here_is_checked_at_save_with_pointers():
    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline({"application": "shop", "name": "bad", "stages": [wait("1", 0)], "notifications": [
            {"type": "slack", "when": ["pipeline.finished"]},
            {"type": "microsoftteams", "address": "teams.example.com/hook", "when": ["pipeline.failed"]},
            {"type": "sms", "address": "+15550100", "when": ["pipeline.failed"]},
        ]})

    assert [(p.pointer, p.message.split(" (")[0].split(":")[0]) for p in refused.value.problems] == [
        ("/notifications/0/address", "is required"),
        ("/notifications/0/when/0", "is not one of pipeline.starting, pipeline.complete, pipeline.failed, "
                                    "stage.starting, stage.complete, stage.failed, manualJudgment, "
                                    "manualJudgmentContinue, manualJudgmentStop"),
        ("/notifications/1/address", "must be an http or https URL"),
    ]


@pytest.mark.django_db
def test_the_subscription_api_refuses_a_bad_subscription_naming_the_field(people):
    response = client_for(people["alice"]).post("/api/applications/shop/notifications/", {
        "type": "googlechat", "address": "not-a-url", "when": ["pipeline.failed"]}, format="json")

    assert response.status_code == 400
    assert [error["pointer"] for error in response.json()["errors"]] == ["/address"]
    assert not Subscription.objects.exists()


def make_deliveries(execution, count: int) -> None:
    for index in range(count):
        delivery = Delivery.objects.create(
            key=uuid.uuid4().hex, event_id=index, moment="pipeline.failed", application=execution.application,
            execution_id=execution.id, target_type="email", target={"type": "email"}, target_hint="ops@example.com",
            source="pipeline", status="FAILED", attempts=1, last_error="connection refused")
        DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=delivery.created_at,
                                       finished_at=delivery.created_at, succeeded=False, error="connection refused")


@pytest.mark.django_db
def test_deliveries_list_and_page_cost_the_same_queries_for_any_number_of_rows(people, shop, blog):
    execution = do_start_execution(shop, parameters={"env": "prod"}, user="alice")
    make_deliveries(execution, 2)
    api, web = client_for(people["bob"]), Client()
    web.force_login(people["bob"])
    few = (count_queries(api, "/api/notification-deliveries/"), count_queries(web, "/notifications/"))
    make_deliveries(execution, 20)
    make_deliveries(do_start_execution(blog, user="alice"), 3)

    assert (count_queries(api, "/api/notification-deliveries/"), count_queries(web, "/notifications/")) == few
    assert len(api.get("/api/notification-deliveries/").json()["results"]) == 22
    outsider = Client()
    outsider.force_login(people["charlie"])
    html = outsider.get("/notifications/").content.decode()
    assert html.count("data-delivery-id") == 3 and "connection refused" in html


@pytest.mark.django_db
def test_an_operator_links_a_slack_user_from_the_command_line(people):
    call_command("slack", "link", "dave", "U0DAVE")

    assert SlackLink.objects.get(slack_user_id="U0DAVE").user == people["dave"]


@pytest.mark.django_db
def test_old_final_deliveries_and_requests_are_pruned_and_recent_or_pending_ones_kept(people, shop, settings):
    from datetime import timedelta

    from django.utils import timezone

    from apps.notifications.models import ChatRequest
    from apps.notifications.retention import prune

    execution = do_start_execution(shop, parameters={"env": "prod"}, user="alice")
    make_deliveries(execution, 3)
    old = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS + 1)
    first, second, _ = Delivery.objects.order_by("id")
    Delivery.objects.filter(pk=first.pk).update(created_at=old)
    Delivery.objects.filter(pk=second.pk).update(created_at=old, status="PENDING")
    ChatRequest.objects.create(endpoint="commands", outcome="forged", reason="x", created_at=old)

    prune()

    assert set(Delivery.objects.values_list("pk", flat=True)) == {second.pk, _.pk}
    assert not ChatRequest.objects.exists()
