"""Expected artifacts, bound when a trigger fires, as Spinnaker binds them.

A pipeline declares ``expectedArtifacts`` (``id``, ``matchArtifact`` with any of
``type``, ``name``, ``version``, ``location``, ``reference`` as regexes, and what to use when
no incoming artifact matches: ``useDefaultArtifact`` + ``defaultArtifact``, or
``usePriorArtifact``: the one the pipeline's last execution bound). A trigger
lists the ones it needs in ``expectedArtifactIds``; when one of them can be
bound to nothing, the trigger does not fire and says which. The execution's
``trigger.artifacts`` then holds the incoming artifacts and the defaults used,
and ``trigger.resolvedExpectedArtifacts`` each expected artifact with its
``boundArtifact``, which later stages read (a deploy's image:
``${trigger.resolvedExpectedArtifacts[0].boundArtifact.reference}``). The matching is
:mod:`apps.pipelines.artifacts`', which stages share (findArtifactFromExecution, requiredArtifactIds).
"""

from __future__ import annotations

from apps.pipelines.artifacts import ArtifactMissing, bind_expected, expected_artifact_problems
from apps.pipelines.models import Execution, Pipeline
from apps.pipelines.problems import Problem

__all__ = ["ArtifactMissing", "artifact_problems", "bind"]


def artifact_problems(document: dict) -> list[Problem]:
    """Problems with a document's ``expectedArtifacts``: objects with an id, regexes that compile."""
    return expected_artifact_problems(document.get("expectedArtifacts"), "/expectedArtifacts")


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
        bound, how = bind_expected(expected, incoming, where="the trigger",
                                   prior=lambda expected_id=expected_id: _prior(pipeline, expected_id))
        if how == "default":
            artifacts.append(bound)
        resolved.append({**expected, "boundArtifact": bound})
    return artifacts, resolved
