"""``findImage`` (the image a cluster runs, to promote exactly it) and ``runJob`` (a container run to completion)."""

from __future__ import annotations

import json
import re

from docker.errors import APIError, DockerException, NotFound

from apps.deployments.models import LOCAL_ACCOUNT
from apps.deployments.providers import docker as provider
from apps.deployments.providers.engines import engine_client
from apps.deployments.stages.common import (
    ProviderStage,
    StageRefused,
    docker_account,
    mapping_problems,
    string_problems,
)
from apps.deployments.stages.deploy import guarded
from apps.deployments.stages.targets import cluster_groups
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, Task, TaskResult, register

SELECTIONS = ("NEWEST", "OLDEST", "LARGEST", "FAIL")
PROPERTY_LINE = re.compile(r"^SPINNAKER_PROPERTY_([A-Za-z0-9_]+)=(.*)$")
CONFIG_LINE = re.compile(r"^SPINNAKER_CONFIG_JSON=(.*)$")


@register
class FindImageStage(ProviderStage):
    """The image of a cluster's server group, chosen as Spinnaker's findImageFromCluster does."""

    type_name = "findImage"
    label = "Find image from cluster"
    performs_io = True
    fields = (
        StageField("cloudProvider", "choice", choices=("docker",), default="docker"),
        StageField("account", required=True, help="The Docker engine account"),
        StageField("cluster", required=True, help="app[-stack[-detail]]"),
        StageField("onlyEnabled", "boolean", default=True),
        StageField("selectionStrategy", "choice", choices=SELECTIONS, default="NEWEST"),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        if stage.get("selectionStrategy", "NEWEST") not in SELECTIONS:
            return [Problem(f"{pointer}/selectionStrategy", f"must be one of {', '.join(SELECTIONS)}")]
        return string_problems(stage, pointer, ("account", "cluster"))

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        account = docker_account(stage, context.get("account"))
        candidates = [group for group in cluster_groups(account, context["cluster"])
                      if group.enabled or context.get("onlyEnabled") is False]
        if not candidates:
            kind = "enabled server group" if context.get("onlyEnabled", True) else "server group"
            raise StageRefused(f"cluster: {context['cluster']!r} has no {kind}")
        strategy = context.get("selectionStrategy") or "NEWEST"
        if strategy == "FAIL" and len({group.image for group in candidates}) > 1:
            raise StageRefused(f"selectionStrategy FAIL: the cluster runs several images: "
                               f"{', '.join(sorted({group.image for group in candidates}))}")
        chosen = {"OLDEST": candidates[-1], "LARGEST": max(candidates, key=lambda group: group.desired)}.get(
            strategy, candidates[0])
        details = [{"ami": chosen.image, "imageId": chosen.image, "imageName": chosen.image,
                    "serverGroup": chosen.name, "cloudProvider": "docker"}]
        return TaskResult.succeeded(outputs={"image": chosen.image, "serverGroup": chosen.name,
                                             "deploymentDetails": details, "amiDetails": details})


def job_outputs(log: str) -> dict:
    """Outputs a job prints: ``SPINNAKER_PROPERTY_<KEY>=value`` and ``SPINNAKER_CONFIG_JSON=<json object>`` lines."""
    outputs: dict = {}
    for line in log.splitlines():
        if match := PROPERTY_LINE.match(line.strip()):
            outputs[match.group(1).lower()] = match.group(2)
        elif match := CONFIG_LINE.match(line.strip()):
            try:
                value = json.loads(match.group(1))
            except ValueError:
                continue
            if isinstance(value, dict):
                outputs.update(value)
    return outputs


class StartJob(Task):
    name = "startJob"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        if stage.context.get("jobContainer"):
            return TaskResult.succeeded()
        account = docker_account(stage, stage.context.get("account") or LOCAL_ACCOUNT)
        labels = provider.labels_for(application=stage.execution.application.name, job=str(stage.pk))
        with engine_client(account) as client:
            image = provider.ensure_image(client, stage.context["image"], list(account.registries.all()))
            try:
                container = client.containers.run(image, stage.context.get("command") or None, detach=True,
                                                  labels=labels, environment=stage.context.get("env") or {},
                                                  init=True, name=f"job-{str(stage.pk)[:13]}")
            except (APIError, DockerException) as error:
                raise StageRefused(f"the job could not start: {error}") from None
        return TaskResult.succeeded(context={"jobContainer": container.id})


class WaitForJob(Task):
    """Polls until the job's container exits; its logs are kept, a non-zero exit fails the stage."""

    name = "waitForJob"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        account = docker_account(stage, stage.context.get("account") or LOCAL_ACCOUNT)
        with engine_client(account) as client:
            try:
                container = client.containers.get(stage.context["jobContainer"])
            except NotFound:
                raise StageRefused("the job's container disappeared before it finished") from None
            if container.status not in ("exited", "dead"):
                return TaskResult.running(retry_after=1)
            code = container.attrs["State"]["ExitCode"]
            log = provider.container_logs(client, container.id)
            provider.remove_container(client, container.id)
        context = {"jobLog": log, "exitCode": code}
        if code != 0:
            return TaskResult.failed(f"the job exited with {code}; its log:\n{log[-2000:]}", context=context)
        return TaskResult.succeeded(context=context, outputs={**job_outputs(log), "exitCode": code})


@register
class RunJobStage(ProviderStage):
    """A container run to completion on an engine (Spinnaker's runJob)."""

    type_name = "runJob"
    label = "Run job"
    fields = (
        StageField("cloudProvider", "choice", choices=("docker",), default="docker"),
        StageField("account", default=LOCAL_ACCOUNT, help="The Docker engine account"),
        StageField("image", required=True),
        StageField("command", "list", help="e.g. [sh, -c, 'echo SPINNAKER_PROPERTY_VERSION=1']"),
        StageField("env", "object"),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        problems = string_problems(stage, pointer, ("account", "image")) + mapping_problems(stage, pointer, "env")
        command = stage.get("command")
        if command is not None and not (isinstance(command, list) and all(isinstance(c, str) for c in command)):
            problems.append(Problem(f"{pointer}/command", "must be a list of strings"))
        return problems

    def task_graph(self, stage):
        return [StartJob(), WaitForJob()]

    def cancel(self, stage, runtime) -> None:
        container = stage.context.get("jobContainer")
        if container:
            account = docker_account(stage, stage.context.get("account") or LOCAL_ACCOUNT)
            with engine_client(account) as client:
                provider.remove_container(client, container)
