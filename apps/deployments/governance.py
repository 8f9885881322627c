"""Deployment accounts as governing models (Fiat's account permissions): read, deploy, manage.

``read`` sees the account (and what runs on it); ``deploy`` lets pipelines
run as the user, and the user themselves, deploy, resize, enable, disable,
destroy on it (an engine), apply, patch, scale and delete manifests on it (a
Kubernetes cluster) or push to and pull from it (a registry);
``manage`` changes the account and grants on it. Deploying or managing
implies seeing. An account with no grants is for superusers and operator
identities (the command line, pipelines started by the system) only.
"""

from apps.accounts.permissions import DEPLOY, MANAGE, READ, register_governing
from apps.deployments.models import (
    DockerAccount,
    DockerAccountGroupPermission,
    DockerAccountUserPermission,
    KubernetesAccount,
    KubernetesAccountGroupPermission,
    KubernetesAccountUserPermission,
    RegistryAccount,
    RegistryAccountGroupPermission,
    RegistryAccountUserPermission,
)

ACCOUNT_ACTIONS = (READ, DEPLOY, MANAGE)


def _actions(model_name: str) -> tuple[dict, dict]:
    view, deploy, manage = f"view_{model_name}", f"deploy_{model_name}", f"manage_{model_name}"
    allowing = {READ: (view, deploy, manage), DEPLOY: (deploy,), MANAGE: (manage,)}
    return allowing, {READ: view, DEPLOY: deploy, MANAGE: manage}


def register() -> None:
    """Register the account models with the permission chokepoint (called from the app's ``ready()``)."""
    for model, users, groups in (
        (DockerAccount, DockerAccountUserPermission, DockerAccountGroupPermission),
        (RegistryAccount, RegistryAccountUserPermission, RegistryAccountGroupPermission),
        (KubernetesAccount, KubernetesAccountUserPermission, KubernetesAccountGroupPermission),
    ):
        allowing, granted_as = _actions(model.__name__.lower())
        register_governing(model, allowing=allowing, granted_as=granted_as, user_grants=users, group_grants=groups,
                           manage_action=MANAGE)
