"""The ``bake`` stage (Rosco, ``cloudProvider: docker``): build an image from a git repository or a directory, push it.

The source is a git repository (``repository``: an http(s) URL, allowed by
the outbound policy, or a path under BAKE_LOCAL_ROOTS; ``ref``: a branch, tag
or commit; ``artifactAccount``: a git/repo artifact account whose credentials
read a private one, as a git/repo artifact's do) or a ``context`` directory
under BAKE_LOCAL_ROOTS. The image is
built on the engine of ``dockerAccount`` (default ``local``), tagged
``<registry address>/<imageName>:<tag>`` for each of ``tags`` and pushed to
the registry account ``account`` (without ``account`` it is tagged
``<imageName>:<tag>`` and stays on that engine, for deploys to it). Outputs: ``repository``, ``tag``,
``digest``, ``image`` (by digest) and Spinnaker's ``artifacts``; the build
log is kept in the stage's context (``buildLog``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from django.conf import settings

from apps.deployments.models import LOCAL_ACCOUNT
from apps.deployments.providers import docker as provider
from apps.deployments.providers.engines import EngineUnreachable, engine_client
from apps.deployments.stages.common import (
    ProviderStage,
    StageRefused,
    docker_account,
    is_expression,
    mapping_problems,
    registry_account,
    string_problems,
)
from apps.deployments.stages.sources import account_credentials, fetch_repository, local_path
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, TaskResult, register

IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@register
class BakeStage(ProviderStage):
    type_name = "bake"
    label = "Bake (Docker)"
    performs_io = True
    fields = (
        StageField("cloudProvider", "choice", "Cloud provider", choices=("docker",), default="docker"),
        StageField("account", label="Registry account",
                   help="Where the image is pushed; without one it stays on the engine it was built on."),
        StageField("imageName", label="Image name", required=True, help="e.g. shop/web"),
        StageField("tags", "list", "Tags", help="Expressions allowed, e.g. ${trigger.tag}; default: the commit"),
        StageField("repository", label="Git repository", help="An http(s) URL or a path under BAKE_LOCAL_ROOTS"),
        StageField("ref", label="Git ref", help="Branch, tag or commit (default HEAD)"),
        StageField("artifactAccount", label="Repository account",
                   help="A git/repo artifact account whose credentials read a private repository"),
        StageField("context", label="Context directory", help="Instead of a repository: a directory"),
        StageField("dockerfile", label="Dockerfile", default="Dockerfile", help="Path inside the context"),
        StageField("buildArgs", "object", "Build arguments"),
        StageField("dockerAccount", label="Engine to build on", default=LOCAL_ACCOUNT),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        problems = string_problems(stage, pointer, ("account", "imageName", "repository", "ref", "context",
                                                    "dockerfile", "dockerAccount"))
        problems += string_problems(stage, pointer, ("artifactAccount",), limit=63)
        problems += mapping_problems(stage, pointer, "buildArgs")
        if not stage.get("repository") and not stage.get("context"):
            problems.append(Problem(f"{pointer}/repository", "a repository or a context directory is required"))
        elif stage.get("artifactAccount") and not stage.get("repository"):
            problems.append(Problem(f"{pointer}/artifactAccount", "reads a repository: give one, or leave it out"))
        name = stage.get("imageName")
        if isinstance(name, str) and not is_expression(name) and not IMAGE_NAME.match(name):
            problems.append(Problem(f"{pointer}/imageName", "must be a repository name: lowercase path components"))
        tags = stage.get("tags")
        if tags is not None and not is_expression(tags):
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags) or len(tags) > 20:
                problems.append(Problem(f"{pointer}/tags", "must be a list of at most 20 tags"))
        return problems

    def run(self, stage, scope, runtime) -> TaskResult:
        try:
            return self._bake(stage)
        except (StageRefused, provider.ProviderError, EngineUnreachable) as error:
            return TaskResult.failed(str(error))

    def _bake(self, stage) -> TaskResult:
        context = stage.context
        registry = registry_account(stage, context["account"]) if context.get("account") else None
        engine = docker_account(stage, context.get("dockerAccount") or LOCAL_ACCOUNT, "dockerAccount")
        repository = f"{registry.address}/{context['imageName']}" if registry else context["imageName"]
        with tempfile.TemporaryDirectory(prefix="cdp-bake-") as work:
            commit = ""
            if context.get("repository"):
                credentials = account_credentials(stage, context["artifactAccount"], "artifactAccount",
                                                  "git/repo") if context.get("artifactAccount") else None
                commit = fetch_repository(context["repository"], context.get("ref") or "", Path(work), "repository",
                                          credentials)
                source = Path(work)
            else:
                source = local_path(context["context"], "context")
            tags = [str(tag) for tag in context.get("tags") or [commit[:12] or "latest"]]
            bad = [tag for tag in tags if not TAG.match(tag)]
            if bad:
                raise StageRefused(f"tags: {bad[0]!r} is not a valid image tag")
            build_args = {key: str(value) for key, value in (context.get("buildArgs") or {}).items()}
            with engine_client(engine, timeout=settings.DOCKER_BUILD_TIMEOUT_SECONDS) as client:
                built = provider.build_image(
                    client, context=str(source), dockerfile=context.get("dockerfile") or "Dockerfile",
                    tag=f"{repository}:{tags[0]}", build_args=build_args,
                    labels=provider.labels_for(application=stage.execution.application.name, baked="true"))
                image = client.images.get(built.image_id)
                digest = ""
                for tag in tags:
                    image.tag(repository, tag)
                    if registry is not None:
                        digest = provider.push_image(client, repository, tag, registry)
        return TaskResult.succeeded(outputs=bake_outputs(repository, tags, digest, built.image_id, commit),
                                    context={"buildLog": provider.tail(built.log)})


def bake_outputs(repository: str, tags: list[str], digest: str, image_id: str, commit: str) -> dict:
    """What later stages read: the image by digest and Spinnaker's ``docker/image`` artifacts."""
    image = f"{repository}@{digest}" if digest else f"{repository}:{tags[0]}"  # not pushed: by its tag on the engine
    artifacts = [{"type": "docker/image", "name": repository, "version": tag, "reference": f"{repository}:{tag}",
                  "metadata": {"digest": digest}} for tag in tags]
    return {"repository": repository, "tag": tags[0], "tags": tags, "digest": digest,
            "image": image, "imageId": image_id, "commit": commit, "artifacts": artifacts,
            "deploymentDetails": [{"ami": image, "imageId": image_id, "cloudProvider": "docker"}]}
