"""Metrics accounts as governing models: read (see it), use (query it in a canary stage), manage.

Using or managing implies seeing. An account with no grants is for superusers and operator
identities (the command line, pipelines started by the system) only, as deployment accounts are.
"""

from apps.accounts.permissions import MANAGE, READ, register_governing
from apps.canary.models import PrometheusAccount, PrometheusAccountGroupPermission, PrometheusAccountUserPermission

USE = "use"
ACCOUNT_ACTIONS = (READ, USE, MANAGE)


def register() -> None:
    """Register the metrics account model with the permission chokepoint (called from the app's ``ready()``)."""
    view, use, manage = "view_prometheusaccount", "use_prometheusaccount", "manage_prometheusaccount"
    register_governing(PrometheusAccount, allowing={READ: (view, use, manage), USE: (use,), MANAGE: (manage,)},
                       granted_as={READ: view, USE: use, MANAGE: manage},
                       user_grants=PrometheusAccountUserPermission, group_grants=PrometheusAccountGroupPermission,
                       manage_action=MANAGE)
