"""The artifacts a stage may bind, as Orca gathers them: the trigger's, and those the stages upstream produced.

A stage names the ones it requires by expected-artifact id (``requiredArtifactIds``, or ``requiredArtifacts``
entries ``{expectedArtifactId}``) or inline (``requiredArtifacts`` entries ``{artifact: {...}}``). An id is
bound by the trigger (``resolvedExpectedArtifacts``) or by an upstream stage that declares it in its
``expectedArtifacts``: the first artifact that stage produced matching the declared type and name.
"""

from __future__ import annotations

from apps.deployments.stages.common import StageRefused

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


def _matches(artifact: dict, wanted: dict) -> bool:
    return all(artifact.get(key) == wanted[key] for key in ("type", "name") if wanted.get(key))


def available_artifacts(stage) -> list[dict]:
    """Every artifact of the trigger and of the upstream stages, nearest stage first, the trigger's last."""
    trigger = stage.execution.trigger or {}
    found = [artifact for row in upstream_stages(stage) for artifact in produced(row)]
    found += [artifact for artifact in trigger.get("artifacts") or [] if isinstance(artifact, dict)]
    return found


def bound_artifact(stage, expected_id: str, field: str) -> dict:
    """The artifact bound to the expected-artifact id; StageRefused naming ``field`` when none is."""
    for resolved in (stage.execution.trigger or {}).get("resolvedExpectedArtifacts") or []:
        if isinstance(resolved, dict) and resolved.get("id") == expected_id and resolved.get("boundArtifact"):
            return resolved["boundArtifact"]
    for row in upstream_stages(stage):
        for expected in (row.context or {}).get("expectedArtifacts") or []:
            if isinstance(expected, dict) and expected.get("id") == expected_id:
                wanted = expected.get("matchArtifact") or {}
                match = next((artifact for artifact in produced(row) if _matches(artifact, wanted)), None)
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
