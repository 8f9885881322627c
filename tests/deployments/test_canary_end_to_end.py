"""Automated canary analysis with real parts, end to end: a bad version is caught and destroyed, a good one promoted.

Production (``shop-web``, two instances of v1) runs on the machine's Docker
engine behind a real nginx load balancer. A client on 127.0.0.1 sends
requests through the load balancer for the whole run (bounded in count and
time). A real Prometheus scrapes every container of the test each second
(tests/deployments/prometheus.py), and the canary app judges the ready-made
HTTP preset with no editing. Two canary deploys run one after the other:

1. the bad version (every fifth request answered 500): its baseline and canary take 25% of
   the traffic each (enough requests for a steady latency on a busy machine), the first
   interval scores below ``marginal``, both are destroyed, and production is exactly as it
   was (same group, same containers);
2. the good version: it passes both intervals and is promoted red/black.

Throughout, every answer came from a live group: the only 5xx are the bad canary's own
500s, no request failed, and v1 was served without a gap until the good version took over.
The timings are printed and written to test-artifacts/canary-end-to-end.json.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps.canary.models import CanaryAnalysis
from apps.canary.presets import HTTP_PRESET
from apps.canary.services import do_save_config
from apps.deployments.models import Instance, ServerGroup
from apps.notifications.models import Delivery
from apps.notifications.services import do_create_subscription
from apps.pipelines.choices import Status
from apps.pipelines.models import Application
from tests.deployments.test_canary_strategy import cluster, everything_live
from tests.deployments.test_deploy import free_port, get, load_balancer, run
from tests.scenarios import stages_of

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MAX_REQUESTS = 20000
MAX_SECONDS = 480
# The longest stretch, in seconds, with no answer from v1 that the test allows before the good version is promoted.
MAX_GAP_SECONDS = 1.0


@dataclass
class Answer:
    at: float
    status: int
    body: str


@dataclass
class LoadLog:
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[Answer]:
        return [answer for answer in self.answers if start <= answer.at <= end]


class Load:
    """``with Load(port) as log:`` — ``clients`` threads each sending GET / through the load balancer every
    20 ms, a new connection each, until the block ends, MAX_REQUESTS are sent or MAX_SECONDS have passed."""

    def __init__(self, port: int, interval: float = 0.02, clients: int = 3):
        self.port, self.interval = port, interval
        self.log = LoadLog()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _one(self) -> None:
        # A slow answer is still an answer: on a machine busy with other work nginx may take seconds.
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request("GET", "/", headers={"Connection": "close"})
            response = connection.getresponse()
            self.log.answers.append(Answer(time.time(), response.status, response.read().decode().strip()))
        except OSError as error:
            self.log.errors.append(f"{time.time():.2f} {error!r}")
        finally:
            connection.close()

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline and \
                len(self.log.answers) + len(self.log.errors) < MAX_REQUESTS:
            started = time.monotonic()
            self._one()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> LoadLog:
        for thread in self._threads:
            thread.start()
        return self.log

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def canary_deploy(image: str) -> dict:
    """A deploy of ``image`` to shop-web with the canary strategy, judged by the HTTP preset in seconds."""
    config = {"canaryConfigId": HTTP_PRESET["name"], "metricsAccountName": "prometheus",
              "lifetimeSeconds": 20, "canaryAnalysisIntervalSeconds": 10, "beginCanaryAnalysisAfterSeconds": 2,
              "scoreThresholds": {"marginal": 50, "pass": 75}, "scopes": [{"scopeName": "default", "step": 1}]}
    return {"refId": "1", "name": "Deploy", "type": "deploy", "clusters": [
        cluster(image, "canary", canary={"trafficPercentage": 25, "capacity": 1, "canaryConfig": config})]}


def analysis_summary(stage) -> dict:
    """Each interval's score and, per metric, its classification, why, and the canary's and baseline's means."""
    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 6) if values else None

    def summary(metric: dict) -> dict:
        canary, baseline = metric.get("canary") or [], metric.get("baseline") or []
        return {"classification": metric["classification"], "reason": metric["reason"],
                "canary_mean": mean(canary), "baseline_mean": mean(baseline), "samples": [len(canary), len(baseline)]}

    report = CanaryAnalysis.objects.filter(stage=stage).first()
    return {"scores": stage.outputs.get("canaryScores"), "intervals": [
        {"score": interval["score"], "metrics": {metric["name"]: summary(metric) for metric in interval["metrics"]}}
        for interval in (report.intervals if report else [])]}


def longest_gap(answers: list[Answer], start: float, end: float) -> float:
    """The longest time between ``start`` and ``end`` with no answer in ``answers``."""
    moments = [start, *(answer.at for answer in answers if start <= answer.at <= end), end]
    return max(later - earlier for earlier, later in zip(moments, moments[1:], strict=False))


@pytest.fixture
def platform(workers, engine, load_balancer_dir, canary_images, prometheus):
    """A worker deploying with the test's labels, load balancers and Prometheus; the canary images by version."""
    workers.start(1, DOCKER_OWNER_LABEL=engine, LOAD_BALANCER_STATE_DIR=str(load_balancer_dir),
                  DOCKER_HEALTH_INTERVAL_SECONDS="1", LOAD_BALANCER_DRAIN_SECONDS="1",
                  SERVER_GROUP_RECONCILE_SECONDS="1", PROMETHEUS_URL=prometheus.url)
    yield canary_images
    # Before the engine's and the load balancers' fixtures clean up: its keeper would start them again.
    workers.stop()


def test_a_bad_version_is_destroyed_and_a_good_one_promoted_while_production_serves_throughout(platform):
    canary_images = platform
    timings: dict[str, float] = {}
    began = time.monotonic()
    port = free_port()
    first = run([load_balancer(port), {"refId": "1", "name": "Deploy", "type": "deploy", "requisiteStageRefIds": [
        "lb"], "clusters": [cluster(canary_images["v1"])]}], "first")
    assert first.status == Status.SUCCEEDED and get(port) == (200, "v1")
    shop = Application.objects.get(name="shop")
    do_save_config(shop, HTTP_PRESET, actor="ops")
    do_create_subscription(shop, {"type": "webhook", "address": "http://127.0.0.1:9/canary",
                                  "when": ["stage.failed", "stage.complete"]}, user="ops")
    production = set(Instance.objects.filter(server_group__name="shop-web-v000", ended_at=None)
                     .values_list("container_id", flat=True))
    timings["production deployed"] = time.monotonic() - began

    with Load(port) as load:
        time.sleep(1)
        bad_started = time.time()
        bad = run([canary_deploy(canary_images["bad"])], "canary-bad", timeout=240)
        bad_ended = time.time()
        timings["bad canary"] = bad_ended - bad_started
        after_bad = list(everything_live().items())
        good_started = time.time()
        good = run([canary_deploy(canary_images["good"])], "canary-good", timeout=240)
        good_ended = time.time()
        timings["good canary"] = good_ended - good_started
        time.sleep(1)
    timings["whole test"] = time.monotonic() - began

    bad_stages = stages_of(bad)
    bad_canary = next(stage for stage in bad_stages.values() if stage.type == "deployCanary")
    bad_analysis = next(stage for stage in bad_stages.values() if stage.type == "kayentaCanary")
    good_stages = stages_of(good)
    good_canary = next(stage for stage in good_stages.values() if stage.type == "deployCanary")
    good_analysis = next(stage for stage in good_stages.values() if stage.type == "kayentaCanary")
    answers = load.answers
    counts = {"requests": len(answers) + len(load.errors), "errors": len(load.errors),
              **{f"{status} {body}": len([a for a in answers if (a.status, a.body) == (status, body)])
                 for status, body in sorted({(a.status, a.body) for a in answers})}}
    report = {"timings_seconds": {key: round(value, 1) for key, value in timings.items()}, "requests": counts,
              "bad": analysis_summary(bad_analysis), "good": analysis_summary(good_analysis),
              # When answers other than the bad canary's own 500s came, in seconds after the bad canary began.
              "other_5xx_at": [round(a.at - bad_started, 1) for a in answers
                               if a.status >= 500 and (a.status, a.body) != (500, "v2-bad")][:50]}
    print(json.dumps(report, indent=2))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "canary-end-to-end.json").write_text(json.dumps(report, indent=2))

    # The bad version scored below marginal at its first interval, was destroyed, and production was left alone.
    assert bad.status == Status.TERMINAL, {s.name: s.context.get("exception") for s in bad_stages.values()}
    assert bad_analysis.status == Status.FAILED_CONTINUE
    assert bad_analysis.outputs["canaryScores"] == [0.0] and bad_analysis.outputs["lastScore"] < 50
    assert bad_analysis.outputs["classifications"]["http-error-rate"] == "High"
    assert "below marginal 50" in str(bad_canary.context["exception"])
    assert "production is as it was" in str(bad_canary.context["exception"])
    assert after_bad == [("shop-web-v000", True)]
    assert not ServerGroup.objects.filter(cluster__in=["shop-web-baseline", "shop-web-canary"], destroyed_at=None)
    # No production instance was touched by the canary: any that ended was replaced by the capacity keeper
    # (a health check a very busy machine answered too late), never removed or destroyed.
    ended = Instance.objects.filter(server_group__name="shop-web-v000", container_id__in=production,
                                    ended_at__isnull=False).exclude(ended_reason__startswith="replaced")
    assert list(ended.values_list("ended_reason", flat=True)) == []

    # The good version passed both intervals and was promoted red/black.
    assert good.status == Status.SUCCEEDED, {s.name: s.context.get("exception") for s in good_stages.values()}
    assert good_analysis.outputs["canaryResult"] == "PASS" and len(good_analysis.outputs["canaryScores"]) == 2
    assert good_canary.outputs["deploy.server.groups"] == {"local": ["shop-web-v001"]}
    assert everything_live() == {"shop-web-v000": False, "shop-web-v001": True}
    assert ServerGroup.objects.get(name="shop-web-v001").image == canary_images["good"]
    assert get(port) == (200, "v2-good")

    # Every request was answered by a live group: no failure, and the only 5xx are the bad canary's own.
    assert load.errors == [], load.errors[:5]
    assert {(a.status, a.body) for a in answers if a.status >= 500} == {(500, "v2-bad")}
    assert {a.body for a in answers if a.status < 500} == {"v1", "v2-bad", "v2-good"}
    during_bad = load.between(bad_started, bad_ended)
    assert 0 < len([a for a in during_bad if a.status == 500]) < len(during_bad) * 0.2
    # v1 (production, and the baseline beside it) was served all along until the good version was promoted.
    v1 = [a for a in answers if a.body == "v1"]
    promoted = ServerGroup.objects.get(name="shop-web-v000").disabled_at.timestamp()
    assert bad_started < promoted < good_ended
    assert longest_gap(v1, bad_started, promoted) <= MAX_GAP_SECONDS
    assert all(a.body == "v1" for a in load.between(bad_ended + 0.5, good_started))

    # Notifications relay each canary's verdict (an application subscription to stage moments).
    deadline = time.monotonic() + 60  # the notifications consumer reads the event log on its own schedule
    while True:
        moments = dict(Delivery.objects.filter(stage_id__in=[bad_canary.id, good_canary.id]).values_list(
            "stage_id", "moment"))
        if len(moments) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert moments == {bad_canary.id: "stage.failed", good_canary.id: "stage.complete"}
    assert timings["whole test"] < 600
