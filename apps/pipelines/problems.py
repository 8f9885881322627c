"""Validation problems, each located by a JSON pointer into the document, and refused actions."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (RFC 6901 JSON pointer) and what."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"

    def as_dict(self) -> dict:
        return {"pointer": self.pointer, "message": self.message}


class InvalidDocument(ValueError):
    """Raised when a pipeline document or a request based on one is refused; carries every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class ActionRefused(Exception):
    """A request to act on an execution that its current state does not allow; the message says why."""


def pointer_join(base: str, *parts: str | int) -> str:
    """Append reference tokens to a JSON pointer, escaping ``~`` and ``/`` as RFC 6901 requires."""
    escaped = [str(part).replace("~", "~0").replace("/", "~1") for part in parts]
    return "/".join([base, *escaped]) if escaped else base
