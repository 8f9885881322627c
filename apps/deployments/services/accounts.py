"""Creating, changing and deleting Docker engine and registry accounts, and deciding who may deploy to them
(Kubernetes and artifact accounts are saved by apps/deployments/services/kubernetes_accounts.py and
artifact_accounts.py, and deleted and governed here).

An account document is a dict with the keys of the API and of the YAML file
(``name``, ``host``, ``registries``, ... for an engine; ``name``,
``address``, ``insecure``, ``username``, ``password`` for a registry).
Credentials (``password``, ``clientKey``) go in and never come out: they are
kept as Fernet tokens (apps/pipelines/secrets/crypto.py). A key left out
keeps what the account holds; ``password: ""`` clears it.

Creating an account needs a superuser or an operator identity (the command
line); changing or deleting one needs ``manage`` on it; deploying needs
``deploy`` (:func:`check_deploy`).
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import DEPLOY, MANAGE, PermissionRefused, is_superuser, require
from apps.deployments.credentials import encrypted
from apps.deployments.models import (
    LOCAL_ACCOUNT,
    ArtifactAccount,
    DockerAccount,
    KubernetesAccount,
    RegistryAccount,
    account_name_validator,
)
from apps.pipelines.problems import ActionRefused, InvalidDocument, Problem

HOST_PATTERN = re.compile(r"^(unix:///[^\s\x00]{1,200}|tcp://[A-Za-z0-9.\-\[\]:]{1,200})$")
ADDRESS_PATTERN = re.compile(r"^[A-Za-z0-9.\-]{1,200}(:\d{1,5})?$")
MAX_SECRET_LENGTH = 16384
MAX_PEM_LENGTH = 16384
DOCKER_KEYS = ("name", "host", "tls", "tlsVerify", "caCert", "clientCert", "clientKey", "registries")
REGISTRY_KEYS = ("name", "address", "insecure", "username", "password")
# The object type an account's audit events name.
AUDIT_TYPES = {DockerAccount: "docker_account", RegistryAccount: "registry_account",
               KubernetesAccount: "kubernetes_account", ArtifactAccount: "artifact_account"}


def check_create_account(actor: Actor | str) -> None:
    """Refuse anyone but a superuser or an operator identity: accounts are the platform's infrastructure."""
    user = Actor.of(actor).user
    if user is not None and not is_superuser(user):
        raise PermissionRefused("Only an administrator may add a deployment account.")


def check_manage_account(actor: Actor | str, account) -> None:
    """Refuse a user who may not change or delete ``account`` (needs manage on it)."""
    user = Actor.of(actor).user
    if user is not None:
        require(user, MANAGE, account)


def check_deploy(actor: Actor | str, account, *, field: str = "") -> None:
    """Refuse a user who may not deploy to ``account`` (needs deploy on it); an operator identity may."""
    user = Actor.of(actor).user
    if user is not None:
        require(user, DEPLOY, account, field=field)


# --- Validation ---------------------------------------------------------------------------------


def _string(document: dict, key: str, problems: list, *, pattern=None, limit: int = 255, hint: str = "") -> None:
    value = document.get(key)
    if value is None:
        return
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        problems.append(Problem(f"/{key}", f"must be a string of at most {limit} characters"))
    elif pattern is not None and value and not pattern.match(value):
        problems.append(Problem(f"/{key}", hint))


def _boolean(document: dict, key: str, problems: list) -> None:
    if key in document and not isinstance(document[key], bool):
        problems.append(Problem(f"/{key}", "must be true or false"))


def _common_problems(document, keys: tuple[str, ...], *, creating: bool) -> list[Problem]:
    if not isinstance(document, dict):
        return [Problem("", "must be an object")]
    problems = [Problem(f"/{key}", f"is not a field of this account; use {', '.join(keys)}")
                for key in document if key not in keys]
    name = document.get("name")
    if creating and name in (None, ""):
        problems.append(Problem("/name", "is required"))
    elif name is not None:
        try:
            if not isinstance(name, str):
                raise ValidationError("must be a string")
            account_name_validator(name)
        except ValidationError as error:
            problems.extend(Problem("/name", message) for message in error.messages)
    return problems


def docker_account_problems(document, *, creating: bool) -> list[Problem]:
    """Why ``document`` cannot describe a Docker engine account (JSON pointers into it); [] when it can."""
    problems = _common_problems(document, DOCKER_KEYS, creating=creating)
    if not isinstance(document, dict):
        return problems
    _string(document, "host", problems, pattern=HOST_PATTERN,
            hint="must be unix:///path/to/docker.sock or tcp://host:port (blank: DOCKER_HOST or the default socket)")
    for key in ("caCert", "clientCert", "clientKey"):
        _string(document, key, problems, limit=MAX_PEM_LENGTH)
    for key in ("tls", "tlsVerify"):
        _boolean(document, key, problems)
    registries = document.get("registries")
    if registries is not None:
        if not isinstance(registries, list) or not all(isinstance(name, str) for name in registries):
            problems.append(Problem("/registries", "must be a list of registry account names"))
        else:
            known = set(RegistryAccount.objects.filter(name__in=[n for n in registries if "\x00" not in n])
                        .values_list("name", flat=True))
            problems.extend(Problem(f"/registries/{index}", f"no registry account {name!r}")
                            for index, name in enumerate(registries) if name not in known)
    return problems


def registry_account_problems(document, *, creating: bool) -> list[Problem]:
    """Why ``document`` cannot describe a registry account (JSON pointers into it); [] when it can."""
    problems = _common_problems(document, REGISTRY_KEYS, creating=creating)
    if not isinstance(document, dict):
        return problems
    if creating and not document.get("address"):
        problems.append(Problem("/address", "is required: host[:port] of the registry"))
    _string(document, "address", problems, pattern=ADDRESS_PATTERN,
            hint="must be host[:port], with no scheme or path (e.g. 127.0.0.1:5000)")
    _string(document, "username", problems)
    _string(document, "password", problems, limit=MAX_SECRET_LENGTH)
    _boolean(document, "insecure", problems)
    return problems


# --- Saving -------------------------------------------------------------------------------------


def _check_save(model, document, actor, problems_of) -> tuple[Any, bool]:
    if not isinstance(document, dict):
        raise InvalidDocument([Problem("", "must be an object")])
    name = document.get("name")
    existing = None
    if isinstance(name, str) and "\x00" not in name:
        existing = model.objects.filter(name=name).first()
    if existing is None:
        check_create_account(actor)
    else:
        check_manage_account(actor, existing)
    problems = problems_of(document, creating=existing is None)
    if problems:
        raise InvalidDocument(problems)
    return existing, existing is None


def do_save_registry_account(document: dict, *, actor: Actor | str) -> tuple[RegistryAccount, bool]:
    """Create the registry account ``document["name"]`` or change it (audited); returns it and whether it was new."""
    existing, created = _check_save(RegistryAccount, document, actor, registry_account_problems)
    with transaction.atomic():
        account = existing or RegistryAccount(name=document["name"])
        for key, attribute in (("address", "address"), ("insecure", "insecure"), ("username", "username")):
            if key in document:
                setattr(account, attribute, document[key])
        if "password" in document:
            account.credentials = encrypted(document["password"] or "", "/password")
        account.save()
        record("registry_account.created" if created else "registry_account.changed", actor,
               object_type="registry_account", object_id=account.name,
               details={"fields": sorted(key for key in document if key != "name")})
    return account, created


def do_save_docker_account(document: dict, *, actor: Actor | str) -> tuple[DockerAccount, bool]:
    """Create the engine account ``document["name"]`` or change it (audited); returns it and whether it was new."""
    existing, created = _check_save(DockerAccount, document, actor, docker_account_problems)
    plain = {"host": "host", "tls": "tls", "tlsVerify": "tls_verify", "caCert": "ca_cert", "clientCert": "client_cert"}
    with transaction.atomic():
        account = existing or DockerAccount(name=document["name"])
        for key, attribute in plain.items():
            if key in document:
                setattr(account, attribute, document[key] if document[key] is not None else "")
        if "clientKey" in document:
            account.client_key = encrypted(document["clientKey"] or "", "/clientKey")
        account.save()
        if "registries" in document:
            account.registries.set(RegistryAccount.objects.filter(name__in=document["registries"]))
        record("docker_account.created" if created else "docker_account.changed", actor,
               object_type="docker_account", object_id=account.name,
               details={"fields": sorted(key for key in document if key != "name")})
    return account, created


def do_delete_account(account: DockerAccount | RegistryAccount | KubernetesAccount | ArtifactAccount, *,
                      actor: Actor | str) -> None:
    """Delete an engine, registry, Kubernetes or artifact account (needs manage on it), audited. An engine that
    still runs server groups or load balancers is refused (ActionRefused): destroy them first; its destroyed
    groups' history goes with it."""
    check_manage_account(actor, account)
    kind = AUDIT_TYPES[type(account)]
    with transaction.atomic():
        if isinstance(account, DockerAccount):
            live = account.server_groups.filter(destroyed_at=None).count()
            balancers = account.load_balancers.count()
            if live or balancers:
                raise ActionRefused(f"account {account.name} still has {live} live server group(s) and {balancers} "
                                    "load balancer(s): destroy them first")
            account.server_groups.all().delete()
        record(f"{kind}.deleted", actor, object_type=kind, object_id=account.name)
        account.delete()


def local_docker_account() -> DockerAccount:
    """The zero-configuration account ``local``: the engine of DOCKER_HOST, or the default socket."""
    account, _ = DockerAccount.objects.get_or_create(name=LOCAL_ACCOUNT, defaults={"host": ""})
    return account
