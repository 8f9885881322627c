"""What the deployments' stage types share: the providers they serve, whom the stage acts as, the accounts it
may use, field checks."""

from __future__ import annotations

from typing import ClassVar

from apps.accounts.permissions import PermissionRefused
from apps.deployments.models import LOCAL_ACCOUNT, ArtifactAccount, DockerAccount, KubernetesAccount, RegistryAccount
from apps.deployments.providers.registry import PLATFORM_PROVIDER, built_provider, built_providers
from apps.deployments.services.accounts import check_deploy, local_docker_account
from apps.deployments.services.artifact_accounts import check_use_artifact_account
from apps.pipelines.checks import execution_actor
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageType

# Where Spinnaker documents name a stage's cloud provider: the stage itself (Deck writes both of the first
# two), or each of its clusters or load balancers (``provider`` in older exports).
PROVIDER_KEYS = ("cloudProvider", "cloudProviderType", "provider")


class ProviderStage(StageType):
    """A stage type that acts on one cloud provider's resources: its field checks and its tasks are those of
    the providers in ``serves``. A stage naming another provider (``cloudProvider: aws``) loads, as
    Spinnaker's does, and fails when it starts with a message naming the provider; naming none means the
    platform's own, ``docker``. ``items`` names the list whose entries each name a provider (``clusters``)."""

    serves: ClassVar[tuple[str, ...]] = (PLATFORM_PROVIDER,)
    items: ClassVar[str | None] = None

    def named_providers(self, stage: dict) -> list[tuple[str, object]]:
        """(pointer, value) of each provider the stage names, itself or in its ``items``."""
        named: list[tuple[str, object]] = [(f"/{key}", stage[key]) for key in PROVIDER_KEYS
                                           if stage.get(key) not in (None, "")]
        entries = stage.get(self.items) if self.items else None
        if isinstance(entries, list):
            named += [(f"/{self.items}/{index}/{key}", entry[key]) for index, entry in enumerate(entries)
                      if isinstance(entry, dict) for key in PROVIDER_KEYS if entry.get(key) not in (None, "")]
        return named

    def unavailable(self, stage: dict) -> str | None:
        for pointer, value in self.named_providers(stage):
            if not isinstance(value, str) or is_expression(value) or value in self.serves:
                continue  # a wrong type is refused by missing_fields; an expression is known when it starts
            field = pointer.lstrip("/").replace("/", ".")
            if built_provider(value) is None:
                return (f"{field}: {value!r} is a cloud provider this platform does not have "
                        f"(built: {', '.join(built_providers())}), so this {self.type_name} stage cannot run here")
            return (f"{field}: the {self.type_name} stage runs on {', '.join(self.serves)} here, "
                    f"not on {value!r}")
        return None

    def missing_fields(self, stage: dict, pointer: str) -> list[Problem]:
        wrong = [Problem(pointer + where, "must be a string naming a cloud provider, e.g. docker")
                 for where, value in self.named_providers(stage) if not isinstance(value, str) or len(value) > 100]
        return wrong + super().missing_fields(stage, pointer)


# How a refusal names each kind of account.
ACCOUNT_KINDS = {DockerAccount: "Docker engine", RegistryAccount: "registry", KubernetesAccount: "Kubernetes"}


class StageRefused(Exception):
    """The stage may not go on (no such account, no permission, bad input): the message says why."""


def _account(model, name, stage, field: str):
    if not isinstance(name, str) or not name or "\x00" in name:
        raise StageRefused(f"{field}: an account name is required")
    if model is DockerAccount and name == LOCAL_ACCOUNT:
        account = local_docker_account()  # there with no configuration, even if someone deleted the row
    else:
        account = model.objects.filter(name=name).first()
    kind = ACCOUNT_KINDS[model]
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


def kubernetes_account(stage, name, field: str = "account") -> KubernetesAccount:
    """The Kubernetes account ``name``, if the execution's identity may deploy to it; StageRefused otherwise."""
    return _account(KubernetesAccount, name, stage, field)


def artifact_account(stage, name, field: str, kind: str) -> ArtifactAccount:
    """The artifact account ``name``, if it reads artifacts of type ``kind`` and the execution's identity may
    use it; StageRefused naming ``field`` otherwise."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 63:
        raise StageRefused(f"{field}: must be an artifact account's name")
    account = ArtifactAccount.objects.filter(name=name).first()
    if account is None:
        raise StageRefused(f"{field}: there is no artifact account {name!r}")
    if account.type != kind:
        raise StageRefused(f"{field}: artifact account {name!r} reads {account.type} artifacts, not {kind}")
    try:
        check_use_artifact_account(execution_actor(stage.execution), account, field=field)
    except PermissionRefused as refused:
        raise StageRefused(f"{field}: {refused.message}") from None
    return account


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
