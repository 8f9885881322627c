"""Finding the server groups a stage acts on: Spinnaker's dynamic targets, the cluster, the image upstream."""

from __future__ import annotations

from apps.deployments.models import ServerGroup
from apps.deployments.services.server_groups import live_groups
from apps.deployments.stages.common import StageRefused

TARGETS = ("current_asg_dynamic", "ancestor_asg_dynamic", "oldest_asg_dynamic")


def cluster_groups(account, cluster: str) -> list[ServerGroup]:
    """The cluster's live server groups, newest first."""
    return list(live_groups(account, cluster).select_related("account", "application").order_by("-created_at"))


def target_group(account, context: dict) -> ServerGroup:
    """The group a stage names: ``serverGroupName``, or ``target`` among the cluster's (newest, previous, oldest)."""
    cluster = context.get("cluster") or ""
    name = context.get("serverGroupName") or context.get("serverGroup")
    if name:
        found = live_groups(account, name.rsplit("-v", 1)[0]).filter(name=name).select_related(
            "account", "application").first()
        if found is None:
            raise StageRefused(f"serverGroupName: no live server group {name!r} in account {account.name!r}")
        return found
    target = context.get("target")
    if target not in TARGETS:
        raise StageRefused(f"target: must be one of {', '.join(TARGETS)}, or name serverGroupName")
    groups = cluster_groups(account, cluster)
    index = {"current_asg_dynamic": 0, "ancestor_asg_dynamic": 1, "oldest_asg_dynamic": -1}[target]
    if not groups or (index == 1 and len(groups) < 2):
        raise StageRefused(f"target: cluster {cluster!r} has no {target.split('_')[0]} server group")
    return groups[index]


def upstream_image(stage) -> str | None:
    """The image of the nearest upstream ``bake`` or ``findImage`` stage (Spinnaker's deploy without an image)."""
    from apps.pipelines.models import StageExecution

    stages = {row.ref_id: row for row in StageExecution.objects.filter(execution_id=stage.execution_id)}
    top = stage
    while top.parent_id is not None:
        top = next((row for row in stages.values() if row.pk == top.parent_id), top)
        if top.parent_id is None:
            break
    frontier, seen = list(top.requisite_ref_ids or []), set()
    while frontier:
        ref_id = frontier.pop(0)
        row = stages.get(ref_id)
        if row is None or ref_id in seen:
            continue
        seen.add(ref_id)
        if row.type in ("bake", "findImage") and row.outputs.get("image"):
            return row.outputs["image"]
        frontier.extend(row.requisite_ref_ids or [])
    return None
