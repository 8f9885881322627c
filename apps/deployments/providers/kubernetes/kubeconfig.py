"""Reading and checking kubeconfig documents: bounded in size, YAML, with the contexts, clusters and users
a client needs, and (for contents kept in the database) nothing that reads the worker's files or runs a command
on it.

Used by the account services when an account is saved (each message goes at the field's JSON pointer) and by
the client when it connects, so a kubeconfig is checked the same way both times.
"""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

MAX_KUBECONFIG_BYTES = 256 * 1024
# What a kubeconfig's entries may hold that makes a client read a file on the worker or run a program there.
# Contents stored in an account (changed by its managers through the API) may not: a manager could otherwise
# read any file the worker can (a token sent as a bearer to a server of their choosing) or run any command.
WORKER_REFERENCES = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile", "exec", "auth-provider")),
}


class KubeconfigInvalid(ValueError):
    """A kubeconfig that cannot be used; the message says why (without quoting its contents)."""


def parse_kubeconfig(text: str) -> dict:
    """The kubeconfig document of ``text``; KubeconfigInvalid when it is too large, not YAML or not a mapping."""
    if len(text.encode("utf-8")) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigInvalid(f"is over {MAX_KUBECONFIG_BYTES // 1024} KB")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        # The position only: the message of a YAML error can quote the line, which may hold a key.
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise KubeconfigInvalid(f"is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise KubeconfigInvalid("is not a kubeconfig: a mapping with clusters, contexts and users")
    return document


def read_kubeconfig_file(path: str) -> str:
    """The text of the kubeconfig file at ``path``, read within the size bound; KubeconfigInvalid otherwise."""
    try:
        # A FIFO or a device would block the read or never end it.
        if not stat.S_ISREG(Path(path).stat().st_mode):
            raise KubeconfigInvalid("is not a regular file")
        with Path(path).open("rb") as file:
            data = file.read(MAX_KUBECONFIG_BYTES + 1)
    except OSError as error:
        raise KubeconfigInvalid(f"cannot be read: {error.strerror or error}") from None
    if len(data) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigInvalid(f"is over {MAX_KUBECONFIG_BYTES // 1024} KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KubeconfigInvalid("is not UTF-8 text") from None


def _named(config: dict, section: str) -> dict[str, dict]:
    entries = config.get(section) or []
    if not isinstance(entries, list):
        raise KubeconfigInvalid(f"{section} must be a list")
    named: dict[str, dict] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigInvalid(f"{section}[{index}] must be a mapping with a name")
        named[entry["name"]] = entry
    return named


def context_names(config: dict) -> list[str]:
    """The names of the kubeconfig's contexts, in its order."""
    return list(_named(config, "contexts"))


def check_context(config: dict, context: str) -> str:
    """The context a client of ``config`` uses (``context``, else the current one), checked: it exists and names a
    cluster with a server and, if any, a user that exist. KubeconfigInvalid otherwise."""
    contexts = _named(config, "contexts")
    chosen = context or config.get("current-context") or ""
    if not isinstance(chosen, str) or not chosen:
        raise KubeconfigInvalid("has no current-context: name one of its contexts "
                                f"({', '.join(contexts) or 'it has none'})")
    if chosen not in contexts:
        raise KubeconfigInvalid(f"has no context {chosen!r}; its contexts: {', '.join(contexts) or 'none'}")
    body = contexts[chosen].get("context")
    if not isinstance(body, dict) or not isinstance(body.get("cluster"), str):
        raise KubeconfigInvalid(f"context {chosen!r} names no cluster")
    cluster = _named(config, "clusters").get(body["cluster"])
    if cluster is None:
        raise KubeconfigInvalid(f"context {chosen!r} names the cluster {body['cluster']!r}, which it does not have")
    if not isinstance(cluster.get("cluster"), dict) or not isinstance(cluster["cluster"].get("server"), str):
        raise KubeconfigInvalid(f"cluster {body['cluster']!r} has no server")
    user = body.get("user")
    if user not in (None, "") and (not isinstance(user, str) or user not in _named(config, "users")):
        raise KubeconfigInvalid(f"context {chosen!r} names the user {user!r}, which it does not have")
    return chosen


def worker_references(config: dict) -> list[str]:
    """Where the kubeconfig reads a file of the worker or runs a command there, e.g. ``users[0].user.exec``."""
    found = []
    for section, (body_key, keys) in WORKER_REFERENCES.items():
        for index, entry in enumerate(config.get(section) or []):
            body = entry.get(body_key) if isinstance(entry, dict) else None
            if isinstance(body, dict):
                found += [f"{section}[{index}].{body_key}.{key}" for key in keys if key in body]
    return found
