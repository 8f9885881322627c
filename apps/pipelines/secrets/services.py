"""Setting, replacing and deleting application secrets, and looking them up: the one way in for every entry point.

Managing a secret needs ``write`` on its application (its writers and
owners); ``read`` shows the names and nothing else. Every change is audited
(``secret.set``, ``secret.deleted``) with the name, never the value. Lookups
are in ``store.py``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import WRITE, require
from apps.pipelines.models import Application, Secret, secret_name_validator
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.secrets import crypto
from apps.pipelines.secrets.references import references


def check_permission(user: Actor | str, action: str, obj) -> None:
    """As ``apps/pipelines/checks.py`` decides for every action: the actor's user must be allowed; an
    operator identity (no user) always is. Managing a secret has no state rule, only this."""
    account = Actor.of(user).user
    if account is not None:
        require(account, action, obj)


# A shorter value could not be told apart from ordinary text when it is redacted.
MIN_VALUE_LENGTH = 4
MAX_VALUE_LENGTH = 16384


def value_problems(value) -> list[Problem]:
    """Why a value cannot be a secret's, at ``/value``; [] when it can."""
    if not isinstance(value, str):
        return [Problem("/value", "must be a string")]
    if not MIN_VALUE_LENGTH <= len(value) <= MAX_VALUE_LENGTH:
        return [Problem("/value", f"must be {MIN_VALUE_LENGTH} to {MAX_VALUE_LENGTH} characters long "
                                  f"(it has {len(value)}): a shorter one could not be redacted from what stages store")]
    if "\x00" in value:
        return [Problem("/value", "must not contain a NUL character")]
    return []


def name_problems(name) -> list[Problem]:
    """Why ``name`` cannot name a secret, at ``/name``; [] when it can."""
    if not isinstance(name, str) or not name:
        return [Problem("/name", "is required: a secret name")]
    try:
        secret_name_validator(name)
    except ValidationError as error:
        return [Problem("/name", message) for message in error.messages]
    return []


def do_set_secret(application: Application, name: str, value: str, *, user: Actor | str) -> tuple[Secret, bool]:
    """Create the secret ``name`` of ``application``, or replace its value (write), audited; returns it and
    whether it was created. Refused (InvalidDocument, nothing written) for a bad name or value, or when no
    encryption key is configured (at ``/value``)."""
    check_permission(user, WRITE, application)
    problems = name_problems(name) + value_problems(value)
    if problems:
        raise InvalidDocument(problems)
    try:
        ciphertext = crypto.encrypt(value)
    except crypto.SecretsUnavailable as error:
        raise InvalidDocument([Problem("/value", str(error))]) from None
    actor = Actor.of(user)
    try:
        with transaction.atomic():
            secret = Secret.objects.select_for_update().filter(application=application, name=name).first()
            created = secret is None
            if created:
                secret = Secret(application=application, name=name, created_by=actor.username)
            secret.ciphertext, secret.updated_by = ciphertext, actor.username
            secret.save()
            record("secret.set", actor, application=application, object_type="secret", object_id=secret.pk,
                   details={"name": name, "created": created})
    except IntegrityError:
        raise InvalidDocument([Problem("/name", "a secret with this name was just created; try again")]) from None
    return secret, created


def do_delete_secret(secret: Secret, *, user: Actor | str) -> None:
    """Delete a secret (write on its application), audited. Pipelines that use it fail when they reach it."""
    check_permission(user, WRITE, secret.application)
    with transaction.atomic():
        record("secret.deleted", user, application=secret.application, object_type="secret",
               object_id=secret.pk, details={"name": secret.name})
        secret.delete()


def unknown_secret_problems(document) -> list[Problem]:
    """A problem at each reference to a secret the document's application does not have (one query, none
    when the document references no secret)."""
    found = references(document) if isinstance(document, dict) else []
    if not found:
        return []
    name = document.get("application")
    existing = set(Secret.objects.filter(application__name__iexact=name, name__in={ref for _, ref in found})
                   .values_list("name", flat=True)) if isinstance(name, str) else set()
    return [
        Problem(pointer, f"application {name!r} has no secret {secret!r}; set it first (the application's "
                         "Secrets page, or POST /api/applications/<name>/secrets/)")
        for pointer, secret in found if secret not in existing
    ]


def check_secret_references(document) -> None:
    """Refuse (InvalidDocument) a document referencing a secret its application does not have."""
    problems = unknown_secret_problems(document)
    if problems:
        raise InvalidDocument(problems)

