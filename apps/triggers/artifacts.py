"""Expected artifacts, bound when a trigger fires, as Spinnaker binds them.

A pipeline declares ``expectedArtifacts`` (``id``, ``matchArtifact`` with any of
``type``, ``name``, ``reference``, ``version`` as regexes, and what to use when
no incoming artifact matches: ``useDefaultArtifact`` + ``defaultArtifact``, or
``usePriorArtifact``: the one the pipeline's last execution bound). A trigger
lists the ones it needs in ``expectedArtifactIds``; when one of them can be
bound to nothing, the trigger does not fire and says which. The execution's
``trigger.artifacts`` then holds the incoming artifacts and the defaults used,
and ``trigger.resolvedExpectedArtifacts`` each expected artifact with its
``boundArtifact``, which later stages read (a deploy's image:
``${trigger.resolvedExpectedArtifacts[0].boundArtifact.reference}``).
"""

from __future__ import annotations

from apps.pipelines.models import Execution, Pipeline
from apps.pipelines.problems import Problem, pointer_join
from apps.triggers.kinds.base import matches_pattern, pattern_problem

MATCHED_FIELDS = ("type", "name", "reference", "version")


class ArtifactMissing(Exception):
    """An expected artifact the trigger needs matched nothing, and no default or prior one stands in."""


def artifact_problems(document: dict) -> list[Problem]:
    """Problems with a document's ``expectedArtifacts``: objects with an id, regexes that compile."""
    expected = document.get("expectedArtifacts")
    if expected is None:
        return []
    if not isinstance(expected, list):
        return [Problem("/expectedArtifacts", "must be a list")]
    problems = []
    for index, item in enumerate(expected):
        where = pointer_join("/expectedArtifacts", index)
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            problems.append(Problem(pointer_join(where, "id"), "is required (a string)"))
            continue
        match = item.get("matchArtifact") or {}
        for name in MATCHED_FIELDS if isinstance(match, dict) else ():
            problems += pattern_problem(match.get(name), pointer_join(where, "matchArtifact", name))
    return problems


def _matches(match: dict, artifact: dict) -> bool:
    return all(matches_pattern(match.get(name), artifact.get(name)) for name in MATCHED_FIELDS if match.get(name))


def _prior(pipeline: Pipeline, expected_id: str) -> dict | None:
    last = Execution.objects.filter(pipeline=pipeline).order_by("-created_at").values_list("trigger", flat=True)[:1]
    for trigger in last:
        for resolved in trigger.get("resolvedExpectedArtifacts") or []:
            if isinstance(resolved, dict) and resolved.get("id") == expected_id and resolved.get("boundArtifact"):
                return resolved["boundArtifact"]
    return None


def bind(pipeline: Pipeline, trigger: dict, incoming: list[dict]) -> tuple[list[dict], list[dict]]:
    """The trigger's artifacts and its resolved expected artifacts; ArtifactMissing when one cannot be bound."""
    wanted = trigger.get("expectedArtifactIds") or []
    declared = {item.get("id"): item for item in pipeline.definition.get("expectedArtifacts") or []
                if isinstance(item, dict)}
    artifacts, resolved = list(incoming), []
    for expected_id in wanted if isinstance(wanted, list) else []:
        expected = declared.get(expected_id)
        if expected is None:
            raise ArtifactMissing(f"expected artifact {expected_id!r} is not declared in expectedArtifacts")
        match = expected.get("matchArtifact") if isinstance(expected.get("matchArtifact"), dict) else {}
        bound = next((artifact for artifact in incoming if _matches(match, artifact)), None)
        if bound is None and expected.get("usePriorArtifact") is True:
            bound = _prior(pipeline, expected_id)
        if bound is None and expected.get("useDefaultArtifact") is True and isinstance(
                expected.get("defaultArtifact"), dict):
            bound = expected["defaultArtifact"]
            artifacts.append(bound)
        if bound is None:
            name = expected.get("displayName") or expected_id
            raise ArtifactMissing(f"expected artifact {name!r} matched no incoming artifact and has no default")
        resolved.append({**expected, "boundArtifact": bound})
    return artifacts, resolved
