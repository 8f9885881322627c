"""Applications as a governing model: their actions, the permissions that allow each, their grant tables."""

from apps.accounts.permissions import EXECUTE, MANAGE, READ, WRITE, register_governing
from apps.pipelines.models import Application, ApplicationGroupPermission, ApplicationUserPermission

# Writing, running or managing implies seeing; managing grants (the owners') is implied by nothing else.
ALLOWING = {
    READ: ("view_application", "change_application", "execute_application", "manage_application"),
    WRITE: ("change_application",),
    EXECUTE: ("execute_application",),
    MANAGE: ("manage_application",),
}
GRANTED_AS = {
    READ: "view_application", WRITE: "change_application", EXECUTE: "execute_application",
    MANAGE: "manage_application",
}
APPLICATION_ACTIONS = tuple(ALLOWING)


def register() -> None:
    """Register Application with the permission chokepoint (called from the app's ``ready()``)."""
    register_governing(
        Application,
        allowing=ALLOWING,
        granted_as=GRANTED_AS,
        user_grants=ApplicationUserPermission,
        group_grants=ApplicationGroupPermission,
        manage_action=MANAGE,
    )
