"""The kayentaCanary stage against a real Prometheus scraping real exporters, run by a real worker.

Two exporters on 127.0.0.1 (threads of the test) count requests as a web server would: the baseline
``shop-v001`` and the good canary ``shop-v003`` answer every request 200, the bad canary
``shop-v002`` every fifth 500. Prometheus (Debian's) scrapes them every second, each with its
``server_group`` label, and the stage judges the ready-made HTTP preset: the bad canary's error rate
is High and critical, so its first interval scores 0 and the stage fails at once; the good one
passes both intervals.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.canary.models import CanaryAnalysis
from apps.canary.presets import HTTP_PRESET
from apps.canary.services import do_save_config
from apps.pipelines.choices import Status
from apps.pipelines.models import Application
from apps.pipelines.services import do_start_execution
from tests.conftest import missing_service, wait_for_execution
from tests.scenarios import save, stages_of


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Exporter:
    """Request counters of one server group, growing by ten requests every 0.1 s (``bad``: every fifth a 500)."""

    def __init__(self, bad: bool):
        self.counts = {"200": 0, "500": 0}
        self.bad = bad
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.stopped = threading.Event()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        threading.Thread(target=self._traffic, daemon=True).start()

    def _traffic(self):
        while not self.stopped.wait(0.1):
            with self.lock:
                self.counts["200"] += 8 if self.bad else 10
                self.counts["500"] += 2 if self.bad else 0

    def text(self) -> str:
        with self.lock:
            total = self.counts["200"] + self.counts["500"]
            return "".join([
                "# TYPE http_requests_total counter\n",
                *(f'http_requests_total{{code="{code}"}} {count}\n' for code, count in self.counts.items()),
                "# TYPE http_request_duration_seconds summary\n",
                f"http_request_duration_seconds_sum {total * 0.01:.2f}\n",
                f"http_request_duration_seconds_count {total}\n",
            ])

    def stop(self):
        self.stopped.set()
        self.server.shutdown()


@pytest.fixture
def scraped(tmp_path):
    """Prometheus on a free loopback port scraping three exporters, labelled by server group; stopped after."""
    binary = shutil.which("prometheus")
    if binary is None:
        missing_service("prometheus (apt-get install prometheus)")
    exporters = {"shop-v001": Exporter(bad=False), "shop-v002": Exporter(bad=True), "shop-v003": Exporter(bad=False)}
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
              "scrape_configs": [{"job_name": "server-groups", "static_configs": [
                  {"targets": [f"127.0.0.1:{exporter.port}"], "labels": {"server_group": name}}
                  for name, exporter in exporters.items()]}]}
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    missing_service(f"prometheus did not start: {(tmp_path / 'prometheus.log').read_text()[-800:]}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        for exporter in exporters.values():
            exporter.stop()


def canary_stage(experiment: str) -> dict:
    return {"refId": "1", "name": "Canary", "type": "kayentaCanary", "canaryConfig": {
        "canaryConfigId": HTTP_PRESET["name"], "lifetimeSeconds": 24, "canaryAnalysisIntervalSeconds": 12,
        "beginCanaryAnalysisAfterSeconds": 4, "metricsAccountName": "prometheus",
        "scoreThresholds": {"marginal": 50, "pass": 75},
        "scopes": [{"scopeName": "default", "controlScope": "shop-v001", "experimentScope": experiment, "step": 1}]}}


def test_a_bad_canary_fails_its_first_interval_and_a_good_one_passes_both(workers, people, scraped):
    workers.start(1, PROMETHEUS_URL=scraped)
    do_save_config(Application.objects.get(name="shop"), HTTP_PRESET, actor="alice")
    bad = do_start_execution(save([canary_stage("shop-v002")], name="bad-canary"), user="alice")
    good = do_start_execution(save([canary_stage("shop-v003")], name="good-canary"), user="alice")

    bad = wait_for_execution(bad.id, timeout=60)
    good = wait_for_execution(good.id, timeout=60)

    bad_stage, good_stage = stages_of(bad)["1"], stages_of(good)["1"]
    assert bad.status == Status.TERMINAL, bad_stage.context
    assert bad_stage.outputs["canaryScores"] == [0.0]
    assert bad_stage.outputs["classifications"]["http-error-rate"] == "High"
    report = CanaryAnalysis.objects.get(stage=bad_stage)
    errors = next(m for m in report.intervals[0]["metrics"] if m["name"] == "http-error-rate")
    assert errors["critical"] and min(errors["canary"]) > 0.1 and max(errors["baseline"]) == 0
    assert report.status == "TERMINAL"

    assert good.status == Status.SUCCEEDED, good_stage.context
    assert good_stage.outputs["canaryScores"] == [100.0, 100.0]
    assert good_stage.outputs["canaryResult"] == "PASS"
    assert CanaryAnalysis.objects.get(stage=good_stage).status == "SUCCEEDED"
