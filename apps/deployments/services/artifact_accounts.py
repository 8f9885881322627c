"""Creating and changing artifact accounts, reading them from an accounts file, and opening their credentials.

An artifact account is Clouddriver's: credentials a stage reads artifacts of one type with. A document has
the keys of the API: ``name``, ``type`` (``git/repo``, ``github/file``, ``gitlab/file``, ``bitbucket/file``,
``http/file``), and the credential fields Clouddriver gives that type:

- ``git/repo``, ``github/file``: ``username`` and ``password`` (or ``usernamePasswordFile``), or ``token``
  (or ``tokenFile``), with an optional ``username`` that git sends with the token;
- ``gitlab/file``: ``token`` or ``tokenFile``;
- ``bitbucket/file``, ``http/file``: ``username`` and ``password``, or ``usernamePasswordFile``.

``password`` and ``token`` go in and never come out (Fernet tokens, apps/deployments/credentials.py).
``tokenFile`` and ``usernamePasswordFile`` (one line, ``username:password``) are files on the worker, read each
time the account is used, so a rotated token needs no save; pointing an account at one needs an administrator.
A key left out keeps what the account holds; ``""`` clears it. An account's type does not change.

A git/repo account reads repositories over http(s) only: Clouddriver's SSH keys (``sshPrivateKeyFilePath``,
``sshKnownHostsFilePath``, ...) are refused, naming the field, because a repository over SSH would bypass the
outbound policy (apps/pipelines/outbound.py), which knows only URLs.

In the accounts file they are Clouddriver's ``artifacts`` section (:func:`artifact_file_entries`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import PermissionRefused, is_superuser, require
from apps.deployments.credentials import decrypted, encrypted
from apps.deployments.governance import USE
from apps.deployments.models import ArtifactAccount, ArtifactType
from apps.deployments.services.account_files import MAX_ACCOUNTS, Entries
from apps.deployments.services.accounts import (
    MAX_SECRET_LENGTH,
    _common_problems,
    check_create_account,
    check_manage_account,
)
from apps.pipelines.problems import InvalidDocument, Problem, pointer_join

TYPES = tuple(ArtifactType.values)
BASIC_KEYS = ("username", "password", "usernamePasswordFile")
TOKEN_KEYS = ("token", "tokenFile")
TYPE_KEYS: dict[str, tuple[str, ...]] = {
    ArtifactType.GIT_REPO: (*BASIC_KEYS, *TOKEN_KEYS),
    ArtifactType.GITHUB_FILE: (*BASIC_KEYS, *TOKEN_KEYS),
    ArtifactType.GITLAB_FILE: TOKEN_KEYS,
    ArtifactType.BITBUCKET_FILE: BASIC_KEYS,
    ArtifactType.HTTP_FILE: BASIC_KEYS,
}
SSH_KEYS = ("sshPrivateKeyFilePath", "sshPrivateKeyPassphrase", "sshPrivateKeyPassphraseCmd", "sshKnownHostsFilePath",
            "sshTrustUnknownHosts")
ARTIFACT_KEYS = ("name", "type", *BASIC_KEYS, *TOKEN_KEYS)
SECRET_KEYS = ("password", "token")
FILE_KEYS = {"tokenFile": "token_file", "usernamePasswordFile": "username_password_file"}
FILE_PATTERN = re.compile(r"^/[^\x00]{1,1023}$")
MAX_CREDENTIAL_FILE_BYTES = 64 * 1024
# The accounts Clouddriver always has, holding no credentials: the names artifacts exported from Deck carry.
BUILT_IN_ACCOUNTS = {"embedded-artifact": "embedded/base64", "no-auth-http-account": "http/file"}
# The accounts file's ``artifacts`` section: Clouddriver's name of each kind, and the type its accounts read.
FILE_KINDS = {"gitRepo": ArtifactType.GIT_REPO, "github": ArtifactType.GITHUB_FILE,
              "gitlab": ArtifactType.GITLAB_FILE, "bitbucket": ArtifactType.BITBUCKET_FILE,
              "http": ArtifactType.HTTP_FILE}


# --- Validation ---------------------------------------------------------------------------------


def _field_problems(document: dict, kind: str) -> list[Problem]:
    problems = [Problem(f"/{key}", "is not supported: git/repo accounts read repositories over http(s), with a "
                                   "username and password or a token") for key in SSH_KEYS if key in document]
    allowed = TYPE_KEYS.get(kind, (*BASIC_KEYS, *TOKEN_KEYS))  # an unknown type is refused on its own
    problems += [Problem(f"/{key}", f"is not a field of a {kind} account; use {', '.join(allowed)}")
                 for key in (*BASIC_KEYS, *TOKEN_KEYS) if key in document and key not in allowed]
    for key in (*BASIC_KEYS, *TOKEN_KEYS):
        value = document.get(key)
        if value is None or any(problem.pointer == f"/{key}" for problem in problems):
            continue
        limit = MAX_SECRET_LENGTH if key in SECRET_KEYS else 1024 if key in FILE_KEYS else 255
        if not isinstance(value, str) or len(value) > limit or "\x00" in value:
            problems.append(Problem(f"/{key}", f"must be a string of at most {limit} characters"))
        elif key in FILE_KEYS and value and not FILE_PATTERN.match(value):
            problems.append(Problem(f"/{key}", "must be an absolute path of a file on the worker"))
    return problems


def _held(document: dict, existing: ArtifactAccount | None) -> dict[str, bool]:
    """Which credential fields the account holds once the document is saved."""
    kept = {"username": existing.username, "password": existing.password, "token": existing.token,
            "tokenFile": existing.token_file, "usernamePasswordFile": existing.username_password_file} \
        if existing is not None else {}
    return {key: bool(document[key]) if key in document else bool(kept.get(key)) for key in (*BASIC_KEYS,
                                                                                             *TOKEN_KEYS)}


def _exclusive_problems(document: dict, existing: ArtifactAccount | None) -> list[Problem]:
    held = _held(document, existing)

    def at(*keys: str) -> str:
        return f"/{next((key for key in keys if key in document and document[key]), keys[0])}"

    problems = []
    for first, second in (("token", "tokenFile"), ("password", "usernamePasswordFile")):
        if held[first] and held[second]:
            problems.append(Problem(at(second, first), f"give {first} or {second}, not both"))
    if (held["token"] or held["tokenFile"]) and (held["password"] or held["usernamePasswordFile"]):
        problems.append(Problem(at("token", "tokenFile", "password", "usernamePasswordFile"),
                                "give a token or a username and password, not both"))
    if held["password"] and not held["username"]:
        problems.append(Problem("/username", "is required with a password"))
    if held["usernamePasswordFile"] and held["username"]:
        problems.append(Problem(at("username", "usernamePasswordFile"),
                                "give username or usernamePasswordFile (which holds username:password), not both"))
    return problems


def artifact_account_problems(document, *, existing: ArtifactAccount | None = None) -> list[Problem]:
    """Why ``document`` cannot describe (or change ``existing`` into) an artifact account; [] when it can."""
    problems = _common_problems(document, (*ARTIFACT_KEYS, *SSH_KEYS), creating=existing is None)
    if not isinstance(document, dict):
        return problems
    problems = [problem for problem in problems if problem.pointer not in {f"/{key}" for key in SSH_KEYS}]
    if document.get("name") in BUILT_IN_ACCOUNTS:
        problems.append(Problem("/name", f"{document['name']} is a built-in account holding no credentials"))
    kind = document.get("type")
    if kind is None and existing is not None:
        kind = existing.type
    elif kind is None:
        problems.append(Problem("/type", f"is required: one of {', '.join(TYPES)}"))
    elif kind not in TYPES:
        problems.append(Problem("/type", f"must be one of {', '.join(TYPES)}"))
    elif existing is not None and kind != existing.type:
        problems.append(Problem("/type", f"{existing.name} reads {existing.type} artifacts; an account's type does "
                                         "not change (delete it and add it again)"))
    problems += _field_problems(document, kind or "")
    return problems or _exclusive_problems(document, existing)


# --- Saving -------------------------------------------------------------------------------------


def check_worker_files(actor: Actor | str, document: dict, existing: ArtifactAccount | None) -> None:
    """Refuse anyone but an administrator pointing an account at a file on the worker: a manager of one account
    could otherwise send any file the worker can read to a server of their choosing."""
    user = Actor.of(actor).user
    if user is None or is_superuser(user):
        return
    for key, attribute in FILE_KEYS.items():
        if document.get(key) and document[key] != (getattr(existing, attribute) if existing else ""):
            raise PermissionRefused(f"Only an administrator may point an account at a file on the worker ({key}).",
                                    field=key)


def check_use_artifact_account(actor: Actor | str, account: ArtifactAccount, *, field: str = "") -> None:
    """Refuse a user who may not read artifacts with ``account`` (needs use on it); an operator identity may."""
    user = Actor.of(actor).user
    if user is not None:
        require(user, USE, account, field=field)


def do_save_artifact_account(document: dict, *, actor: Actor | str) -> tuple[ArtifactAccount, bool]:
    """Create the artifact account ``document["name"]`` or change it (audited); returns it and whether it was
    new. InvalidDocument (JSON pointers into the document) when it cannot be saved."""
    if not isinstance(document, dict):
        raise InvalidDocument([Problem("", "must be an object")])
    name = document.get("name")
    existing = None
    if isinstance(name, str) and "\x00" not in name:
        existing = ArtifactAccount.objects.filter(name=name).first()
    if existing is None:
        check_create_account(actor)
    else:
        check_manage_account(actor, existing)
    check_worker_files(actor, document, existing)
    problems = artifact_account_problems(document, existing=existing)
    if problems:
        raise InvalidDocument(problems)
    with transaction.atomic():
        account = existing or ArtifactAccount(name=document["name"], type=document["type"])
        if "username" in document:
            account.username = document["username"] or ""
        for key in SECRET_KEYS:
            if key in document:
                setattr(account, key, encrypted(document[key] or "", f"/{key}"))
        for key, attribute in FILE_KEYS.items():
            if key in document:
                setattr(account, attribute, document[key] or "")
        account.save()
        record("artifact_account.changed" if existing else "artifact_account.created", actor,
               object_type="artifact_account", object_id=account.name,
               details={"type": account.type, "fields": sorted(key for key in document if key != "name")})
    return account, existing is None


# --- The accounts file's ``artifacts`` section ------------------------------------------------------


def _kind_entries(kind: str, section, pointer: str) -> Entries:
    if section is None:
        return [], []
    if not isinstance(section, dict):
        return [], [Problem(pointer, "must be a mapping: {enabled, accounts}")]
    problems = [Problem(pointer_join(pointer, key), "is not a field here; use enabled, accounts")
                for key in section if key not in ("enabled", "accounts")]
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(Problem(f"{pointer}/enabled", "must be true or false"))
    accounts = section.get("accounts") or []
    if not isinstance(accounts, list) or len(accounts) > MAX_ACCOUNTS:
        problems.append(Problem(f"{pointer}/accounts", f"must be a list of at most {MAX_ACCOUNTS} accounts"))
    if problems or enabled is False:
        return [], problems
    entries = []
    for index, entry in enumerate(accounts):
        where = f"{pointer}/accounts/{index}"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "must be an account: {name, ...}"))
        elif "type" in entry:
            problems.append(Problem(f"{where}/type", f"is the section's: {kind} accounts read {FILE_KINDS[kind]}"))
        else:
            entries.append((where, {**entry, "type": FILE_KINDS[kind].value}))
    return entries, problems


def artifact_file_entries(value, pointer: str) -> Entries:
    """The accounts of an accounts file's ``artifacts`` section, Clouddriver's: ``{gitRepo: {enabled, accounts:
    [...]}, github: ..., gitlab: ..., bitbucket: ..., http: ...}``; a kind with ``enabled: false`` loads nothing."""
    if not value:
        return [], []
    if not isinstance(value, dict):
        return [], [Problem(pointer, f"must be a mapping of {', '.join(FILE_KINDS)}")]
    entries, problems = [], []
    for kind, section in value.items():
        if kind not in FILE_KINDS:
            problems.append(Problem(pointer_join(pointer, str(kind)), f"is not a kind of artifact account here; use "
                                                                      f"{', '.join(FILE_KINDS)}"))
            continue
        found, wrong = _kind_entries(kind, section, f"{pointer}/{kind}")
        entries += found
        problems += wrong
    return entries, problems


# --- Using an account ---------------------------------------------------------------------------


class CredentialsUnavailable(Exception):
    """An account's credentials cannot be opened now (a file on the worker is missing or malformed); the message
    never holds any of them."""


@dataclass(frozen=True)
class ArtifactCredentials:
    """An artifact account's credentials, opened in the worker just before a read. ``repr`` shows no secret."""

    account: str
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def basic(self) -> str:
        """The ``Authorization`` value of HTTP basic auth: the username and the password (or, for git, the
        token, which GitHub, GitLab and Bitbucket take as a password); "" with neither."""
        secret = self.password or self.token
        if not secret:
            return ""
        user = self.username or ("token" if self.token else "")
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")

    def headers(self, kind: str) -> dict[str, str]:
        """The headers that authenticate a read of an artifact of type ``kind`` (Clouddriver's, per type)."""
        if kind == ArtifactType.GITHUB_FILE and self.token:
            return {"Authorization": f"token {self.token}"}
        if kind == ArtifactType.GITLAB_FILE and self.token:
            return {"Private-Token": self.token}
        basic = self.basic()
        return {"Authorization": basic} if basic else {}

    def secrets(self) -> list[str]:
        """Every form in which a credential could appear in a message, longest first."""
        values = [self.password, self.token, self.basic(), self.basic().removeprefix("Basic ")]
        return sorted({value for value in values if value}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` with every credential replaced by ``***``."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text


def _read_file(account: ArtifactAccount, key: str, path: str) -> str:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_CREDENTIAL_FILE_BYTES + 1)
    except OSError as error:
        raise CredentialsUnavailable(f"the {key} of artifact account {account.name} cannot be read: "
                                     f"{error.strerror or type(error).__name__}") from None
    if len(data) > MAX_CREDENTIAL_FILE_BYTES:
        raise CredentialsUnavailable(f"the {key} of artifact account {account.name} is over "
                                     f"{MAX_CREDENTIAL_FILE_BYTES // 1024} KB")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialsUnavailable(f"the {key} of artifact account {account.name} is not UTF-8 text") from None


def open_credentials(account: ArtifactAccount) -> ArtifactCredentials:
    """The account's credentials as they are now: its own, decrypted, or read from its files on the worker."""
    username, password, token = account.username, decrypted(account.password), decrypted(account.token)
    if account.token_file:
        token = _read_file(account, "tokenFile", account.token_file)
    if account.username_password_file:
        line = _read_file(account, "usernamePasswordFile", account.username_password_file).splitlines()
        username, separator, password = (line[0] if line else "").partition(":")
        if not separator or not username:
            raise CredentialsUnavailable(f"the usernamePasswordFile of artifact account {account.name} does not "
                                         "hold username:password")
    return ArtifactCredentials(account.name, username, password, token)
