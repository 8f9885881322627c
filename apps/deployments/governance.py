"""Deployment accounts as governing models (Fiat's account permissions): read, deploy, manage.

``read`` sees the account (and what runs on it); ``deploy`` lets pipelines
run as the user, and the user themselves, deploy, resize, enable, disable,
destroy on it (an engine), apply, patch, scale and delete manifests on it (a
Kubernetes cluster) or push to and pull from it (a registry);
``manage`` changes the account and grants on it. Deploying or managing
implies seeing. An account with no grants is for superusers and operator
identities (the command line, pipelines started by the system) only.

Artifact accounts have ``use`` in place of ``deploy``, as metrics accounts do: pipelines run as the user read
artifacts with the account's credentials. Since a pipeline names the URL the credentials go to, ``use`` is
worth what the credentials are worth: grant it as you would hand out the token.
"""

from apps.accounts.permissions import DEPLOY, MANAGE, READ, register_governing
from apps.deployments.models import (
    ArtifactAccount,
    ArtifactAccountGroupPermission,
    ArtifactAccountUserPermission,
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
USE = "use"
ARTIFACT_ACCOUNT_ACTIONS = (READ, USE, MANAGE)


def _actions(model_name: str, acting: str = DEPLOY) -> tuple[dict, dict]:
    view, act, manage = f"view_{model_name}", f"{acting}_{model_name}", f"manage_{model_name}"
    allowing = {READ: (view, act, manage), acting: (act,), MANAGE: (manage,)}
    return allowing, {READ: view, acting: act, MANAGE: manage}


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
    allowing, granted_as = _actions("artifactaccount", USE)
    register_governing(ArtifactAccount, allowing=allowing, granted_as=granted_as,
                       user_grants=ArtifactAccountUserPermission, group_grants=ArtifactAccountGroupPermission,
                       manage_action=MANAGE)
