"""Creating, changing and deleting metrics accounts and canary configs; who may use them.

Metrics accounts are the platform's infrastructure, as deployment accounts are: creating one
needs an administrator (or an operator identity), changing or deleting one ``manage`` on it,
querying it in a canary stage ``use`` (:func:`check_use_account`). Credentials (``password``,
``bearerToken``) go in and never come out. Canary configs belong to an application: reading
them needs read on it, creating, changing and deleting write.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import MANAGE, WRITE, PermissionRefused, is_superuser, require
from apps.canary.documents import config_problems
from apps.canary.governance import USE
from apps.canary.models import CanaryConfig, PrometheusAccount
from apps.deployments.credentials import encrypted
from apps.deployments.models import account_name_validator
from apps.pipelines.outbound import check_url_syntax
from apps.pipelines.problems import InvalidDocument, Problem

ACCOUNT_KEYS = ("name", "url", "username", "password", "bearerToken")
URL_PATTERN = re.compile(r"^https?://[^\s\x00]{1,490}$")
MAX_SECRET_LENGTH = 16384
MAX_CONFIG_BYTES = 256 * 1024


# --- Metrics accounts ---------------------------------------------------------------------------


def check_create_account(actor: Actor | str) -> None:
    """Refuse anyone but a superuser or an operator identity."""
    user = Actor.of(actor).user
    if user is not None and not is_superuser(user):
        raise PermissionRefused("Only an administrator may add a metrics account.")


def check_manage_account(actor: Actor | str, account: PrometheusAccount) -> None:
    """Refuse a user who may not change or delete ``account``."""
    user = Actor.of(actor).user
    if user is not None:
        require(user, MANAGE, account)


def check_use_account(actor: Actor | str, account: PrometheusAccount, *, field: str = "") -> None:
    """Refuse a user who may not query ``account``; the account PROMETHEUS_URL describes is anyone's."""
    user = Actor.of(actor).user
    if user is not None and account.pk is not None:
        require(user, USE, account, field=field)


def account_problems(document, *, creating: bool) -> list[Problem]:
    """Why ``document`` cannot describe a Prometheus account (JSON pointers into it); [] when it can."""
    if not isinstance(document, dict):
        return [Problem("", "must be an object")]
    problems = [Problem(f"/{key}", f"is not a field of this account; use {', '.join(ACCOUNT_KEYS)}")
                for key in document if key not in ACCOUNT_KEYS]
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
    url = document.get("url")
    if creating and not url:
        problems.append(Problem("/url", "is required: the Prometheus server's base URL"))
    elif url is not None:
        refusal = check_url_syntax(url) if isinstance(url, str) else "must be a string"
        if not isinstance(url, str) or not URL_PATTERN.match(url) or refusal:
            problems.append(Problem("/url", refusal or "must be an http:// or https:// URL of at most 500 characters"))
    for key, limit in (("username", 255), ("password", MAX_SECRET_LENGTH), ("bearerToken", MAX_SECRET_LENGTH)):
        value = document.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit or "\x00" in value):
            problems.append(Problem(f"/{key}", f"must be a string of at most {limit} characters"))
    return problems


def do_save_account(document: dict, *, actor: Actor | str) -> tuple[PrometheusAccount, bool]:
    """Create the metrics account ``document["name"]`` or change it (audited); returns it and whether it was new."""
    if not isinstance(document, dict):
        raise InvalidDocument([Problem("", "must be an object")])
    name = document.get("name")
    existing = None
    if isinstance(name, str) and "\x00" not in name:
        existing = PrometheusAccount.objects.filter(name=name).first()
    if existing is None:
        check_create_account(actor)
    else:
        check_manage_account(actor, existing)
    problems = account_problems(document, creating=existing is None)
    if problems:
        raise InvalidDocument(problems)
    with transaction.atomic():
        account = existing or PrometheusAccount(name=document["name"])
        for key in ("url", "username"):
            if key in document:
                setattr(account, key, document[key] or "")
        if "password" in document:
            account.password = encrypted(document["password"] or "", "/password")
        if "bearerToken" in document:
            account.bearer_token = encrypted(document["bearerToken"] or "", "/bearerToken")
        account.save()
        record("prometheus_account.created" if existing is None else "prometheus_account.changed", actor,
               object_type="prometheus_account", object_id=account.name,
               details={"fields": sorted(key for key in document if key != "name")})
    return account, existing is None


def do_delete_account(account: PrometheusAccount, *, actor: Actor | str) -> None:
    """Delete a metrics account (needs manage on it), audited."""
    check_manage_account(actor, account)
    with transaction.atomic():
        record("prometheus_account.deleted", actor, object_type="prometheus_account", object_id=account.name)
        account.delete()


# --- Canary configs -----------------------------------------------------------------------------


def check_write_configs(actor: Actor | str, application) -> None:
    """Refuse a user who may not change the application's canary configs (needs write on it)."""
    user = Actor.of(actor).user
    if user is not None:
        require(user, WRITE, application)


def _size_problems(document: Any) -> list[Problem]:
    import json

    try:
        size = len(json.dumps(document))
    except (TypeError, ValueError):
        return [Problem("", "must be a JSON document")]
    return [Problem("", f"is over {MAX_CONFIG_BYTES} bytes")] if size > MAX_CONFIG_BYTES else []


def do_save_config(application, document: Any, *, actor: Actor | str,
                   config: CanaryConfig | None = None) -> CanaryConfig:
    """Create a canary config of ``application`` from a Kayenta document, or replace ``config``'s (needs write).

    InvalidDocument with JSON pointers when the document is not a config this platform can judge by,
    or when its name is another config's.
    """
    check_write_configs(actor, application)
    problems = _size_problems(document) or config_problems(document)
    if problems:
        raise InvalidDocument(problems)
    name = document["name"]
    clash = CanaryConfig.objects.filter(application=application, name=name)
    if config is not None:
        clash = clash.exclude(pk=config.pk)
    if clash.exists():
        raise InvalidDocument([Problem("/name", f"the application has another canary config named {name!r}")])
    try:
        with transaction.atomic():
            config = config or CanaryConfig(application=application)
            created = config.pk is None
            config.name, config.document = name, document
            config.updated_by = Actor.of(actor).username
            config.save()
            record("canary_config.created" if created else "canary_config.changed", actor, application=application,
                   object_type="canary_config", object_id=str(config.pk), details={"name": name})
    except IntegrityError:
        raise InvalidDocument([Problem("/name", f"the application has another canary config named {name!r}")]) from None
    return config


def do_delete_config(config: CanaryConfig, *, actor: Actor | str) -> None:
    """Delete a canary config (needs write on its application), audited."""
    check_write_configs(actor, config.application)
    with transaction.atomic():
        record("canary_config.deleted", actor, application=config.application, object_type="canary_config",
               object_id=str(config.pk),
               details={"name": config.name})
        config.delete()
