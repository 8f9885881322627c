"""``manage.py bench_triggers``: webhook deliveries against many saved pipelines with triggers.

Saves ``--pipelines`` pipelines (default 1,000) in one application, each with
a generic webhook trigger and a GitHub git trigger, both with a secret (an
application secret, ``${#secret('hook')}``), so every delivery is checked
against an HMAC. Then sends ``--deliveries`` webhook deliveries (default
10,000), in this process through Django's test ``Client`` (the whole
middleware and view stack, no network): half signed GitHub pushes to
``/webhooks/git/github``, half generic webhooks to
``/webhooks/webhook/<source>`` with ``X-Webhook-Token``, each naming a
random one of the pipelines, so each starts one execution. The response
comes after the transaction that records the event and creates the
execution has committed (and the start job is queued), so the time of a
request is the time from request to execution created. It prints the
median, p95 and max in milliseconds and the deliveries per second, and, as
the baseline in the same run, the same figures for ``do_start_execution``
called directly on the same pipelines (what a start costs without a
trigger): the ratio is what receiving, authenticating, matching and recording
add. Goal: p95 under 50 ms. Runs with DEBUG off (no query log) and the
trigger rate limit lifted; everything it made — the application, its
executions, the inbound events, the jobs it queued — is deleted at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import statistics
import time

from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import Client
from django.test.utils import override_settings

from apps.pipelines import enqueue
from apps.pipelines.models import Application, Execution, Pipeline
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.triggers.models import InboundEvent, SeenDelivery

APPLICATION = "bench-triggers"
SECRET = "bench-hook-secret-0123456789"
GOAL_MS = 50.0


def _figures(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000, ordered[-1] * 1000


class Command(BaseCommand):
    help = "Webhook deliveries against saved pipelines with triggers: p95 from request to execution created."

    def add_arguments(self, parser):
        parser.add_argument("--pipelines", type=int, default=1000)
        parser.add_argument("--deliveries", type=int, default=10_000)
        parser.add_argument("--baseline", type=int, default=1000, help="Direct starts for the baseline.")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, pipelines: int, deliveries: int, baseline: int, seed: int, **options):
        random.seed(seed)
        self._cleanup()
        try:
            saved = self._setup(pipelines)
            with override_settings(DEBUG=False, TRIGGER_RATE_LIMIT="100000000/minute"):
                times, seconds = self._deliver(deliveries, pipelines)
                base, base_seconds = self._baseline(saved, baseline)
            self._report(times, seconds, base, base_seconds, pipelines)
        finally:
            self._cleanup()

    def _setup(self, count: int) -> list[Pipeline]:
        started = time.monotonic()
        application, _ = Application.objects.get_or_create(name=APPLICATION)
        do_set_secret(application, "hook", SECRET, user="bench_triggers")
        saved = []
        for index in range(count):
            triggers = [
                {"type": "webhook", "enabled": True, "source": f"bench-{index}", "secret": "${#secret('hook')}"},
                {"type": "git", "enabled": True, "source": "github", "project": "bench", "slug": f"repo-{index}",
                 "branch": "main", "secret": "${#secret('hook')}"},
            ]
            stages = [{"refId": "1", "name": "Wait", "type": "wait", "waitTime": 1}]
            pipeline, _ = do_save_pipeline({"application": APPLICATION, "name": f"deliver-{index}",
                                            "triggers": triggers, "stages": stages})
            saved.append(pipeline)
        self.stdout.write(f"saved {count} pipelines with 2 triggers each in {time.monotonic() - started:.1f} s")
        return saved

    def _request(self, index: int, number: int) -> tuple[str, bytes, dict]:
        if number % 2:
            body = json.dumps({"ref": "refs/heads/main", "after": f"{number:040x}", "repository": {
                "name": f"repo-{index}", "owner": {"login": "bench"}}}).encode()
            signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            return "/webhooks/git/github", body, {"X-GitHub-Event": "push", "X-GitHub-Delivery": f"bench-{number}",
                                                  "X-Hub-Signature-256": signature}
        body = json.dumps({"delivery": number, "env": "prod"}).encode()
        return f"/webhooks/webhook/bench-{index}", body, {"X-Webhook-Token": SECRET}

    def _deliver(self, deliveries: int, pipelines: int) -> tuple[list[float], float]:
        client, times = Client(HTTP_HOST="localhost"), []
        for number in range(20):  # warm-up, unmeasured
            path, body, headers = self._request(random.randrange(pipelines), -1 - number)
            client.post(path, body, content_type="application/json", headers=headers)
        started = time.monotonic()
        for number in range(deliveries):
            path, body, headers = self._request(random.randrange(pipelines), number)
            before = time.perf_counter()
            response = client.post(path, body, content_type="application/json", headers=headers)
            times.append(time.perf_counter() - before)
            if response.status_code != 200 or not response.json().get("executions"):
                raise RuntimeError(f"delivery {number} to {path} started nothing: {response.content[:300]!r}")
        return times, time.monotonic() - started

    def _baseline(self, saved: list[Pipeline], count: int) -> tuple[list[float], float]:
        times = []
        started = time.monotonic()
        for _ in range(count):
            pipeline = random.choice(saved)
            before = time.perf_counter()
            with transaction.atomic():
                do_start_execution(pipeline, trigger={"type": "manual"}, user="bench_triggers")
            times.append(time.perf_counter() - before)
        return times, time.monotonic() - started

    def _report(self, times, seconds, base, base_seconds, pipelines: int) -> None:
        median, p95, worst = _figures(times)
        base_median, base_p95, base_worst = _figures(base)
        self.stdout.write(f"{len(times)} deliveries against {pipelines} pipelines ({pipelines * 2} triggers):")
        self.stdout.write(f"  request to execution created: median {median:.2f} ms, p95 {p95:.2f} ms, "
                          f"max {worst:.2f} ms; {len(times) / seconds:.0f} deliveries/s")
        self.stdout.write(f"  baseline, do_start_execution alone ({len(base)}): median {base_median:.2f} ms, "
                          f"p95 {base_p95:.2f} ms, max {base_worst:.2f} ms; {len(base) / base_seconds:.0f} starts/s")
        self.stdout.write(f"  ratio delivery/start: median {median / base_median:.2f}, p95 {p95 / base_p95:.2f}")
        verdict = "meets" if p95 < GOAL_MS else "misses"
        self.stdout.write(f"  goal p95 < {GOAL_MS:.0f} ms: {verdict}")

    def _cleanup(self) -> None:
        ids = {str(pk) for pk in Execution.objects.filter(application__name=APPLICATION).values_list("pk", flat=True)}
        if ids:
            queue = enqueue.engine_queue()
            for job in queue.get_jobs():
                if job.args and str(job.args[0]) in ids:
                    job.delete()
        InboundEvent.objects.filter(matches__application__name=APPLICATION).delete()
        InboundEvent.objects.filter(source__startswith="webhook/bench-").delete()
        SeenDelivery.objects.filter(delivery_id__startswith="bench-").delete()
        Execution.objects.filter(application__name=APPLICATION).delete()
        Pipeline.objects.filter(application__name=APPLICATION).delete()
        Application.objects.filter(name=APPLICATION).delete()
