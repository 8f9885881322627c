"""Canary lists cost the same number of queries whatever their length."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.canary.models import CanaryAnalysis
from apps.canary.presets import HTTP_PRESET
from apps.canary.services import do_save_account, do_save_config
from apps.pipelines.models import Application, StageExecution
from tests.scenarios import client_for, count_queries, save, start

pytestmark = pytest.mark.django_db
STAGE = {"refId": "1", "name": "Canary", "type": "kayentaCanary", "canaryConfig": {
    "canaryConfigId": "x", "lifetimeSeconds": 10, "scopes": [{"controlScope": "a", "experimentScope": "b"}]}}


def add(count: int, offset: int) -> None:
    shop = Application.objects.get(name="shop")
    pipeline = save([STAGE], name="canary")
    for index in range(offset, offset + count):
        do_save_account({"name": f"metrics-{index}", "url": "http://127.0.0.1:9090"}, actor="setup")
        do_save_config(shop, {**HTTP_PRESET, "name": f"config-{index}"}, actor="setup")
        stage = StageExecution.objects.get(execution=start(pipeline), ref_id="1")
        CanaryAnalysis.objects.create(stage=stage, application=shop, config_name=f"config-{index}")


@pytest.mark.parametrize("path", ["/api/canary-analyses/", "/api/prometheus-accounts/",
                                  "/api/applications/shop/canary-configs/"])
def test_an_api_list_costs_the_same_for_one_item_or_six(people, path):
    client = client_for(people["bob"] if "prometheus" not in path else people["root"])
    add(1, 0)
    few = count_queries(client, path)
    add(5, 1)
    assert count_queries(client, path) == few


def test_the_configs_page_costs_the_same_for_one_config_or_six(people):
    client = Client()
    client.force_login(people["bob"])
    add(1, 0)
    few = count_queries(client, "/applications/shop/canary-configs/")
    add(5, 1)
    assert count_queries(client, "/applications/shop/canary-configs/") == few
