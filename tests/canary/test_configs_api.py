"""Canary configs over the API: a Kayenta config imports unchanged; problems come back at JSON pointers."""

from __future__ import annotations

import pytest

from apps.canary.models import CanaryConfig
from apps.canary.presets import HTTP_PRESET
from tests.scenarios import client_for, pointers

pytestmark = pytest.mark.django_db

URL = "/api/applications/shop/canary-configs/"

# A config as Kayenta's documentation writes one for Prometheus (canary-config JSON, exported from Deck).
KAYENTA_CONFIG = {
    "createdTimestamp": 1568145405286,
    "updatedTimestamp": 1568145405286,
    "createdTimestampIso": "2019-09-10T19:56:45.286Z",
    "updatedTimestampIso": "2019-09-10T19:56:45.286Z",
    "name": "shop-canary",
    "id": "d6d61a4e-0a27-4a8f-9b5e-ae1fb8e3c4d4",
    "description": "Errors and latency",
    "configVersion": "1",
    "applications": ["shop"],
    "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
    "metrics": [
        {
            "name": "Error rate",
            "query": {
                "type": "prometheus",
                "customInlineTemplate": "PromQL:sum(rate(http_requests_total{server_group=\"${scope}\","
                                        "code=~\"5..\"}[1m])) / sum(rate(http_requests_total{server_group="
                                        "\"${scope}\"}[1m]))",
                "serviceType": "prometheus",
            },
            "groups": ["Errors"],
            "analysisConfigurations": {"canary": {"direction": "increase", "critical": True, "nanStrategy": "replace",
                                                  "effectSize": {"allowedIncrease": 1.1, "criticalIncrease": 2}}},
            "scopeName": "default",
        },
        {
            "name": "Requests",
            "query": {"type": "prometheus", "serviceType": "prometheus", "metricName": "http_requests_total",
                      "labelBindings": ["code=\"200\""], "customFilterTemplate": "job", "sumByFields": []},
            "groups": ["Traffic"],
            "analysisConfigurations": {"canary": {"direction": "either",
                                                  "outliers": {"strategy": "remove", "outlierFactor": 3.0}}},
            "scopeName": "default",
        },
    ],
    "templates": {"job": "job=\"server-groups\""},
    "classifier": {"groupWeights": {"Errors": 60, "Traffic": 40}},
}


def test_a_kayenta_config_imports_unchanged_and_a_reader_reads_it(people):
    alice, bob = client_for(people["alice"]), client_for(people["bob"])

    created = alice.post(URL, KAYENTA_CONFIG, format="json")
    listed = bob.get(URL)
    detail = bob.get(f"/api/canary-configs/{created.json()['id']}/")

    assert created.status_code == 201, created.json()
    assert listed.status_code == 200 and [c["name"] for c in listed.json()] == ["shop-canary"]
    assert detail.json()["document"] == KAYENTA_CONFIG
    assert CanaryConfig.objects.get().document == KAYENTA_CONFIG


def test_a_reader_may_not_add_change_or_delete_a_config(people):
    alice, bob = client_for(people["alice"]), client_for(people["bob"])
    config_id = alice.post(URL, HTTP_PRESET, format="json").json()["id"]

    assert bob.post(URL, {**HTTP_PRESET, "name": "other"}, format="json").status_code == 403
    assert bob.put(f"/api/canary-configs/{config_id}/", HTTP_PRESET, format="json").status_code == 403
    assert bob.delete(f"/api/canary-configs/{config_id}/").status_code == 403
    assert alice.delete(f"/api/canary-configs/{config_id}/").status_code == 204


def test_problems_are_answered_at_json_pointers_and_nothing_is_saved(people):
    alice = client_for(people["alice"])
    broken = {
        "name": "broken",
        "judge": {"name": "DunnettsJudge"},
        "metrics": [
            {"name": "a", "query": {"type": "datadog", "metricName": "x"}},
            {"name": "b", "query": {"type": "prometheus", "customInlineTemplate": "sum(up)"},
             "analysisConfigurations": {"canary": {"direction": "up", "nanStrategy": "zero",
                                                   "effectSize": {"allowedIncrease": -1, "measure": "median"},
                                                   "outliers": {"strategy": "trim"}}}},
            {"name": "b", "query": {"type": "prometheus", "metricName": "up", "resourceType": "gce_instance",
                                    "labelBindings": ["not a matcher"], "customFilterTemplate": "missing"}},
        ],
        "classifier": {"groupWeights": {"Nowhere": 10, "Bad": "x"}},
    }

    answer = alice.post(URL, broken, format="json")

    assert answer.status_code == 400
    assert set(pointers(answer)) == {
        "/judge/name", "/metrics/0/query/type", "/metrics/1/query/customInlineTemplate",
        "/metrics/1/analysisConfigurations/canary/direction", "/metrics/1/analysisConfigurations/canary/nanStrategy",
        "/metrics/1/analysisConfigurations/canary/effectSize/allowedIncrease",
        "/metrics/1/analysisConfigurations/canary/effectSize/measure",
        "/metrics/1/analysisConfigurations/canary/outliers/strategy", "/metrics/2/name",
        "/metrics/2/query/resourceType", "/metrics/2/query/labelBindings/0", "/metrics/2/query/customFilterTemplate",
        "/classifier/groupWeights/Nowhere", "/classifier/groupWeights/Bad",
    }
    assert not CanaryConfig.objects.exists()
    assert pointers(alice.post(URL, [], format="json")) == [""]


def test_two_configs_of_an_application_may_not_share_a_name(people):
    alice = client_for(people["alice"])
    assert alice.post(URL, HTTP_PRESET, format="json").status_code == 201
    again = alice.post(URL, HTTP_PRESET, format="json")
    assert again.status_code == 400 and pointers(again) == ["/name"]
