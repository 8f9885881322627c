"""Server group actions and traffic guards from the API and the clusters page: permissions, refusals (409),
audit, constant queries, and — against the real engine and load balancer — what each action does to traffic."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_grant
from apps.deployments.models import InstanceHealth, ServerGroup, TrafficGuard
from apps.deployments.providers.docker import list_containers
from apps.deployments.providers.engines import engine_client
from apps.deployments.services.accounts import local_docker_account
from apps.deployments.services.server_groups import (
    apply_load_balancers,
    changing,
    do_destroy,
    do_set_traffic,
    keep_capacity,
)
from apps.pipelines.models import Application
from tests.deployments.test_clusters_api import make_groups
from tests.deployments.test_deploy import deploy, first_deploy, get, live, platform, run  # noqa: F401
from tests.deployments.traffic import SteadyClient
from tests.scenarios import count_queries

ACTION = "/api/applications/shop/server-groups/local/{group}/{action}/"


def person(name: str, *, app_actions=(), account_actions=()) -> APIClient:
    user = User.objects.create_user(name)
    shop = Application.objects.get(name="shop")
    for action in app_actions:
        do_grant(shop, user, action, actor="ops")
    for action in account_actions:
        do_grant(local_docker_account(), user, action, actor="ops")
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_an_action_needs_execute_on_the_application_and_deploy_on_the_account():
    make_groups(Application.objects.create(name="shop"), 2)
    reader = person("bob", app_actions=["read"], account_actions=["deploy"])
    executor = person("erin", app_actions=["execute"], account_actions=["read"])
    stranger = person("zoe")

    assert stranger.post(ACTION.format(group="shop-web-v001", action="disable")).status_code == 404
    refused = reader.post(ACTION.format(group="shop-web-v001", action="disable"))
    assert refused.status_code == 403 and refused.json()["errors"][0]["pointer"] == "/application"
    refused = executor.post(ACTION.format(group="shop-web-v001", action="disable"))
    assert refused.status_code == 403 and refused.json()["errors"][0]["pointer"] == "/account"
    assert ServerGroup.objects.get(name="shop-web-v001").enabled
    assert not AuditEvent.objects.filter(action__startswith="server_group.").exists()


@pytest.mark.django_db
def test_refusals_are_409_naming_the_reason_and_bad_bodies_400_naming_the_field():
    shop = Application.objects.create(name="shop")
    make_groups(shop, 1)
    TrafficGuard.objects.create(application=shop, account=local_docker_account(), cluster="shop-web")
    root = APIClient()
    root.force_login(User.objects.create_superuser("root"))

    for action, body in (("disable", {}), ("destroy", {}), ("resize", {"capacity": {"desired": 0}})):
        refused = root.post(ACTION.format(group="shop-web-v000", action=action), body, format="json")
        assert refused.status_code == 409, (action, refused.content)
        assert "traffic guard" in refused.json()["errors"][0]["message"]
    refused = root.post(ACTION.format(group="shop-web-v000", action="rollback"))
    assert refused.status_code == 409 and "no older server group" in refused.json()["errors"][0]["message"]
    bad = root.post(ACTION.format(group="shop-web-v000", action="resize"), {"capacity": {"desired": 101}},
                    format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/capacity/desired"
    bad = root.post(ACTION.format(group="shop-web-v000", action="resize"), {}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/capacity/desired"
    assert root.post(ACTION.format(group="shop-web-v000", action="explode")).status_code == 404
    assert root.post(ACTION.format(group="shop-web-v999", action="enable")).status_code == 404
    assert ServerGroup.objects.get(name="shop-web-v000").enabled


@pytest.mark.django_db
def test_traffic_guards_are_read_by_readers_and_changed_by_writers_in_spinnakers_shape():
    Application.objects.create(name="shop")
    local_docker_account()
    reader = person("bob", app_actions=["read"])
    writer = person("erin", app_actions=["write"])

    assert reader.post("/api/applications/shop/traffic-guards/", {"account": "local", "stack": "web"}).status_code \
        == 403
    added = writer.post("/api/applications/shop/traffic-guards/", {"account": "local", "stack": "web",
                                                                   "location": "here"}, format="json")
    assert added.status_code == 201
    assert reader.get("/api/applications/shop/traffic-guards/").json() == [
        {"account": "local", "location": "", "stack": "web", "detail": "", "cluster": "shop-web"}]
    bad = writer.post("/api/applications/shop/traffic-guards/", {"account": "nowhere"}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/account"
    bad = writer.post("/api/applications/shop/traffic-guards/", {"account": "local", "cluster": "blog-web"},
                      format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/cluster"
    assert reader.delete("/api/applications/shop/traffic-guards/local/shop-web/").status_code == 403
    assert writer.delete("/api/applications/shop/traffic-guards/local/shop-web/").status_code == 204
    assert writer.delete("/api/applications/shop/traffic-guards/local/shop-web/").status_code == 404
    assert list(AuditEvent.objects.filter(action__startswith="traffic_guard.").values_list("action", flat=True)
                .order_by("id")) == ["traffic_guard.added", "traffic_guard.removed"]


@pytest.mark.django_db
def test_the_clusters_page_takes_the_same_queries_for_one_group_or_ten_and_offers_actions_to_deployers():
    small, large = Application.objects.create(name="small"), Application.objects.create(name="large")
    make_groups(small, 1, "small-web")
    make_groups(large, 10, "large-web")
    TrafficGuard.objects.create(application=large, account=local_docker_account(), cluster="large-web")
    root = Client()
    root.force_login(User.objects.create_superuser("root"))
    assert count_queries(root, "/applications/small/clusters/") == count_queries(root, "/applications/large/clusters/")

    page = root.get("/applications/large/clusters/").content.decode()
    assert page.count('data-server-group="') == 10 and page.count('data-health="UP"') == 2
    assert 'data-action="rollback"' in page and 'data-guard="local/large-web"' in page
    reader = Client()
    user = User.objects.create_user("bob")
    do_grant(large, user, "read", actor="ops")
    reader.force_login(user)
    page = reader.get("/applications/large/clusters/").content.decode()
    assert page.count('data-server-group="') == 10 and "data-action=" not in page
    assert reader.post("/applications/large/clusters/local/large-web-v009/disable/").status_code == 403
    refused = root.post("/applications/large/clusters/local/large-web-v009/disable/")
    assert refused.status_code == 409 and "traffic guard" in refused.content.decode()


def test_disable_enable_rollback_resize_and_destroy_move_traffic_without_a_failed_request(platform):  # noqa: F811
    first_deploy(platform)
    assert run([deploy(platform["images"]["v2"])]).status == "SUCCEEDED"
    assert live() == {"shop-web-v000": False, "shop-web-v001": True}
    root = APIClient()
    root.force_login(User.objects.create_superuser("root"))

    def act(group: str, action: str, body: dict | None = None) -> dict:
        response = root.post(ACTION.format(group=group, action=action), body or {}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    with SteadyClient(platform["port"]) as traffic:
        time.sleep(0.3)
        assert act("shop-web-v001", "rollback")["details"]["restored"] == "shop-web-v000"
        time.sleep(0.5)
        act("shop-web-v001", "enable")
        act("shop-web-v000", "disable")
        time.sleep(0.5)
        act("shop-web-v001", "resize", {"capacity": {"desired": 3}})
        act("shop-web-v001", "resize", {"capacity": {"desired": 1}})
        act("shop-web-v000", "destroy")
        time.sleep(0.5)

    assert traffic.failures == [], traffic.failures[:5]
    # v2, then v1 after the rollback (both serve while one takes over from the other), then v2 only.
    assert traffic.answers[0] == "v2" and "v1" in traffic.answers and traffic.answers[-5:] == ["v2"] * 5
    assert live() == {"shop-web-v001": True}
    assert ServerGroup.objects.get(name="shop-web-v001").instances.filter(ended_at=None).count() == 1
    assert get(platform["port"]) == (200, "v2")
    assert list(AuditEvent.objects.filter(action__startswith="server_group.").values_list("action", flat=True)
                .order_by("id")) == ["server_group.rollback", "server_group.enable", "server_group.disable",
                                     "server_group.resize", "server_group.resize", "server_group.destroy"]


def test_the_keeper_working_from_a_stale_copy_neither_drops_an_enabled_group_nor_revives_a_destroyed_one(
        platform):  # noqa: F811
    first_deploy(platform)
    assert run([deploy(platform["images"]["v2"])]).status == "SUCCEEDED"
    # What the periodic keeper read at the start of its round, before a person rolled back.
    stale_old, stale_new = (ServerGroup.objects.get(name=name) for name in ("shop-web-v000", "shop-web-v001"))
    do_set_traffic(ServerGroup.objects.get(name="shop-web-v000"), enabled=True)
    do_set_traffic(ServerGroup.objects.get(name="shop-web-v001"), enabled=False)
    do_destroy(ServerGroup.objects.get(name="shop-web-v001"))

    keep_capacity(stale_old)
    keep_capacity(stale_new)
    apply_load_balancers(stale_old)

    assert get(platform["port"]) == (200, "v1")
    assert set(ServerGroup.objects.get(name="shop-web-v000").instances.filter(ended_at=None)
               .values_list("health", flat=True)) == {InstanceHealth.UP}
    assert not ServerGroup.objects.get(name="shop-web-v001").instances.filter(ended_at=None).exists()
    with engine_client(local_docker_account()) as client:
        assert list_containers(client, server_group="shop-web-v001") == []


def test_the_keeper_leaves_a_group_another_change_holds_for_its_next_round(platform):  # noqa: F811
    first_deploy(platform)
    group = ServerGroup.objects.get(name="shop-web-v000")
    answers: list = []

    def keeper_round() -> None:
        try:
            answers.append(keep_capacity(ServerGroup.objects.get(pk=group.pk)))
        finally:
            connection.close()

    with changing(group):
        # As a resize does, under the group's lock, before it starts containers: changed outside it, the
        # worker's own keeper (every second) could start the third container before this test held the lock.
        ServerGroup.objects.filter(pk=group.pk).update(desired=3)
        keeper = threading.Thread(target=keeper_round)
        keeper.start()
        keeper.join(timeout=10)
        assert answers == [[]]
        assert group.instances.filter(ended_at=None).count() == 2
    keep_capacity(ServerGroup.objects.get(pk=group.pk))
    assert group.instances.filter(ended_at=None).count() == 3
