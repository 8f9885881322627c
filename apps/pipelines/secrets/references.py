"""``${#secret('name')}`` in a pipeline document: finding the references, and where they may be written.

A reference is a whole ``${...}`` of its own, naming the secret with a
string literal: ``"Bearer ${#secret('deploy-token')}"``. It cannot be
combined with other expressions (``${#secret('a') + 'x'}``,
``${#secret(parameters.name)}``): the value must never pass through anything
whose result is stored. It may be written only in the fields a stage type
resolves itself (``StageType.secret_fields``: a webhook's url, headers,
payload, cancel endpoint and cancel payload); anywhere else it is refused
when the pipeline is saved. These checks read only the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from apps.pipelines.expressions import expression_texts
from apps.pipelines.problems import Problem, pointer_join

# A mention of the function at all, and the one form a reference may take.
_MENTION = re.compile(r"#\s*secret\s*\(")
_REFERENCE = re.compile(r"""^\s*#secret\(\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)")\s*\)\s*$""")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

FORM_MESSAGE = (
    "a secret is referenced as a whole ${#secret('name')} of its own, with the name in quotes; "
    "it cannot be combined with other expressions"
)


def reference_text(name: str) -> str:
    """How a reference to ``name`` is written: what the stored context shows in place of the value."""
    return "${#secret('" + name + "')}"


def mentions_secret(text: str) -> bool:
    """Whether a string uses ``#secret`` at all (cheap: most strings have no ``${``)."""
    return isinstance(text, str) and "${" in text and _MENTION.search(text) is not None


def names_in(text: str) -> tuple[list[str], list[str]]:
    """The secret names referenced in ``text`` and a message per malformed use of ``#secret``."""
    names, problems = [], []
    for expression in expression_texts(text):
        if not _MENTION.search(expression):
            continue
        match = _REFERENCE.match(expression)
        if match is None:
            problems.append(f"${{{expression}}}: {FORM_MESSAGE}")
            continue
        name = match["single"] if match["single"] is not None else match["double"]
        if not _NAME.match(name):
            problems.append(f"{name!r} is not a secret name (letters, digits, '.', '_', '-'; at most 100)")
        else:
            names.append(name)
    return names, problems


def strings_with_secrets(value: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Each string inside ``value`` that mentions ``#secret``, with its pointer (no recursion: documents nest deep)."""
    pending = [(value, pointer)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, str):
            if mentions_secret(node):
                yield where, node
        elif isinstance(node, dict):
            pending.extend((item, pointer_join(where, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((item, pointer_join(where, index)) for index, item in reversed(list(enumerate(node))))


def _allowed_pointers(doc: dict, secret_fields: Callable[[str], tuple[str, ...]],
                      trigger_fields: Callable[[str], tuple[str, ...]]) -> list[str]:
    """The pointers under which references may be written: each stage's and each trigger's secret fields,
    and notifications' addresses."""
    allowed = []
    for key, fields_of in (("stages", secret_fields), ("triggers", trigger_fields)):
        items = doc.get(key)
        for index, item in enumerate(items if isinstance(items, list) else []):
            kind = item.get("type") if isinstance(item, dict) else None
            for field in fields_of(kind) if isinstance(kind, str) else ():
                allowed.append(pointer_join(f"/{key}", index, field))
    # A notification's address may be a credential (a Teams or Google Chat webhook URL).
    stages = doc.get("stages")
    for index, stage in enumerate(stages if isinstance(stages, list) else []):
        notifications = stage.get("notifications") if isinstance(stage, dict) else None
        for position in range(len(notifications) if isinstance(notifications, list) else 0):
            allowed.append(pointer_join("/stages", index, "notifications", position, "address"))
    notifications = doc.get("notifications")
    for position in range(len(notifications) if isinstance(notifications, list) else 0):
        allowed.append(pointer_join("/notifications", position, "address"))
    return allowed


def _is_under(pointer: str, prefixes: list[str]) -> bool:
    return any(pointer == prefix or pointer.startswith(prefix + "/") for prefix in prefixes)


def references(doc: Any) -> list[tuple[str, str]]:
    """Every well-formed reference in a document as (pointer, secret name), in document order."""
    found = []
    for where, text in strings_with_secrets(doc):
        found += [(where, name) for name in names_in(text)[0]]
    return found


def reference_problems(
    doc: Any, secret_fields: Callable[[str], tuple[str, ...]],
    trigger_fields: Callable[[str], tuple[str, ...]] = lambda kind: (),
) -> list[Problem]:
    """A problem for each malformed reference, and for each reference outside a stage's or trigger's secret fields.

    ``secret_fields`` gives a stage type's secret fields by its name (none for an unknown type),
    ``trigger_fields`` a trigger type's.
    """
    if not isinstance(doc, dict):
        return []
    problems, allowed = [], None
    for where, text in strings_with_secrets(doc):
        names, malformed = names_in(text)
        problems += [Problem(where, message) for message in malformed]
        if allowed is None:
            allowed = _allowed_pointers(doc, secret_fields, trigger_fields)
        if names and not _is_under(where, allowed):
            problems.append(Problem(where, "a secret can be used only in the fields a stage resolves itself: "
                                           "a webhook stage's url, customHeaders, payload, cancelEndpoint and "
                                           "cancelPayload, a trigger's secret and a notification's address"))
    return problems
