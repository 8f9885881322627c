"""Creating and changing Kubernetes cluster accounts, with Spinnaker's Clouddriver field names.

A document has the keys of the API and of the YAML file's ``kubernetes`` section: ``name``,
``kubeconfigContents`` (write-only), ``kubeconfigFile`` (a path on the worker), ``context``,
``serviceAccount`` (the worker pod's own credentials), ``namespaces``, ``omitNamespaces``, ``kinds``,
``omitKinds``. Exactly one credential source: a document naming one (contents, a file, or
``serviceAccount: true``) replaces the account's; a document naming none keeps it. A key left out keeps what the
account holds.

The kubeconfig is checked on save as the client reads it on use (apps/deployments/providers/kubernetes/
kubeconfig.py): at most 256 KB of YAML, with the context chosen (``context``, else its current one) naming a
cluster with a server. Contents stored in the database may hold only data, no path to a worker file and no
command (``exec``, ``auth-provider``): an account's managers change them. Pointing an account at credentials the
worker holds (``kubeconfigFile``, ``serviceAccount``) needs an administrator, as adding an account does.

Saving the same document again changes nothing (no write, no audit event): the contents, encrypted with a fresh
token each time, are compared by an HMAC of their plain text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import PermissionRefused, is_superuser
from apps.deployments.credentials import encrypted
from apps.deployments.models import KubernetesAccount
from apps.deployments.providers.kubernetes.kubeconfig import (
    KubeconfigInvalid,
    check_context,
    parse_kubeconfig,
    read_kubeconfig_file,
    worker_references,
)
from apps.deployments.services.accounts import _common_problems, check_create_account, check_manage_account
from apps.pipelines.problems import InvalidDocument, Problem

KUBERNETES_KEYS = ("name", "kubeconfigContents", "kubeconfigFile", "context", "serviceAccount", "namespaces",
                   "omitNamespaces", "kinds", "omitKinds")
SOURCE_KEYS = ("kubeconfigContents", "kubeconfigFile", "serviceAccount")
LIST_FIELDS = {"namespaces": "namespaces", "omitNamespaces": "omit_namespaces", "kinds": "kinds",
               "omitKinds": "omit_kinds"}
# Clouddriver refuses an account naming both of a pair.
EXCLUSIVE_LISTS = (("namespaces", "omitNamespaces"), ("kinds", "omitKinds"))
MAX_LIST_ENTRIES = 200
# An RFC 1123 label, as Kubernetes names a namespace.
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# A kind (``Deployment``, ``deployment``) or a custom resource's kind with its group (``CronTab.stable.example.com``).
KIND_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}(\.[a-z0-9]([a-z0-9.-]{0,188}[a-z0-9])?)?$")
NAMESPACE_ENTRY = (NAMESPACE_PATTERN, "a namespace: lowercase letters, digits and hyphens, at most 63")
KIND_ENTRY = (KIND_PATTERN, "a kind, e.g. Deployment or deployment")
LIST_ENTRIES = {"namespaces": NAMESPACE_ENTRY, "omitNamespaces": NAMESPACE_ENTRY, "kinds": KIND_ENTRY,
                "omitKinds": KIND_ENTRY}
FILE_PATTERN = re.compile(r"^/[^\x00:]{1,1023}$")
CONTEXT_PATTERN = re.compile(r"^[^\x00\s]{1,253}$")


def kubeconfig_digest(contents: str) -> str:
    """An HMAC of kubeconfig contents under a key derived from SECRET_KEY: equal for equal contents, and no help
    to someone holding the database but not the key."""
    key = hashlib.sha256(b"cdplatform kubeconfig digest\0" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, contents.encode("utf-8"), hashlib.sha256).hexdigest()


# --- Validation ---------------------------------------------------------------------------------


def _list_problems(document: dict, key: str) -> list[Problem]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        return [Problem(f"/{key}", "must be a list of names")]
    if len(value) > MAX_LIST_ENTRIES:
        return [Problem(f"/{key}", f"must have at most {MAX_LIST_ENTRIES} entries")]
    pattern, hint = LIST_ENTRIES[key]
    return [Problem(f"/{key}/{index}", f"must be {hint}") for index, entry in enumerate(value)
            if not isinstance(entry, str) or not pattern.match(entry)]


def _string_problems(document: dict) -> list[Problem]:
    problems = []
    contents = document.get("kubeconfigContents")
    if contents is not None and not isinstance(contents, str):
        problems.append(Problem("/kubeconfigContents", "must be the text of a kubeconfig"))
    for key, pattern, hint in (("kubeconfigFile", FILE_PATTERN, "must be an absolute path (with no ':')"),
                               ("context", CONTEXT_PATTERN, "must be a context name of at most 253 characters")):
        value = document.get(key)
        if value is not None and (not isinstance(value, str) or (value and not pattern.match(value))):
            problems.append(Problem(f"/{key}", hint))
    if "serviceAccount" in document and not isinstance(document["serviceAccount"], bool):
        problems.append(Problem("/serviceAccount", "must be true or false"))
    return problems


def _named_sources(document: dict) -> list[str]:
    return [key for key in SOURCE_KEYS if document.get(key)]


def _kept_sources(document: dict, existing: KubernetesAccount | None) -> list[str]:
    """The sources an account keeps when the document names none: those it has that the document does not clear."""
    if existing is None:
        return []
    held = {"kubeconfigContents": existing.has_kubeconfig, "kubeconfigFile": bool(existing.kubeconfig_file),
            "serviceAccount": existing.in_cluster}
    return [key for key in SOURCE_KEYS if held[key] and key not in document]


def _source_problems(document: dict, existing: KubernetesAccount | None) -> list[Problem]:
    named = _named_sources(document)
    if len(named) > 1:
        return [Problem(f"/{key}", f"give one credential source, not {' and '.join(named)}") for key in named]
    if not named and not _kept_sources(document, existing):
        return [Problem("", "needs one credential source: kubeconfigContents, kubeconfigFile or serviceAccount: true")]
    if (named == ["serviceAccount"] or (not named and existing is not None and existing.in_cluster)) \
            and document.get("context"):
        return [Problem("/context", "is for a kubeconfig; serviceAccount uses the worker pod's credentials")]
    return []


def _kubeconfig_problems(document: dict, existing: KubernetesAccount | None) -> list[Problem]:
    """The kubeconfig the document names (or, for a new context, the one the account keeps) parses and has the
    context. Contents kept encrypted are not reopened here: the client checks them again when it connects."""
    named = _named_sources(document)
    context = document["context"] if "context" in document else (existing.context if existing else "")
    kept_file = existing.kubeconfig_file if existing is not None and "context" in document else ""
    if named == ["kubeconfigContents"]:
        pointer, text = "/kubeconfigContents", document["kubeconfigContents"]
    elif named == ["kubeconfigFile"] or (not named and kept_file):
        pointer = "/kubeconfigFile"
        try:
            text = read_kubeconfig_file(document.get("kubeconfigFile") or kept_file)
        except KubeconfigInvalid as error:
            return [Problem(pointer, str(error))]
    else:
        return []
    try:
        kubeconfig = parse_kubeconfig(text)
    except KubeconfigInvalid as error:
        return [Problem(pointer, str(error))]
    problems = []
    if pointer == "/kubeconfigContents":
        references = worker_references(kubeconfig)
        if references:
            problems.append(Problem(pointer, "may hold only data, no worker file or command "
                                             f"({', '.join(references)}): use kubeconfigFile for such a kubeconfig"))
    try:
        check_context(kubeconfig, context or "")
    except KubeconfigInvalid as error:
        problems.append(Problem("/context" if context else pointer, str(error)))
    return problems


def _exclusive_problems(document: dict, existing: KubernetesAccount | None) -> list[Problem]:
    problems = []
    for included, omitted in EXCLUSIVE_LISTS:
        values = [document[key] if key in document else (getattr(existing, LIST_FIELDS[key]) if existing else [])
                  for key in (included, omitted)]
        if all(values) and all(isinstance(value, list) for value in values):
            pointer = f"/{omitted}" if omitted in document else f"/{included}"
            problems.append(Problem(pointer, f"give {included} or {omitted}, not both"))
    return problems


def kubernetes_account_problems(document, *, existing: KubernetesAccount | None = None) -> list[Problem]:
    """Why ``document`` cannot describe (or change ``existing`` into) a Kubernetes account; [] when it can."""
    problems = _common_problems(document, KUBERNETES_KEYS, creating=existing is None)
    if not isinstance(document, dict):
        return problems
    problems += _string_problems(document)
    for key in LIST_FIELDS:
        problems += _list_problems(document, key)
    if problems:
        return problems
    return (_source_problems(document, existing) or _kubeconfig_problems(document, existing)) \
        + _exclusive_problems(document, existing)


# --- Saving -------------------------------------------------------------------------------------


def check_worker_credentials(actor: Actor | str, document: dict, existing: KubernetesAccount | None) -> None:
    """Refuse anyone but an administrator pointing an account at credentials the worker holds (a file, the pod's
    service account): a manager of one account could otherwise borrow any credentials the worker can read."""
    user = Actor.of(actor).user
    if user is None or is_superuser(user):
        return
    changes_file = document.get("kubeconfigFile") and document["kubeconfigFile"] != (
        existing.kubeconfig_file if existing else "")
    changes_pod = document.get("serviceAccount") is True and not (existing and existing.in_cluster)
    if changes_file or changes_pod:
        raise PermissionRefused("Only an administrator may point an account at credentials the worker holds "
                                "(kubeconfigFile, serviceAccount).", field="kubeconfigFile" if changes_file
                                else "serviceAccount")


def _changes(document: dict, account: KubernetesAccount) -> dict[str, Any]:
    """The attributes of ``account`` the document changes, with their new values (secrets encrypted)."""
    wanted: dict[str, Any] = {}
    named = _named_sources(document)
    if named:
        wanted.update(kubeconfig_file="", in_cluster=False)
        if named != ["kubeconfigContents"]:
            wanted.update(kubeconfig="", kubeconfig_digest="")
    contents = document.get("kubeconfigContents")
    if contents and kubeconfig_digest(contents) != account.kubeconfig_digest:
        wanted.update(kubeconfig=encrypted(contents, "/kubeconfigContents"), kubeconfig_digest=kubeconfig_digest(
            contents))
    if document.get("kubeconfigFile"):
        wanted["kubeconfig_file"] = document["kubeconfigFile"]
    if document.get("serviceAccount"):
        wanted.update(in_cluster=True, context="")
    if "context" in document:
        wanted["context"] = document["context"] or ""
    for key, attribute in LIST_FIELDS.items():
        if key in document:
            wanted[attribute] = list(document[key] or [])
    return {attribute: value for attribute, value in wanted.items() if getattr(account, attribute) != value}


def do_save_kubernetes_account(document: dict, *, actor: Actor | str) -> tuple[KubernetesAccount, bool]:
    """Create the Kubernetes account ``document["name"]`` or change it (audited when anything changed); returns it
    and whether it was new. InvalidDocument (JSON pointers into the document) when it cannot be saved."""
    if not isinstance(document, dict):
        raise InvalidDocument([Problem("", "must be an object")])
    name = document.get("name")
    existing = None
    if isinstance(name, str) and "\x00" not in name:
        existing = KubernetesAccount.objects.filter(name=name).first()
    if existing is None:
        check_create_account(actor)
    else:
        check_manage_account(actor, existing)
    check_worker_credentials(actor, document, existing)
    problems = kubernetes_account_problems(document, existing=existing)
    if problems:
        raise InvalidDocument(problems)
    with transaction.atomic():
        account = existing or KubernetesAccount(name=document["name"])
        changes = _changes(document, account)
        if existing is not None and not changes:
            return account, False
        for attribute, value in changes.items():
            setattr(account, attribute, value)
        account.save()
        fields = sorted(key for key in document if key != "name")
        record("kubernetes_account.changed" if existing else "kubernetes_account.created", actor,
               object_type="kubernetes_account", object_id=account.name, details={"fields": fields})
    return account, existing is None

