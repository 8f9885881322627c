"""The canary report: the API answers an analysis to its application's readers; the stage panel draws it."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.canary.documents import metric_settings
from apps.canary.judge import judge
from apps.canary.models import CanaryAnalysis
from apps.canary.presets import HTTP_PRESET
from apps.pipelines.models import StageExecution
from tests.scenarios import client_for, save, start

pytestmark = pytest.mark.django_db

STAGE = {"refId": "1", "name": "Canary", "type": "kayentaCanary", "canaryConfig": {
    "canaryConfigId": "http-error-rate-and-latency", "lifetimeSeconds": 20, "canaryAnalysisIntervalSeconds": 10,
    "scoreThresholds": {"marginal": 50, "pass": 75},
    "scopes": [{"controlScope": "shop-v001", "experimentScope": "shop-v002"}]}}


def analysed_stage() -> StageExecution:
    execution = start(save([STAGE], name="canary"))
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    metrics = [{"name": m["name"], "groups": m["groups"], "settings": metric_settings(m)}
               for m in HTTP_PRESET["metrics"]]
    verdict = judge(metrics, {"http-error-rate": ([0.2, 0.21, 0.19, 0.2, 0.22], [0.0, 0.01, 0.0, 0.0, 0.02]),
                              "http-latency-mean": ([0.01] * 5, [0.01] * 5)}, {"Errors": 70, "Latency": 30})
    CanaryAnalysis.objects.create(stage=stage, application=execution.application, config_name="preset",
                                  intervals=[{**verdict, "interval": 1}], status="TERMINAL", score=verdict["score"])
    return stage


def test_readers_get_the_report_and_outsiders_a_404(people):
    stage = analysed_stage()
    analysis = CanaryAnalysis.objects.get(stage=stage)

    answer = client_for(people["bob"]).get(f"/api/canary-analyses/{analysis.id}/")
    hidden = client_for(people["charlie"]).get(f"/api/canary-analyses/{analysis.id}/")

    assert answer.status_code == 200 and hidden.status_code == 404
    interval = answer.json()["intervals"][0]
    errors = next(m for m in interval["metrics"] if m["name"] == "http-error-rate")
    assert interval["score"] == 0 and errors["classification"] == "High" and errors["critical"]
    assert errors["canary"] == [0.2, 0.21, 0.19, 0.2, 0.22] and errors["test"]["u"] == 25
    assert "above" in errors["reason"]


def test_the_stage_panel_draws_the_scores_and_each_metrics_samples(people):
    stage = analysed_stage()
    client = Client()
    client.force_login(people["bob"])

    page = client.get(f"/executions/{stage.execution_id}/stages/{stage.id}/")

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="canary-report"' in html and "Score per interval" in html
    assert html.count('class="canary-line"') == 2 and html.count('class="baseline-line"') == 2
    assert 'data-status="TERMINAL"' in html  # the one interval scored 0, below marginal
    assert "http-error-rate" in html and "(critical)" in html


def test_an_interval_is_recorded_once_and_only_the_last_keeps_its_samples(people):
    from apps.canary.stage import KayentaCanaryStage

    stage = analysed_stage()
    analysis = CanaryAnalysis.objects.get(stage=stage)
    CanaryAnalysis.objects.filter(pk=analysis.pk).update(status="RUNNING")
    second = dict(analysis.intervals[0], score=100.0)
    kind = KayentaCanaryStage()

    again = kind._decide(analysis, dict(second), 1, 2, 50, 75, 0, 10)  # interval 1 is there already
    recorded = kind._decide(analysis, dict(second), 2, 2, 50, 75, 0, 20)

    analysis.refresh_from_db()
    assert again.status == "RUNNING" and again.retry_after == 0
    assert recorded.status == "SUCCEEDED" and recorded.outputs["canaryScores"] == [0.0, 100.0]
    assert analysis.status == "SUCCEEDED" and len(analysis.intervals) == 2
    first = analysis.intervals[0]["metrics"][0]
    assert first["canary"] == [] and first["samplesKept"] is False
    assert analysis.intervals[1]["metrics"][0]["canary"] == [0.2, 0.21, 0.19, 0.2, 0.22]
