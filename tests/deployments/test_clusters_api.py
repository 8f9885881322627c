"""The clusters API: what an application runs, in a constant number of queries, only to its readers."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.accounts.services import do_grant
from apps.deployments.models import Instance, LoadBalancer, ServerGroup
from apps.deployments.services.accounts import local_docker_account
from apps.pipelines.models import Application
from tests.scenarios import count_queries

pytestmark = pytest.mark.django_db


def make_groups(application, count: int, cluster: str = "shop-web") -> None:
    account = local_docker_account()
    for version in range(count):
        group = ServerGroup.objects.create(
            application=application, account=account, cluster=cluster, name=f"{cluster}-v{version:03d}",
            version=version, image=f"shop/web:{version}", desired=2, enabled=version == count - 1,
            load_balancers=["shop-web"], spec={"containerPort": 8080})
        for index in range(2):
            Instance.objects.create(server_group=group, container_id=uuid.uuid4().hex, name=f"{group.name}-{index}",
                                    host_port=30000 + version * 2 + index, health="UP" if group.enabled else
                                    "OUT_OF_SERVICE")


def test_the_clusters_of_an_application_with_their_groups_instances_and_load_balancers():
    shop = Application.objects.create(name="shop")
    make_groups(shop, 2)
    LoadBalancer.objects.create(application=shop, account=local_docker_account(), name="shop-web",
                                listeners=[{"externalPort": 8081}], targets=["127.0.0.1:30002", "127.0.0.1:30003"])
    bob = User.objects.create_user("bob")
    do_grant(shop, bob, "read", actor="ops")
    client = APIClient()
    client.force_login(bob)

    body = client.get("/api/applications/shop/clusters/").json()

    [web] = body["clusters"]
    assert (web["name"], web["account"]) == ("shop-web", "local")
    assert [(g["name"], g["enabled"], [i["health"] for i in g["instances"]]) for g in web["serverGroups"]] == [
        ("shop-web-v001", True, ["UP", "UP"]), ("shop-web-v000", False, ["OUT_OF_SERVICE", "OUT_OF_SERVICE"])]
    assert body["loadBalancers"][0]["targets"] == ["127.0.0.1:30002", "127.0.0.1:30003"]


def test_the_clusters_page_of_the_api_takes_the_same_queries_for_one_group_or_ten():
    root = User.objects.create_superuser("root")
    client = APIClient()
    client.force_login(root)
    small, large = Application.objects.create(name="small"), Application.objects.create(name="large")
    make_groups(small, 1, "small-web")
    make_groups(large, 10, "large-web")

    assert count_queries(client, "/api/applications/small/clusters/") == count_queries(
        client, "/api/applications/large/clusters/")
