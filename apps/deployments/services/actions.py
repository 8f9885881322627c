"""A person's actions on one server group — resize, enable, disable, destroy, rollback — from the API and the pages.

They go through the same services as the stages (:mod:`server_groups`), need
``execute`` on the application and ``deploy`` on the account, are refused
(:class:`ActionRefused`, 409) where Spinnaker refuses — the traffic guard, a
rollback with nothing to restore — and each one done is audited.
"""

from __future__ import annotations

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import EXECUTE
from apps.deployments.models import ServerGroup
from apps.deployments.providers.docker import ProviderError
from apps.deployments.providers.engines import EngineUnreachable
from apps.deployments.services import server_groups as groups
from apps.deployments.services.accounts import check_deploy
from apps.pipelines.checks import check_permission
from apps.pipelines.problems import ActionRefused

ACTIONS = ("resize", "enable", "disable", "destroy", "rollback")
MAX_CAPACITY = 100


class EngineFailed(Exception):
    """The engine or the proxy failed during the action (it may be half done: the clusters page shows the state)."""


def check_server_group_action(actor: Actor | str, group: ServerGroup) -> None:
    """Refuse (PermissionRefused) an actor who may not act on the group: execute on its application, deploy on its
    account."""
    check_permission(actor, EXECUTE, group.application, field="application")
    check_deploy(actor, group.account, field="account")


def previous_group(group: ServerGroup) -> ServerGroup | None:
    """The newest live group of the cluster older than ``group``: what a rollback restores."""
    return (groups.live_groups(group.account, group.cluster).filter(created_at__lt=group.created_at)
            .select_related("account", "application").order_by("-created_at").first())


def _rollback(group: ServerGroup) -> dict:
    restore = previous_group(group)
    if restore is None:
        raise ActionRefused(f"{group.name} has no older server group in cluster {group.cluster} to roll back to")
    if restore.desired < group.desired:
        groups.do_resize(restore, group.desired)
    groups.do_set_traffic(restore, enabled=True)
    if group.enabled:
        groups.do_set_traffic(group, enabled=False)
    return {"restored": restore.name}


def do_server_group_action(group: ServerGroup, action: str, *, actor: Actor | str, desired: int | None = None) -> dict:
    """Do ``action`` on the group as ``actor`` and audit it; what was done (details). Raises PermissionRefused,
    ActionRefused (409: traffic guard, nothing to restore, bad capacity) or EngineFailed."""
    check_server_group_action(actor, group)
    if action not in ACTIONS:
        raise ActionRefused(f"action must be one of {', '.join(ACTIONS)}")
    if group.destroyed_at is not None:
        raise ActionRefused(f"{group.name} is destroyed")
    details: dict = {"account": group.account.name, "cluster": group.cluster}
    try:
        if action == "resize":
            if not isinstance(desired, int) or isinstance(desired, bool) or not 0 <= desired <= MAX_CAPACITY:
                raise ActionRefused(f"capacity.desired must be a whole number from 0 to {MAX_CAPACITY}")
            details.update({"from": group.desired, "to": desired})
            groups.do_resize(group, desired)
        elif action in ("enable", "disable"):
            groups.do_set_traffic(group, enabled=action == "enable")
        elif action == "destroy":
            groups.do_destroy(group)
        else:
            details.update(_rollback(group))
    except groups.TrafficGuarded as guarded:
        raise ActionRefused(str(guarded)) from None
    except (ProviderError, EngineUnreachable) as error:
        raise EngineFailed(str(error)) from None
    record(f"server_group.{action}", actor, application=group.application, object_type="server_group",
           object_id=group.name, details=details)
    return details
