"""Using secrets in the worker, just before a request: resolve from the stage's definition, redact the rest.

The stored context of a stage keeps ``${#secret('name')}`` where its
definition has one (see ``scope.py``). Just before the stage sends a request
it asks :func:`using_secrets` for a context of its own: each of its secret
fields whose *definition* references a secret is evaluated again, from that
definition, with the values. Only the definition, written by the
application's writers, can reference a secret: a value that arrives as data
(a parameter, an upstream output, a response) reading ``${#secret('x')}``
is never evaluated, so it stays text.

Inside the block every log record has the values replaced by ``***``; an
exception whose text carries one is raised again redacted; and the stage
passes its result through :meth:`SecretUse.redact`, so nothing it stores
(context, outputs, its error) holds a value — a response echoing a token
included. A stage with no reference in its secret fields costs nothing: no
query, no copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from apps.pipelines.secrets import redaction
from apps.pipelines.secrets.references import references, strings_with_secrets
from apps.pipelines.secrets.store import secret_values

if TYPE_CHECKING:
    from apps.pipelines.models import StageExecution


class SecretScope(Protocol):
    """What resolving needs of a stage's expression scope (``apps/pipelines/scope.py``, which imports this package)."""

    execution: Any

    def with_secrets(self, values: dict[str, str]) -> SecretScope: ...

    def evaluate(self, value: Any, extra_variables: dict | None = None) -> Any: ...

NO_SECRETS = redaction.Redactor(())


class SecretRedactedError(Exception):
    """An error raised while a stage used secrets, whose message carried one: the same message, redacted."""


class SyntheticStageSecrets(Exception):
    """A synthetic stage's definition is planned from data, so it may not use secrets."""


@dataclasses.dataclass(frozen=True)
class SecretUse:
    """The context a stage sends its request from (its secret fields resolved), and what redacts the values."""

    context: dict
    redactor: redaction.Redactor

    def redact(self, result: Any) -> Any:
        """A task result (or any JSON-shaped value) with every secret value in it replaced by ``***``."""
        if not self.redactor:
            return result
        if dataclasses.is_dataclass(result) and not isinstance(result, type):
            return dataclasses.replace(
                result,
                **{field.name: self.redactor.value(getattr(result, field.name)) for field in dataclasses.fields(result)
                   if field.name in ("context", "outputs", "error")},
            )
        return self.redactor.value(result)


def referenced_fields(stage: StageExecution, fields: tuple[str, ...]) -> dict[str, Any]:
    """The stage's secret fields whose definition references a secret, as written there."""
    definition = stage.definition if isinstance(stage.definition, dict) else {}
    return {key: definition[key] for key in fields if key in definition and next(
        strings_with_secrets(definition[key]), None) is not None}


@contextmanager
def using_secrets(stage: StageExecution, scope: SecretScope, fields: tuple[str, ...]) -> Iterator[SecretUse]:
    """A context with ``fields`` resolved from the stage's definition, valid only inside the block."""
    written = referenced_fields(stage, fields)
    if not written:
        yield SecretUse(stage.context, NO_SECRETS)
        return
    if stage.parent_id is not None:
        raise SyntheticStageSecrets("a synthetic stage cannot use secrets: its definition is planned from data")
    names = {name for _, name in references(written)}
    values = secret_values(scope.execution.application_id, names)
    redactor = redaction.Redactor(values.values())
    resolved = {key: scope.with_secrets(values).evaluate(value) for key, value in written.items()}
    context = {**stage.context, **resolved, **_copies(stage.context, resolved, redactor)}
    with redaction.active(redactor):
        try:
            yield SecretUse(context, redactor)
        except Exception as error:
            if redactor.contains(str(error)):
                raise SecretRedactedError(f"{type(error).__name__}: {redactor.text(str(error))}") from None
            raise


def _copies(stored: dict, resolved: dict, redactor: redaction.Redactor) -> dict:
    """Values the stage stored that are a redacted copy of a resolved field (a status URL that is the call's
    URL), given back resolved: the stage made them from the definition's own value."""
    masked = {redactor.text(value): value for value in resolved.values() if isinstance(value, str)}
    return {key: masked[value] for key, value in stored.items()
            if key not in resolved and isinstance(value, str) and value in masked and masked[value] != value}
