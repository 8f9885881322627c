"""Expected artifacts, declared and bound as Spinnaker does: one matcher for triggers and stages alike.

An expected artifact (in a pipeline's ``expectedArtifacts``, or a stage's, such as findArtifactFromExecution's)
has an ``id``, a ``displayName``, a ``matchArtifact`` whose ``type``, ``name``, ``version``, ``location`` and
``reference`` are regexes matched against the whole of the artifact's value (other keys — ``kind``,
``customKind``, ``id``, ``artifactAccount`` — are not matched, as in Kork's ``ExpectedArtifact.matches``), and
what stands in when nothing matches: ``usePriorArtifact`` (what a trigger's pipeline bound last time) or
``useDefaultArtifact`` with ``defaultArtifact``. Bound, it is kept with its ``boundArtifact`` in a
``resolvedExpectedArtifacts`` list that later stages read by id.
"""

from __future__ import annotations

from collections.abc import Callable

from apps.pipelines.patterns import matches_pattern, pattern_problem
from apps.pipelines.problems import Problem, pointer_join

MATCHED_FIELDS = ("type", "name", "version", "location", "reference")


class ArtifactMissing(Exception):
    """An expected artifact matched nothing and nothing stands in, or it matched several different artifacts."""


def expected_artifact_problems(items, where: str) -> list[Problem]:
    """Problems with a list of expected artifacts at ``where``: objects with an id, regexes RE2 compiles."""
    if items is None:
        return []
    if not isinstance(items, list):
        return [Problem(where, "must be a list of expected artifacts")]
    problems = []
    for index, item in enumerate(items):
        problems += expected_problems(item, pointer_join(where, index))
    return problems


def expected_problems(item, where: str) -> list[Problem]:
    """Problems with one expected artifact at ``where``."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return [Problem(pointer_join(where, "id"), "is required (a string)")]
    match = item.get("matchArtifact")
    if match is not None and not isinstance(match, dict):
        return [Problem(pointer_join(where, "matchArtifact"), "must be an object (type, name, version, ...)")]
    problems = []
    for name in MATCHED_FIELDS if match else ():
        problems += pattern_problem(match.get(name), pointer_join(where, "matchArtifact", name))
    default = item.get("defaultArtifact")
    if default is not None and not isinstance(default, dict):
        problems.append(Problem(pointer_join(where, "defaultArtifact"), "must be an artifact (an object)"))
    for flag in ("useDefaultArtifact", "usePriorArtifact"):
        if item.get(flag) is not None and not isinstance(item[flag], bool):
            problems.append(Problem(pointer_join(where, flag), "must be true or false"))
    return problems


def artifact_matches(match: dict, artifact: dict) -> bool:
    """Whether ``artifact`` matches every field ``match`` gives (regexes on the whole value)."""
    return all(matches_pattern(match.get(name), artifact.get(name)) for name in MATCHED_FIELDS if match.get(name))


def display_name(expected: dict) -> str:
    return str(expected.get("displayName") or expected.get("id"))


def bind_expected(expected: dict, candidates: list[dict], *, where: str, unique: bool = False,
                  prior: Callable[[], dict | None] | None = None) -> tuple[dict, str]:
    """The artifact ``expected`` binds among ``candidates`` (the first that matches, or with ``unique`` the only
    one), and how: ``matched``, ``prior`` or ``default``. ArtifactMissing, its message naming the expected
    artifact and ``where`` the candidates came from, when none binds (or, with ``unique``, several match)."""
    match = expected.get("matchArtifact") if isinstance(expected.get("matchArtifact"), dict) else {}
    found: list[dict] = []
    for artifact in candidates:
        if isinstance(artifact, dict) and artifact_matches(match, artifact) and artifact not in found:
            found.append(artifact)
    if len(found) > 1 and unique:
        raise ArtifactMissing(f"expected artifact {display_name(expected)!r} matches {len(found)} different "
                              f"artifacts of {where}; give its matchArtifact more fields")
    if found:
        return found[0], "matched"
    bound = prior() if prior is not None and expected.get("usePriorArtifact") is True else None
    if bound is not None:
        return bound, "prior"
    if expected.get("useDefaultArtifact") is True and isinstance(expected.get("defaultArtifact"), dict):
        return expected["defaultArtifact"], "default"
    raise ArtifactMissing(f"expected artifact {display_name(expected)!r} matched no artifact of {where} "
                          "and has no default")
