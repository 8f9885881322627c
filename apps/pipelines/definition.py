"""Loading and validating pipeline documents in Spinnaker's pipeline JSON format.

Validation only reads the document: a pipeline exported from Spinnaker loads
unchanged, and keys this platform does not know (``id``, ``index``,
``updateTs``, ``appConfig``, ``expectedArtifacts``, ...) are kept as they are.
Every problem is reported at once, each located by an RFC 6901 JSON pointer.
"""

from __future__ import annotations

import difflib
import json
import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import yaml

from apps.pipelines.problems import InvalidDocument, Problem, pointer_join
from apps.pipelines.stages import all_stage_types, get_stage_type

# The database columns these end up in (Pipeline.name, StageExecution.ref_id and .name).
MAX_PIPELINE_NAME_LENGTH = 200
MAX_REF_ID_LENGTH = 100
MAX_STAGE_NAME_LENGTH = 200
# Values in a document once YAML aliases are expanded; guards against alias bombs.
MAX_VALUES = 250_000

STAGE_FLAGS = ("failPipeline", "continuePipeline", "completeOtherBranchesThenFail")
PIPELINE_FLAGS = ("limitConcurrent", "keepWaitingPipelines", "disabled")

_EXPECTED: dict[type, str] = {
    bool: "must be true or false",
    str: "must be a string",
    list: "must be a list",
    dict: "must be an object",
}


# --- Parsing -------------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """A SafeLoader whose results map onto JSON: dates stay text and duplicate keys are refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:str":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# Without this, `updateTs: 2024-05-01` would load as a datetime, which JSON cannot hold.
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(text: str | bytes) -> dict:
    """Parse a pipeline document written as JSON or YAML and return it as a dict.

    JSON is tried first so that a broken JSON document is reported with
    JSON's line and column; YAML (a superset) is tried next. Raises
    :class:`InvalidDocument` for empty input, a syntax error, a top level that
    is not an object, and values JSON cannot hold (YAML dates, sets, binary,
    non-string keys, NaN), duplicate keys and alias bombs.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidDocument([Problem("", f"is not UTF-8 text (bad byte at offset {error.start})")]) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InvalidDocument([Problem("", "is empty; expected a pipeline as a JSON or YAML object")])
    duplicates: dict[int, tuple[dict, list[str]]] = {}
    try:
        document = _load(text, duplicates)
        if not isinstance(document, dict):
            raise InvalidDocument([Problem("", f"must be an object (a pipeline), not {_describe(document)}")])
        problems = _json_value_problems(document, duplicates)
    except RecursionError:
        raise InvalidDocument([Problem("", "is nested too deeply")]) from None
    if problems:
        raise InvalidDocument(problems)
    return document


def _load(text: str, duplicates: dict[int, tuple[dict, list[str]]]) -> Any:
    """JSON, else YAML; on failure report the error of the syntax the text looks like."""

    def note_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        result = dict(pairs)
        if len(result) < len(pairs):
            keys = [key for key, _ in pairs]
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            # Holding ``result`` keeps its id from being reused by another object.
            duplicates[id(result)] = (result, repeated)
        return result

    try:
        return json.loads(text, object_pairs_hook=note_duplicates)
    except json.JSONDecodeError as json_error:
        try:
            return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader subclass: builds no Python objects
        except yaml.YAMLError as yaml_error:
            if text.lstrip()[0] in "{[":
                where = f"line {json_error.lineno}, column {json_error.colno}"
                message = f"is not valid JSON: {json_error.msg} at {where}"
            else:
                message = f"is not valid YAML: {_yaml_error_text(yaml_error)}"
            raise InvalidDocument([Problem("", message)]) from None


def _yaml_error_text(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return str(error)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _json_value_problems(document: dict, duplicates: dict[int, tuple[dict, list[str]]]) -> list[Problem]:
    """Problems with values that JSON cannot hold, duplicate JSON keys, and documents too large."""
    problems: list[Problem] = []
    # YAML aliases make one container appear in several places (or inside itself):
    # each is walked once and its size remembered, so an alias bomb costs no time.
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def walk(node: Any, pointer: str) -> int:
        if not isinstance(node, dict | list):
            if isinstance(node, float) and not math.isfinite(node):
                problems.append(Problem(pointer, "must be a finite number"))
            elif node is not None and not isinstance(node, str | int | float | bool):
                problems.append(Problem(pointer, f"is a YAML {type(node).__name__} value, which JSON cannot hold"))
            return 1
        if id(node) in on_path:
            problems.append(Problem(pointer, "contains itself (a recursive YAML alias)"))
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        on_path.add(id(node))
        size = 1
        if isinstance(node, dict):
            for key in duplicates.get(id(node), ({}, []))[1]:
                problems.append(
                    Problem(pointer_join(pointer, key), "is a duplicate key; only the last value would be kept")
                )
            for key, value in node.items():
                if not isinstance(key, str):
                    problems.append(Problem(pointer, f"has the key {key!r}, which is not a string; quote it"))
                size += walk(value, pointer_join(pointer, str(key)))
        else:
            for index, value in enumerate(node):
                size += walk(value, pointer_join(pointer, index))
        on_path.discard(id(node))
        sizes[id(node)] = size
        return size

    total = walk(document, "")
    if total > MAX_VALUES:
        problems.append(Problem("", f"has {total} values once YAML aliases are expanded; the limit is {MAX_VALUES}"))
    return problems


def _describe(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    names = {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), f"a {type(value).__name__}")


# --- Validation ----------------------------------------------------------------------------------


def validate_pipeline(doc: dict) -> list[Problem]:
    """Return every problem with a pipeline document (an empty list when it is valid).

    Each problem carries the JSON pointer of the offending value. Keys not
    checked here are accepted as they are. A key whose value is null counts as
    absent, as it does for Spinnaker.
    """
    if not isinstance(doc, dict):
        return [Problem("", f"must be an object (a pipeline), not {_describe(doc)}")]
    problems = _application_problems(doc.get("application"))
    problems += _required_text(doc, "name", "", MAX_PIPELINE_NAME_LENGTH)
    problems += _optional_types(
        doc, "", dict.fromkeys(PIPELINE_FLAGS, bool) | {"description": str, "spelEvaluator": str}
    )
    problems += _stages_problems(doc.get("stages"))
    problems += _triggers_problems(doc.get("triggers"))
    problems += _notifications_problems(doc.get("notifications"))
    problems += _parameter_config_problems(doc.get("parameterConfig"))
    problems += _unstorable_text_problems(doc)
    return problems


def check_pipeline(doc: dict) -> dict:
    """Return the document unchanged if it is valid; otherwise raise InvalidDocument with every problem."""
    problems = validate_pipeline(doc)
    if problems:
        raise InvalidDocument(problems)
    return doc


def _application_problems(application: Any) -> list[Problem]:
    from django.core.exceptions import ValidationError

    from apps.pipelines.models import application_name_validator

    if application in (None, ""):
        return [Problem("/application", "is required")]
    if not isinstance(application, str):
        return [Problem("/application", _EXPECTED[str])]
    try:
        application_name_validator(application)
    except ValidationError as error:
        return [Problem("/application", message) for message in error.messages]
    return []


def _required_text(container: dict, key: str, pointer: str, max_length: int | None = None) -> list[Problem]:
    """A required, non-blank string, of at most ``max_length`` characters when given."""
    where = pointer_join(pointer, key)
    value = container.get(key)
    if value is None:
        return [Problem(where, "is required")]
    if not isinstance(value, str):
        hint = f' (write "{value}")' if isinstance(value, int | float) and not isinstance(value, bool) else ""
        return [Problem(where, _EXPECTED[str] + hint)]
    if not value.strip():
        return [Problem(where, "must not be empty")]
    if max_length is not None and len(value) > max_length:
        return [Problem(where, f"must be at most {max_length} characters long (it has {len(value)})")]
    return []


def unstorable_text(text: str) -> str | None:
    """Why a string cannot be stored, or None: no database text holds NUL, and lone surrogates are not text."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not text"
    return None


def _unstorable_text_problems(doc: dict) -> list[Problem]:
    """A problem for each string or key anywhere in the document that cannot be stored (without recursion)."""
    problems = []
    pending: list[tuple[Any, str]] = [(doc, "")]
    while pending:
        node, pointer = pending.pop()
        if isinstance(node, str):
            reason = unstorable_text(node)
            if reason:
                problems.append(Problem(pointer, reason))
        elif isinstance(node, dict):
            for key in node:
                reason = unstorable_text(key) if isinstance(key, str) else None
                if reason:
                    problems.append(Problem(pointer_join(pointer, key), f"is a key that {reason}"))
            pending.extend((value, pointer_join(pointer, key)) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((item, pointer_join(pointer, index)) for index, item in reversed(list(enumerate(node))))
    return problems


def _optional_types(container: dict, pointer: str, expected: dict[str, type]) -> list[Problem]:
    """Problems for keys that are present (and not null) but of the wrong JSON type."""
    return [
        Problem(pointer_join(pointer, key), _EXPECTED[kind])
        for key, kind in expected.items()
        if container.get(key) is not None and not isinstance(container[key], kind)
    ]


def _list_of_objects(value: Any, pointer: str) -> tuple[list[Problem], list[tuple[int, dict]]]:
    """Check an optional list of objects; return its problems and the (index, object) items to check further."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [Problem(pointer, _EXPECTED[list])], []
    problems = [
        Problem(pointer_join(pointer, i), _EXPECTED[dict]) for i, item in enumerate(value) if not isinstance(item, dict)
    ]
    return problems, [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


# --- Stages --------------------------------------------------------------------------------------


def _stages_problems(stages: Any) -> list[Problem]:
    problems, items = _list_of_objects(stages, "/stages")
    # refId -> index of the first stage with it; requisites and duplicates are checked against it.
    first_index: dict[str, int] = {}
    for index, stage in items:
        ref_id = stage.get("refId")
        if isinstance(ref_id, str) and ref_id.strip():
            first_index.setdefault(ref_id, index)
    for index, stage in items:
        pointer = pointer_join("/stages", index)
        problems += _ref_id_problems(stage, pointer, index, first_index)
        problems += _required_text(stage, "name", pointer, MAX_STAGE_NAME_LENGTH)
        problems += _stage_type_problems(stage, pointer)
        problems += _requisite_problems(stage, pointer, first_index)
        problems += _stage_option_problems(stage, pointer)
        problems += _expression_problems(stage, pointer)
    problems += _cycle_problems(items, first_index)
    return problems


def _ref_id_problems(stage: dict, pointer: str, index: int, first_index: dict[str, int]) -> list[Problem]:
    problems = _required_text(stage, "refId", pointer, MAX_REF_ID_LENGTH)
    first = first_index.get(stage.get("refId")) if not problems else None
    if first is not None and first != index:
        message = f"duplicate refId {stage['refId']!r}: stage {first} already has it"
        problems.append(Problem(pointer_join(pointer, "refId"), message))
    return problems


def _stage_type_problems(stage: dict, pointer: str) -> list[Problem]:
    """The type must be a registered stage type, whose own checks then apply."""
    where = pointer_join(pointer, "type")
    type_name = stage.get("type")
    if type_name in (None, ""):
        return [Problem(where, "is required")]
    if not isinstance(type_name, str):
        return [Problem(where, _EXPECTED[str])]
    stage_type = get_stage_type(type_name)
    if stage_type is None:
        known = ", ".join(sorted(all_stage_types()))
        return [Problem(where, f"unknown stage type {type_name!r}; known types: {known}")]
    return stage_type.missing_fields(stage, pointer) + stage_type.validate(stage, pointer)


def _requisite_problems(stage: dict, pointer: str, first_index: dict[str, int]) -> list[Problem]:
    where = pointer_join(pointer, "requisiteStageRefIds")
    requisites = stage.get("requisiteStageRefIds")
    if requisites is None:
        return []
    if not isinstance(requisites, list):
        return [Problem(where, "must be a list of refIds")]
    problems = []
    for position, ref_id in enumerate(requisites):
        at = pointer_join(where, position)
        if not isinstance(ref_id, str):
            hint = f' (write "{ref_id}")' if isinstance(ref_id, int) and not isinstance(ref_id, bool) else ""
            problems.append(Problem(at, f"must be a string (a stage's refId){hint}"))
        elif ref_id == stage.get("refId"):
            problems.append(Problem(at, "a stage cannot require itself"))
        elif ref_id not in first_index:
            problems.append(Problem(at, f"no stage has refId {ref_id!r}"))
    return problems


def _stage_option_problems(stage: dict, pointer: str) -> list[Problem]:
    """Spinnaker's options common to every stage: conditional execution, failure handling, timeout, window."""
    from apps.pipelines.windows import validate_window

    problems = _optional_types(stage, pointer, dict.fromkeys(STAGE_FLAGS, bool)) + validate_window(stage, pointer)
    timeout = stage.get("stageTimeoutMs")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
        problems.append(
            Problem(pointer_join(pointer, "stageTimeoutMs"), "must be a positive whole number of milliseconds")
        )
    enabled = stage.get("stageEnabled")
    where = pointer_join(pointer, "stageEnabled")
    if enabled is None:
        return problems
    if not isinstance(enabled, dict):
        problems.append(Problem(where, 'must be an object: {"type": "expression", "expression": "..."}'))
        return problems
    if enabled.get("type") != "expression":
        problems.append(Problem(pointer_join(where, "type"), 'must be "expression"'))
    expression = enabled.get("expression")
    if expression is None or expression == "":
        problems.append(Problem(pointer_join(where, "expression"), "is required"))
    elif not isinstance(expression, str | bool):
        problems.append(Problem(pointer_join(where, "expression"), "must be a string or true or false"))
    return problems


def _cycle_problems(items: list[tuple[int, dict]], first_index: dict[str, int]) -> list[Problem]:
    """One problem per group of stages that wait on each other, naming one cycle through it.

    The cycle is written in running order ("1 → 2" means stage 2 requires 1),
    starting from the group's first stage, at whose requisiteStageRefIds it is
    reported. Stages that require themselves are reported by the requisite check.
    """
    ref_ids = {index: stage["refId"] for index, stage in items if isinstance(stage.get("refId"), str)}
    downstream: dict[int, list[int]] = {index: [] for index in ref_ids}
    for index, stage in items:
        requisites = stage.get("requisiteStageRefIds")
        if index not in ref_ids or not isinstance(requisites, list):
            continue  # a stage no other stage can name cannot be part of a cycle
        for ref_id in requisites:
            upstream = first_index.get(ref_id) if isinstance(ref_id, str) else None
            if upstream is not None and upstream != index:
                downstream[upstream].append(index)
    problems = []
    for group in sorted(_strongly_connected_groups(downstream), key=min):
        if len(group) > 1:
            first = min(group)
            cycle = [ref_ids[node] for node in _shortest_cycle(downstream, first, group)]
            where = pointer_join("/stages", first, "requisiteStageRefIds")
            problems.append(Problem(where, "cycle: " + " → ".join([*cycle, cycle[0]])))
    return problems


def _strongly_connected_groups(graph: dict[int, list[int]]) -> list[set[int]]:
    """Groups of nodes that all reach each other (Kosaraju's algorithm, in linear time and without recursion)."""
    finished: list[int] = []
    visited: set[int] = set()
    for root in graph:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(graph[root]))]
        while stack:
            node, following = stack[-1]
            unvisited = next((child for child in following if child not in visited), None)
            if unvisited is None:
                stack.pop()
                finished.append(node)
            else:
                visited.add(unvisited)
                stack.append((unvisited, iter(graph[unvisited])))
    preceding: dict[int, list[int]] = {node: [] for node in graph}
    for node, following in graph.items():
        for child in following:
            preceding[child].append(node)
    groups: list[set[int]] = []
    assigned: set[int] = set()
    for root in reversed(finished):
        if root in assigned:
            continue
        group, pending = {root}, [root]
        while pending:
            for parent in preceding[pending.pop()]:
                if parent not in group and parent not in assigned:
                    group.add(parent)
                    pending.append(parent)
        assigned |= group
        groups.append(group)
    return groups


def _shortest_cycle(graph: dict[int, list[int]], start: int, group: set[int]) -> list[int]:
    """The nodes of a shortest cycle from ``start`` back to itself, staying within ``group``."""
    came_from: dict[int, int] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for following in graph[node]:
            if following == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if following in group and following not in came_from:
                came_from[following] = node
                queue.append(following)
    return [start]  # not reached: ``start`` is in a group of stages that reach each other


# --- Expressions ---------------------------------------------------------------------------------


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value with its pointer, without recursion (documents may nest deeply)."""
    pending = [(value, pointer)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            pending.extend((item, pointer_join(where, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((item, pointer_join(where, index)) for index, item in reversed(list(enumerate(node))))


def _expression_problems(value: Any, pointer: str) -> list[Problem]:
    """A problem for each malformed ``${...}`` in any string inside ``value``, at that string's pointer."""
    from apps.pipelines.expressions import expression_syntax_errors

    enabled_pointer = pointer_join(pointer, "stageEnabled", "expression")
    problems = []
    for where, text in _strings(value, pointer):
        if where == enabled_pointer and "${" not in text:
            # The engine runs a bare stageEnabled expression as if it were written "${...}".
            text = "${" + text + "}"
        problems += [Problem(where, message) for message in expression_syntax_errors(text)]
    return problems


# --- Triggers, notifications, parameters ---------------------------------------------------------


def _triggers_problems(triggers: Any) -> list[Problem]:
    problems, items = _list_of_objects(triggers, "/triggers")
    for index, trigger in items:
        pointer = pointer_join("/triggers", index)
        kind = trigger.get("type")
        if kind in (None, ""):
            problems.append(Problem(pointer_join(pointer, "type"), "is required"))
        elif not isinstance(kind, str):
            problems.append(Problem(pointer_join(pointer, "type"), _EXPECTED[str]))
        problems += _optional_types(trigger, pointer, {"enabled": bool})
        problems += _expression_problems(trigger, pointer)
    return problems


def _notifications_problems(notifications: Any) -> list[Problem]:
    problems, items = _list_of_objects(notifications, "/notifications")
    for index, notification in items:
        problems += _expression_problems(notification, pointer_join("/notifications", index))
    return problems


def _parameter_config_problems(parameters: Any) -> list[Problem]:
    problems, items = _list_of_objects(parameters, "/parameterConfig")
    first_index: dict[str, int] = {}
    for index, parameter in items:
        pointer = pointer_join("/parameterConfig", index)
        name_problems = _required_text(parameter, "name", pointer)
        name = parameter.get("name")
        if not name_problems and first_index.setdefault(name, index) != index:
            message = f"duplicate parameter {name!r}: parameter {first_index[name]} already has it"
            name_problems.append(Problem(pointer_join(pointer, "name"), message))
        problems += name_problems
        expected = {"required": bool, "pinned": bool, "hasOptions": bool, "description": str, "label": str}
        problems += _optional_types(parameter, pointer, expected)
        problems += _parameter_options_problems(parameter, pointer)
    return problems


def _parameter_options_problems(parameter: dict, pointer: str) -> list[Problem]:
    """Options are ``{"value": ...}`` objects or plain strings; a default must be one of them."""
    problems = []
    options = parameter.get("options")
    if options is not None and not isinstance(options, list):
        problems.append(Problem(pointer_join(pointer, "options"), _EXPECTED[list]))
    for index, option in enumerate(options if isinstance(options, list) else ()):
        where = pointer_join(pointer, "options", index)
        if not isinstance(option, dict):
            if _as_parameter_text(option) is None:
                problems.append(Problem(where, 'must be a string or a {"value": "..."} object'))
        elif option.get("value") is None:
            problems.append(Problem(pointer_join(where, "value"), "is required"))
        elif _as_parameter_text(option["value"]) is None:
            problems.append(Problem(pointer_join(where, "value"), _EXPECTED[str]))
    default = parameter.get("default")
    if default is not None and _as_parameter_text(default) is None:
        problems.append(Problem(pointer_join(pointer, "default"), _EXPECTED[str]))
    choices = parameter_options(parameter)
    if choices and _as_parameter_text(default) not in (None, "", *choices):
        message = f"must be one of the options: {', '.join(choices)}"
        problems.append(Problem(pointer_join(pointer, "default"), message))
    return problems


def parameter_options(parameter: dict) -> list[str]:
    """The values a parameter is limited to, or [] when it takes any value.

    Spinnaker keeps ``options: [{"value": ""}]`` on parameters whose
    ``hasOptions`` is false, so options only count when ``hasOptions`` is not
    false, and empty values never count.
    """
    options = parameter.get("options")
    if parameter.get("hasOptions") is False or not isinstance(options, list):
        return []
    values = [_as_parameter_text(option.get("value") if isinstance(option, dict) else option) for option in options]
    return [value for value in values if value]


def _as_parameter_text(value: Any) -> str | None:
    """A parameter value as the text Spinnaker passes on; None for values that have no such form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def resolve_parameters(doc: dict, given: dict) -> dict:
    """Return an execution's parameters: the given values, checked, plus defaults for the rest.

    Every parameter declared in ``parameterConfig`` gets a value: the given
    one, else its default, else "" (as Spinnaker passes). Numbers and booleans
    given are turned into text ("true"/"false"). Raises InvalidDocument with
    every problem, at ``/parameters/<name>``: a required parameter left
    empty, a value that is not one of the options, a name the pipeline does
    not declare, a value that is an object or a list.
    """
    config = doc.get("parameterConfig")
    given = given or {}
    declared = [
        parameter
        for parameter in (config if isinstance(config, list) else [])
        if isinstance(parameter, dict) and isinstance(parameter.get("name"), str) and parameter["name"]
    ]
    names = [parameter["name"] for parameter in declared]
    problems: list[Problem] = []
    resolved: dict[str, str] = {}
    for parameter in declared:
        name = parameter["name"]
        if name in resolved:
            continue  # a duplicate declaration; validate_pipeline reports it
        value, problem = _resolve_parameter(parameter, given.get(name))
        if problem:
            problems.append(Problem(pointer_join("/parameters", name), problem))
        else:
            resolved[name] = value
    known = ", ".join(names) or "(none)"
    for name in given:
        if name not in names:
            where = pointer_join("/parameters", str(name))
            problems.append(Problem(where, f"is not a parameter of this pipeline; known: {known}"))
    if problems:
        raise InvalidDocument(problems)
    return resolved


def _resolve_parameter(parameter: dict, given: Any) -> tuple[str, str | None]:
    """One parameter's value and, when it is refused, why."""
    if given is not None:
        value = _as_parameter_text(given)
        if value is None:
            return "", "must be a string"
        unstorable = unstorable_text(value)
        if unstorable:
            return "", unstorable
        choices = parameter_options(parameter)
        if value and choices and value not in choices:
            return value, f"must be one of: {', '.join(choices)}"
    else:
        value = _as_parameter_text(parameter.get("default")) or ""
    if value == "" and parameter.get("required") is True:
        return value, "is required"
    return value, None


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
    if isinstance(application, str) and application != pipeline.application.name:
        message = f"must be {pipeline.application.name!r}: a pipeline cannot move to another application"
        problems.append(Problem("/application", message))
    name = document.get("name")
    if isinstance(name, str) and name != pipeline.name:
        message = f"must be {pipeline.name!r}: pipelines cannot be renamed; save a new one and delete this one"
        problems.append(Problem("/name", message))
    if document.get("id") not in (None, "", str(pipeline.id)):
        problems.append(Problem("/id", f"must be {str(pipeline.id)!r}, this pipeline's id, or be left out"))
    return problems
