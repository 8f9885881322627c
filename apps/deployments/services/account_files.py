"""Loading accounts from a YAML file (``manage.py accounts load FILE``): idempotent, all or nothing.

The format (the README's): lists, ``registries`` and ``docker`` (and those
added with :func:`register_account_section`: this app's ``kubernetes``, canary
analysis' ``prometheus``), of account documents as the API takes them; and sections of another shape, each
with its own reading of entries (``artifacts``: Clouddriver's ``artifacts.github.accounts``, ...).
Registries are saved first, so an engine may name a registry of the same file. Loading the same file again
changes nothing; a file with any problem changes nothing either, and every
problem is reported with its JSON pointer into the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from apps.accounts.audit import Actor
from apps.deployments.services.accounts import do_save_docker_account, do_save_registry_account
from apps.pipelines.problems import InvalidDocument, Problem, pointer_join

MAX_FILE_BYTES = 1_000_000
MAX_ACCOUNTS = 1000
# What a section's reading of its value gives: each account document with its JSON pointer into the file, and the
# problems of the section's own shape.
Entries = tuple[list[tuple[str, Any]], list[Problem]]


def list_entries(value, pointer: str) -> Entries:
    """A section that is a list of account documents (``registries``, ``docker``, ...)."""
    if not value:
        return [], []
    if not isinstance(value, list):
        return [], [Problem(pointer, "must be a list of accounts")]
    if len(value) > MAX_ACCOUNTS:
        return [], [Problem(pointer, f"has more than {MAX_ACCOUNTS} accounts")]
    return [(f"{pointer}/{index}", entry) for index, entry in enumerate(value)], []


@dataclass(frozen=True)
class Section:
    """A section of the file: the service saving each of its accounts, ``save(document, actor=)`` returning
    (account, created), and how its value is read into account documents."""

    save: Callable[..., tuple[Any, bool]]
    entries: Callable[[Any, str], Entries] = list_entries


SECTIONS: dict[str, Section] = {
    "registries": Section(do_save_registry_account), "docker": Section(do_save_docker_account),
}


def register_account_section(name: str, save: Callable[..., tuple[Any, bool]],
                             entries: Callable[[Any, str], Entries] = list_entries) -> None:
    """Let a file hold accounts of another kind under ``name``: a list of documents, or what ``entries(value,
    pointer)`` reads from the section's value. Called from an app's ``ready()``; sections load in the order
    registered, after these two."""
    SECTIONS[name] = Section(save, entries)


@dataclass
class LoadReport:
    """What a load did: the names created, those whose documents were applied again, and those it left as they
    were (an account whose save writes nothing when nothing changed, as a Kubernetes account's does)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _outcome(report: LoadReport, account, created: bool, started) -> list[str]:
    if created:
        return report.created
    updated_at = getattr(account, "updated_at", None)
    return report.unchanged if updated_at is not None and updated_at < started else report.updated


def parse_accounts_file(text: str) -> dict:
    """The file's document, checked for shape; InvalidDocument (pointers into the file) otherwise."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise InvalidDocument([Problem("", f"the file is over {MAX_FILE_BYTES} bytes")])
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidDocument([Problem("", f"is not valid YAML: {error}")]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise InvalidDocument([Problem("", f"must be a mapping with the sections {', '.join(SECTIONS)}")])
    problems = [Problem(pointer_join("", key), f"is not a section; use {', '.join(SECTIONS)}")
                for key in document if key not in SECTIONS]
    for name, section in SECTIONS.items():
        problems += section.entries(document.get(name), f"/{name}")[1]
    if problems:
        raise InvalidDocument(problems)
    return document


def load_accounts(text: str, *, actor: Actor | str) -> LoadReport:
    """Create or change every account of the file in one transaction; nothing changes when any is refused."""
    document = parse_accounts_file(text)
    report, problems = LoadReport(), list[Problem]()
    started = timezone.now()
    with transaction.atomic():
        for name, section in SECTIONS.items():
            for pointer, entry in section.entries(document.get(name), f"/{name}")[0]:
                try:
                    account, created = section.save(entry, actor=actor)
                except InvalidDocument as error:
                    problems.extend(Problem(f"{pointer}{problem.pointer}", problem.message)
                                    for problem in error.problems)
                    continue
                _outcome(report, account, created, started).append(f"{name}/{account.name}")
        if problems:
            transaction.set_rollback(True)
    if problems:
        raise InvalidDocument(problems)
    return report
