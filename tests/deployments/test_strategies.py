"""Rolling red/black in steps, red/black's maxRemainingAsgs and scaleDown, a PREVIOUS_IMAGE rollback and a resize
down — against the real engine and nginx, with a client sending a request every 20 ms to the load balancer."""

from __future__ import annotations

import time

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.deployments.models import ServerGroup
from apps.pipelines.choices import Status
from tests.deployments.test_deploy import deploy, first_deploy, get, live, platform, run  # noqa: F401
from tests.deployments.traffic import SteadyClient
from tests.scenarios import stages_of


def test_rolling_red_black_moves_traffic_in_its_steps_without_one_failure(platform):  # noqa: F811
    first_deploy(platform)

    with SteadyClient(platform["port"]) as traffic:
        time.sleep(0.3)
        finished = run([deploy(platform["images"]["v2"], "rollingredblack", targetPercentages=[50, 100])])
        time.sleep(0.5)

    assert finished.status == Status.SUCCEEDED, {r: s.context.get("exception") for r, s in stages_of(finished).items()}
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.versions_in_order() == ["v1", "v2"] and traffic.answers[-5:] == ["v2"] * 5
    steps = sorted(float(s.context["percentage"]) for s in stages_of(finished).values()
                   if s.type == "rollingRedBlackStep")
    assert steps == [50.0, 100.0]
    assert live() == {"shop-web-v000": False, "shop-web-v001": True}


def test_red_black_keeps_max_remaining_asgs_and_scales_the_disabled_ones_down(platform):  # noqa: F811
    first_deploy(platform)
    for image in ("v2", "v1"):
        finished = run([deploy(platform["images"][image], maxRemainingAsgs=2, scaleDown=True)])
        assert finished.status == Status.SUCCEEDED, {r: s.context.get("exception")
                                                     for r, s in stages_of(finished).items()}

    assert live() == {"shop-web-v001": False, "shop-web-v002": True}
    older = ServerGroup.objects.get(name="shop-web-v001")
    assert older.desired == 0 and older.instances.filter(ended_at=None).count() == 0
    assert ServerGroup.objects.get(name="shop-web-v000").destroyed_at is not None
    assert get(platform["port"]) == (200, "v1")


def test_a_previous_image_rollback_puts_the_older_image_back_in_traffic(platform):  # noqa: F811
    first_deploy(platform)
    assert run([deploy(platform["images"]["v2"])]).status == Status.SUCCEEDED

    with SteadyClient(platform["port"]) as traffic:
        time.sleep(0.3)
        finished = run([{"refId": "1", "name": "Roll back", "type": "rollbackServerGroup", "account": "local",
                         "cluster": "shop-web", "rollbackType": "PREVIOUS_IMAGE"}], "rollback")
        time.sleep(0.5)

    assert finished.status == Status.SUCCEEDED
    assert stages_of(finished)["1"].outputs["restoredServerGroup"] == "shop-web-v000"
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.answers[0] == "v2" and traffic.answers[-5:] == ["v1"] * 5
    assert live() == {"shop-web-v000": True, "shop-web-v001": False}


def test_a_resize_down_drains_the_instances_it_removes_before_stopping_them(platform, settings):  # noqa: F811
    settings.LOAD_BALANCER_DRAIN_SECONDS = 1
    first_deploy(platform)
    root = APIClient()
    root.force_login(User.objects.create_superuser("root"))
    path = "/api/applications/shop/server-groups/local/shop-web-v000/resize/"
    assert root.post(path, {"capacity": {"desired": 4}}, format="json").status_code == 200

    with SteadyClient(platform["port"]) as traffic:
        time.sleep(0.5)
        started = time.monotonic()
        assert root.post(path, {"capacity": {"desired": 1}}, format="json").status_code == 200
        took = time.monotonic() - started
        time.sleep(0.5)

    assert traffic.failures == [], traffic.failures[:5]
    assert took >= 1, "the removed instances were stopped without draining"
    group = ServerGroup.objects.get(name="shop-web-v000")
    assert group.instances.filter(ended_at=None).count() == 1
    assert group.instances.filter(ended_reason="removed by a resize").count() >= 3
