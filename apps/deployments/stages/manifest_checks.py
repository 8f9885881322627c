"""The field checks of the Kubernetes manifest stages, each problem at its JSON pointer into the stage."""

from __future__ import annotations

import json

from apps.deployments.providers.kubernetes import traffic
from apps.deployments.stages.common import is_expression
from apps.deployments.stages.sources import artifact_account_problems
from apps.pipelines.problems import Problem

MAX_MANIFESTS = 100
MAX_MANIFESTS_BYTES = 1024 * 1024
MAX_STABLE_TIMEOUT_SECONDS = 3600
SOURCES = ("text", "artifact")

def manifest_problems(manifest, pointer: str, *, evaluated: bool = False) -> list[Problem]:
    """What is wrong with one manifest; an empty one (an empty YAML document) is allowed and skipped. Before
    evaluation a manifest may be an expression; once ``evaluated`` it must be an object."""
    if manifest is None or manifest == {} or (is_expression(manifest) and not evaluated):
        return []
    if not isinstance(manifest, dict):
        return [Problem(pointer, "must be an object: a Kubernetes manifest")]
    problems = [Problem(f"{pointer}/{key}", f"is required: the manifest's {what}") for key, what in
                (("kind", "kind, e.g. Deployment"), ("apiVersion", "API version, e.g. apps/v1"))
                if not isinstance(manifest.get(key), str) or not manifest[key].strip()]
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        return [*problems, Problem(f"{pointer}/metadata", "is required: an object with the manifest's name")]
    if not isinstance(metadata.get("name"), str) or not metadata["name"]:
        problems.append(Problem(f"{pointer}/metadata/name", "is required: the manifest's name"))
    if metadata.get("namespace") is not None and not isinstance(metadata["namespace"], str):
        problems.append(Problem(f"{pointer}/metadata/namespace", "must be a namespace's name"))
    return problems


def manifests_problems(manifests, pointer: str, *, evaluated: bool = False) -> list[Problem]:
    if not isinstance(manifests, list) or len(manifests) > MAX_MANIFESTS:
        return [Problem(pointer, f"must be a list of at most {MAX_MANIFESTS} manifests")]
    if len(json.dumps(manifests, default=str)) > MAX_MANIFESTS_BYTES:
        return [Problem(pointer, f"must be at most {MAX_MANIFESTS_BYTES // 1024} KB")]
    return [problem for index, manifest in enumerate(manifests)
            for problem in manifest_problems(manifest, f"{pointer}/{index}", evaluated=evaluated)]


def typed_problems(stage: dict, pointer: str, key: str, kinds, message: str) -> list[Problem]:
    """A problem when ``stage[key]`` is given, is no expression, and is not of ``kinds``."""
    value = stage.get(key)
    if value is None or is_expression(value) or isinstance(value, kinds):
        return []
    return [Problem(f"{pointer}/{key}", message)]


def traffic_problems(stage: dict, pointer: str) -> list[Problem]:
    management = stage.get("trafficManagement")
    if management is None or is_expression(management):
        return []
    where = f"{pointer}/trafficManagement"
    if not isinstance(management, dict):
        return [Problem(where, "must be an object: {enabled, options: {services, enableTraffic, strategy}}")]
    options = management.get("options") or {}
    if not isinstance(options, dict):
        return [Problem(f"{where}/options", "must be an object: {services, enableTraffic, strategy}")]
    problems = typed_problems(management, where, "enabled", bool, "must be true or false")
    problems += typed_problems(options, f"{where}/options", "enableTraffic", bool, "must be true or false")
    services = options.get("services")
    if services is not None and not is_expression(services):
        try:
            if not isinstance(services, list) or not all(isinstance(entry, str) for entry in services):
                raise ValueError("must be a list of 'service NAME' entries")
            traffic.service_names([entry for entry in services if not is_expression(entry)])
        except ValueError as error:
            problems.append(Problem(f"{where}/options/services", str(error)))
    strategy = options.get("strategy")
    if strategy not in (None, "", "none", *traffic.STRATEGIES) and not is_expression(strategy):
        problems.append(Problem(f"{where}/options/strategy", f"must be one of {', '.join(traffic.STRATEGIES)}"))
    if management.get("enabled") is True and strategy in traffic.STRATEGIES and not services:
        problems.append(Problem(f"{where}/options/services", f"{strategy} needs the services to move traffic in"))
    return problems


def stage_problems(stage: dict, pointer: str) -> list[Problem]:
    problems = typed_problems(stage, pointer, "account", str, "must be a Kubernetes account's name")
    problems += typed_problems(stage, pointer, "namespaceOverride", str, "must be a namespace's name")
    problems += typed_problems(stage, pointer, "skipExpressionEvaluation", bool, "must be true or false")
    problems += typed_problems(stage, pointer, "moniker", dict, "must be an object: {app, cluster}")
    moniker = stage.get("moniker")
    for key in ("app", "cluster"):
        if isinstance(moniker, dict):
            problems += typed_problems(moniker, f"{pointer}/moniker", key, str, "must be a string")
    problems += typed_problems(stage, pointer, "requiredArtifactIds", list, "must be a list of expected artifact ids")
    problems += typed_problems(stage, pointer, "requiredArtifacts", list, "must be a list of {expectedArtifactId} or "
                                                                  "{artifact} entries")
    timeout = stage.get("stableTimeoutSec")
    if timeout is not None and not is_expression(timeout) and (
            isinstance(timeout, bool) or not isinstance(timeout, int)
            or not 1 <= timeout <= MAX_STABLE_TIMEOUT_SECONDS):
        problems.append(Problem(f"{pointer}/stableTimeoutSec",
                                f"must be a whole number of seconds from 1 to {MAX_STABLE_TIMEOUT_SECONDS}"))
    source = stage.get("source") or "text"
    if source not in SOURCES and not is_expression(source):
        problems.append(Problem(f"{pointer}/source", f"must be one of {', '.join(SOURCES)}"))
    elif source == "text" and not is_expression(stage.get("manifests")):
        if stage.get("manifests") is None:
            problems.append(Problem(f"{pointer}/manifests", "is required when source is text"))
        else:
            problems += manifests_problems(stage["manifests"], f"{pointer}/manifests")
    elif source == "artifact" and not stage.get("manifestArtifactId") and not stage.get("manifestArtifact"):
        problems.append(Problem(f"{pointer}/manifestArtifactId", "a manifest artifact (its expected artifact id, "
                                                                  "or manifestArtifact) is required"))
    elif source == "artifact" and isinstance(stage.get("manifestArtifact"), dict):
        problems += artifact_account_problems(stage["manifestArtifact"], f"{pointer}/manifestArtifact")
    return problems + traffic_problems(stage, pointer)
