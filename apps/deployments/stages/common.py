"""What the deployments' stage types share: whom the stage acts as, the accounts it may use, field checks."""

from __future__ import annotations

from apps.accounts.permissions import PermissionRefused
from apps.deployments.models import LOCAL_ACCOUNT, DockerAccount, RegistryAccount
from apps.deployments.services.accounts import check_deploy, local_docker_account
from apps.pipelines.checks import execution_actor
from apps.pipelines.problems import Problem


class StageRefused(Exception):
    """The stage may not go on (no such account, no permission, bad input): the message says why."""


def _account(model, name, stage, field: str):
    if not isinstance(name, str) or not name or "\x00" in name:
        raise StageRefused(f"{field}: an account name is required")
    if model is DockerAccount and name == LOCAL_ACCOUNT:
        account = local_docker_account()  # there with no configuration, even if someone deleted the row
    else:
        account = model.objects.filter(name=name).first()
    kind = "Docker engine" if model is DockerAccount else "registry"
    if account is None:
        raise StageRefused(f"{field}: there is no {kind} account {name!r}")
    try:
        check_deploy(execution_actor(stage.execution), account, field=field)
    except PermissionRefused as refused:
        raise StageRefused(f"{field}: {refused.message}") from None
    return account


def docker_account(stage, name, field: str = "account") -> DockerAccount:
    """The engine account ``name``, if the execution's identity may deploy to it; StageRefused otherwise."""
    return _account(DockerAccount, name, stage, field)


def registry_account(stage, name, field: str = "account") -> RegistryAccount:
    """The registry account ``name``, if the execution's identity may push to and pull from it."""
    return _account(RegistryAccount, name, stage, field)


def is_expression(value) -> bool:
    return isinstance(value, str) and "${" in value


def string_problems(stage: dict, pointer: str, keys: tuple[str, ...], limit: int = 1000) -> list[Problem]:
    """Problems with keys that must hold text when given."""
    return [Problem(f"{pointer}/{key}", f"must be a string of at most {limit} characters")
            for key in keys if key in stage and stage[key] is not None
            and (not isinstance(stage[key], str) or len(stage[key]) > limit)]


def mapping_problems(stage: dict, pointer: str, key: str) -> list[Problem]:
    value = stage.get(key)
    if value is None or is_expression(value):
        return []
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str | int | float | bool)
                                              for k, v in value.items()):
        return [Problem(f"{pointer}/{key}", "must be an object of names to values")]
    return []
