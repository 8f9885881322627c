"""What a saved pipeline's revisions need: a readable diff, and the identity a new revision must keep."""

from __future__ import annotations

import difflib
import json

from apps.pipelines.problems import Problem


def unified_diff(old, new) -> str:
    """A unified diff of two revisions' documents, pretty-printed with sorted keys so that only changes show."""

    def lines(revision) -> list[str]:
        return json.dumps(revision.definition, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    diff = difflib.unified_diff(
        lines(old), lines(new), fromfile=f"revision {old.number}", tofile=f"revision {new.number}", lineterm=""
    )
    return "\n".join(diff)


def identity_problems(document: dict, pipeline) -> list[Problem]:
    """A saved pipeline keeps its application, name and id: a document naming others is refused."""
    problems = []
    application = document.get("application")
    if isinstance(application, str) and application.lower() != pipeline.application.name.lower():
        message = f"must be {pipeline.application.name!r}: a pipeline cannot move to another application"
        problems.append(Problem("/application", message))
    name = document.get("name")
    if isinstance(name, str) and name != pipeline.name:
        message = f"must be {pipeline.name!r}: pipelines cannot be renamed; save a new one and delete this one"
        problems.append(Problem("/name", message))
    own_id = pipeline.spinnaker_id
    if document.get("id") not in (None, "", own_id, str(pipeline.id)):
        problems.append(Problem("/id", f"must be {own_id!r}, this pipeline's id, or be left out"))
    return problems
