"""A real Prometheus for the canary tests, scraping the server groups' containers it finds on the Docker engine.

It runs Debian's ``prometheus`` on a free 127.0.0.1 port with its own
storage directory, scraping every second. Targets come from Prometheus' own
``docker_sd_configs`` against the engine's socket, limited to the containers
of one test (their ``io.cdplatform.owner`` label), and relabelled from what
the Docker provider writes on every container: the address becomes the
container's published 127.0.0.1 port, and the labels ``server_group``,
``cluster`` and ``application`` come from ``io.cdplatform.server-group``,
``io.cdplatform.cluster`` and ``io.cdplatform.application``. Nothing in the
platform knows about the test's Prometheus.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import missing_service

SCRAPE_SECONDS = 1
LABELS = {"server_group": "server_group", "cluster": "cluster", "application": "application"}


def docker_host() -> str:
    """The engine's address as Prometheus' docker_sd_configs reads it (DOCKER_HOST, or the default socket)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def config_text(owner: str, scrape_seconds: float = SCRAPE_SECONDS) -> str:
    """prometheus.yml: one job discovering the owner's containers on the engine, scraped every ``scrape_seconds``."""
    relabel = [
        {"source_labels": ["__meta_docker_port_public"], "regex": ".+", "action": "keep"},
        {"source_labels": ["__meta_docker_port_public"], "target_label": "__address__",
         "replacement": "127.0.0.1:$1"},
        *({"source_labels": [f"__meta_docker_container_label_io_cdplatform_{source}"], "target_label": target}
          for source, target in LABELS.items()),
        {"source_labels": ["__meta_docker_container_name"], "regex": "/?(.*)", "target_label": "instance"},
    ]
    config = {
        "global": {"scrape_interval": f"{scrape_seconds}s", "scrape_timeout": f"{scrape_seconds}s",
                   "evaluation_interval": f"{scrape_seconds}s"},
        "scrape_configs": [{
            "job_name": "server-groups", "metrics_path": "/metrics",
            "docker_sd_configs": [{"host": docker_host(), "refresh_interval": f"{scrape_seconds}s",
                                   "filters": [{"name": "label", "values": [f"io.cdplatform.owner={owner}"]}]}],
            "relabel_configs": relabel,
        }],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


@dataclass
class Prometheus:
    """A running Prometheus: its base URL and process."""

    url: str
    process: subprocess.Popen
    directory: Path

    def query(self, expression: str) -> list[dict]:
        """An instant query's result vector (``[{metric, value}]``)."""
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        with urllib.request.urlopen(address, timeout=5) as response:
            return json.load(response)["data"]["result"]

    def targets(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
            return json.load(response)["data"]["activeTargets"]

    def wait_for(self, predicate, timeout: float = 30, what: str = "a condition"):
        """Poll ``predicate()`` until it returns something true; that value. AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: {what} not seen within {timeout:g} s")
            time.sleep(0.25)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_prometheus(directory: Path, owner: str, port: int) -> Prometheus:
    """Start Prometheus under ``directory`` on 127.0.0.1:``port``, ready to answer; a skip (or CI failure) naming
    the service when it is not installed or does not start."""
    binary = shutil.which("prometheus")
    if binary is None:
        missing_service("prometheus (apt-get install prometheus)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prometheus.yml").write_text(config_text(owner))
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    running = Prometheus(f"http://127.0.0.1:{port}", process, directory)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{running.url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return running
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            tail = (directory / "prometheus.log").read_text(errors="replace")[-1500:]
            missing_service(f"prometheus did not start on 127.0.0.1:{port}: {tail}")
        time.sleep(0.2)
