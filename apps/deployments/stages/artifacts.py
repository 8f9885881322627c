"""The artifacts a stage may bind, as Orca gathers them: the trigger's, and those the stages upstream produced.

A stage names the ones it requires by expected-artifact id (``requiredArtifactIds``, or ``requiredArtifacts``
entries ``{expectedArtifactId}``) or inline (``requiredArtifacts`` entries ``{artifact: {...}}``). An id is
bound by the trigger (``resolvedExpectedArtifacts``), by an upstream stage that bound it itself (its outputs'
``resolvedExpectedArtifacts``: findArtifactFromExecution's), or by an upstream stage that declares it in its
``expectedArtifacts``: the first artifact that stage produced matching its ``matchArtifact`` (the matcher of
:mod:`apps.pipelines.artifacts`, the triggers' too).
"""

from __future__ import annotations

from apps.deployments.stages.common import StageRefused
from apps.pipelines.artifacts import artifact_matches

# Where stages put the artifacts they produce: bake's ``artifacts``, deployManifest's created ones.
PRODUCED_KEYS = ("artifacts", "outputs.createdArtifacts")


def upstream_stages(stage) -> list:
    """The stages this one (or its top-level parent) comes after, nearest first."""
    from apps.pipelines.models import StageExecution

    rows = list(StageExecution.objects.filter(execution_id=stage.execution_id))
    by_ref = {row.ref_id: row for row in rows}
    by_pk = {row.pk: row for row in rows}
    top = stage
    while top.parent_id is not None and top.parent_id in by_pk:
        top = by_pk[top.parent_id]
    found, frontier, seen = [], list(top.requisite_ref_ids or []), set()
    while frontier:
        ref_id = frontier.pop(0)
        row = by_ref.get(ref_id)
        if row is None or ref_id in seen:
            continue
        seen.add(ref_id)
        found.append(row)
        frontier.extend(row.requisite_ref_ids or [])
    return found


def produced(row) -> list[dict]:
    return [artifact for key in PRODUCED_KEYS for artifact in (row.outputs or {}).get(key) or []
            if isinstance(artifact, dict)]


def available_artifacts(stage) -> list[dict]:
    """Every artifact of the trigger and of the upstream stages, nearest stage first, the trigger's last."""
    trigger = stage.execution.trigger or {}
    found = [artifact for row in upstream_stages(stage) for artifact in produced(row)]
    found += [artifact for artifact in trigger.get("artifacts") or [] if isinstance(artifact, dict)]
    return found


def resolved_artifact(resolved_list, expected_id: str) -> dict | None:
    """The ``boundArtifact`` of the entry of a ``resolvedExpectedArtifacts`` list with the id, or None."""
    for resolved in resolved_list if isinstance(resolved_list, list) else []:
        if isinstance(resolved, dict) and resolved.get("id") == expected_id and \
                isinstance(resolved.get("boundArtifact"), dict):
            return resolved["boundArtifact"]
    return None


def _produced_match(row, expected_id: str) -> dict | None:
    bound = resolved_artifact((row.outputs or {}).get("resolvedExpectedArtifacts"), expected_id)
    if bound is not None:
        return bound
    for expected in (row.context or {}).get("expectedArtifacts") or []:
        if isinstance(expected, dict) and expected.get("id") == expected_id:
            wanted = expected.get("matchArtifact")
            wanted = wanted if isinstance(wanted, dict) else {}
            match = next((artifact for artifact in produced(row) if artifact_matches(wanted, artifact)), None)
            if match is not None:
                return match
    return None


def bound_artifact(stage, expected_id: str, field: str) -> dict:
    """The artifact bound to the expected-artifact id; StageRefused naming ``field`` when none is."""
    bound = resolved_artifact((stage.execution.trigger or {}).get("resolvedExpectedArtifacts"), expected_id)
    if bound is not None:
        return bound
    for row in upstream_stages(stage):
        match = _produced_match(row, expected_id)
        if match is not None:
            return match
    raise StageRefused(f"{field}: no artifact is bound to the expected artifact {expected_id!r} (by the trigger "
                       "or a stage upstream)")


def required_artifacts(stage) -> list[dict]:
    """The artifacts the stage requires, bound; StageRefused naming the entry that cannot be."""
    context = stage.context
    found = [bound_artifact(stage, expected_id, f"requiredArtifactIds.{index}")
             for index, expected_id in enumerate(context.get("requiredArtifactIds") or [])]
    for index, entry in enumerate(context.get("requiredArtifacts") or []):
        if isinstance(entry.get("artifact"), dict) and entry["artifact"].get("type"):
            found.append(entry["artifact"])
        elif entry.get("expectedArtifactId"):
            found.append(bound_artifact(stage, entry["expectedArtifactId"], f"requiredArtifacts.{index}"))
    return found
