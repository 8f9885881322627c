"""``manage.py bench_deploy``: the wall time of a red/black deploy of a 3-instance server group, split in three.

Starts its own worker (``manage.py rqworker --with-scheduler``), builds a
busybox web image on the ``local`` engine, deploys it (v000) behind an nginx
load balancer, then measures a red/black deploy to v001 and reads the split
from the task timings the engine records for each stage:

* Docker: the tasks that call the engine and the proxy (create the server
  group, enable it, disable the older one);
* health checks: waiting for the new group's instances to be healthy, and
  the drain before the old group's containers may be removed (a fixed
  LOAD_BALANCER_DRAIN_SECONDS);
* the platform's own orchestration: the rest of the execution's wall time
  (queueing, state changes, starting each stage and task).

A task's time runs from its start to its end as the engine records them, so
a polling task's share includes the engine's delay between polls (a
``retry_after`` of 1 s is scheduled at RQ's scheduler granularity): that
wait is counted as health checking, not as orchestration.

Everything it made (containers, image, load balancer) is removed at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.deployments.models import LoadBalancer, ServerGroup
from apps.deployments.services.server_groups import do_delete_load_balancer
from apps.pipelines.models import Application, Execution, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution

DOCKER_TASKS = {"createServerGroup", "enableServerGroup", "disableOlderServerGroups"}
HEALTH_TASKS = {"waitForUpInstances", "waitForDrain"}
DOCKERFILE = ('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
              'COPY www /www\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n')


def millis(value) -> float:
    return float(value or 0) / 1000


class Command(BaseCommand):
    help = "Wall time of a red/black deploy of 3 instances: Docker, health checks, the platform's orchestration."

    def handle(self, *args, **options):
        owner = f"cdp-bench-{os.getpid()}"
        client = docker.from_env(version="auto")
        work = Path(tempfile.mkdtemp(prefix="cdp-bench-deploy-"))
        worker = None
        try:
            image = self.build(client, work, owner)
            worker = subprocess.Popen([sys.executable, "manage.py", "rqworker", "--with-scheduler"],
                                      cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True,
                                      env={**os.environ, "DOCKER_OWNER_LABEL": owner,
                                           "LOAD_BALANCER_STATE_DIR": str(work / "lb"),
                                           "DOCKER_HEALTH_INTERVAL_SECONDS": "0.2"})
            port = self.free_port()
            self.run(self.pipeline(image, port, first=True))
            execution = self.run(self.pipeline(image, port, first=False))
            self.report(execution)
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(20)
            self.clean(client, owner, work)

    def build(self, client, work: Path, owner: str) -> str:
        context = work / "image"
        (context / "www").mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", context / "busybox")
        (context / "www" / "index.html").write_text("bench\n")
        (context / "www" / "health").write_text("ok\n")
        (context / "Dockerfile").write_text(DOCKERFILE)
        name = f"cdp-bench/web:{owner}"
        client.images.build(path=str(context), tag=name, labels={"io.cdplatform.owner": owner}, rm=True)
        return name

    def free_port(self) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def pipeline(self, image: str, port: int, *, first: bool) -> list[dict]:
        cluster = {"cloudProvider": "docker", "account": "local", "application": "bench", "stack": "web",
                   "strategy": "redblack", "capacity": {"desired": 3}, "image": image, "containerPort": 8080,
                   "healthCheck": {"path": "/health"}, "loadBalancers": ["bench-web"]}
        deploy = {"refId": "1", "name": "Deploy", "type": "deploy", "clusters": [cluster]}
        if not first:
            return [deploy]
        balancer = {"refId": "lb", "name": "LB", "type": "upsertLoadBalancer", "loadBalancers": [{
            "account": "local", "name": "bench-web", "listeners": [{"externalPort": port}]}]}
        return [balancer, {**deploy, "requisiteStageRefIds": ["lb"]}]

    def run(self, stages: list[dict]) -> Execution:
        pipeline, _ = do_save_pipeline({"application": "bench", "name": "deploy", "stages": stages}, user="bench")
        execution = do_start_execution(pipeline, user="bench")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            execution.refresh_from_db()
            if execution.end_time is not None:
                if execution.status != "SUCCEEDED":
                    raise CommandError(f"the deploy ended {execution.status}")
                return execution
            time.sleep(0.2)
        raise CommandError("the deploy did not end within 300 s")

    def report(self, execution: Execution) -> None:
        total = (execution.end_time - execution.start_time).total_seconds()
        split = {"docker": 0.0, "health": 0.0}
        for stage in StageExecution.objects.filter(execution=execution):
            for task in stage.tasks or []:
                spent = millis(task.get("endTime")) - millis(task.get("startTime"))
                if task.get("name") in DOCKER_TASKS:
                    split["docker"] += spent
                elif task.get("name") in HEALTH_TASKS:
                    split["health"] += spent
        platform = total - split["docker"] - split["health"]
        self.stdout.write(f"red/black deploy of 3 instances: {total:.2f} s wall")
        self.stdout.write(f"  Docker (engine and proxy calls): {split['docker']:.2f} s ({split['docker'] / total:.1%})")
        self.stdout.write(f"  health checks and drain:         {split['health']:.2f} s ({split['health'] / total:.1%})")
        self.stdout.write(f"  platform orchestration:          {platform:.2f} s ({platform / total:.1%}; goal < 5%)")

    def clean(self, client, owner: str, work: Path) -> None:
        for balancer in LoadBalancer.objects.filter(application__name="bench").select_related("account"):
            settings.LOAD_BALANCER_STATE_DIR = str(work / "lb")
            do_delete_load_balancer(balancer)
        for container in client.containers.list(all=True, filters={"label": f"io.cdplatform.owner={owner}"}):
            container.remove(force=True)
        for image in client.images.list(filters={"label": f"io.cdplatform.owner={owner}"}):
            client.images.remove(image.id, force=True)
        ServerGroup.objects.filter(application__name="bench").delete()
        Application.objects.filter(name="bench").delete()
        shutil.rmtree(work, ignore_errors=True)
