"""The checks of each stage in a pipeline document: refIds, types, requisites, options, cycles."""

from __future__ import annotations

from collections import deque
from typing import Any

from apps.pipelines.definition.checks import (
    EXPECTED,
    expression_problems,
    list_of_objects,
    optional_types,
    required_text,
)
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages import all_stage_types, get_stage_type
from apps.pipelines.windows import validate_window

# The database columns these end up in (StageExecution.ref_id and .name).
MAX_REF_ID_LENGTH = 100
MAX_STAGE_NAME_LENGTH = 200

STAGE_FLAGS = ("failPipeline", "continuePipeline", "completeOtherBranchesThenFail")


def stages_problems(stages: Any) -> list[Problem]:
    """The problems of the ``stages`` list: each stage's own, then the cycles between them."""
    problems, items = list_of_objects(stages, "/stages")
    # refId -> index of the first stage with it; requisites and duplicates are checked against it.
    first_index: dict[str, int] = {}
    for index, stage in items:
        ref_id = stage.get("refId")
        if isinstance(ref_id, str) and ref_id.strip():
            first_index.setdefault(ref_id, index)
    for index, stage in items:
        pointer = pointer_join("/stages", index)
        problems += _ref_id_problems(stage, pointer, index, first_index)
        if stage.get("name") is not None:  # Orca names a stage without one after its type (services._stage_rows)
            problems += required_text(stage, "name", pointer, MAX_STAGE_NAME_LENGTH)
        problems += _stage_type_problems(stage, pointer)
        problems += _requisite_problems(stage, pointer, first_index)
        problems += _stage_option_problems(stage, pointer)
        problems += expression_problems(_evaluated_part(stage), pointer)
    problems += _cycle_problems(items, first_index)
    return problems


def _evaluated_part(stage: dict) -> dict:
    """The stage without the keys its type never evaluates (StageType.unevaluated_fields), whose ``${`` is text."""
    stage_type = get_stage_type(stage.get("type")) if isinstance(stage.get("type"), str) else None
    unevaluated = stage_type.unevaluated_fields(stage) if stage_type is not None else ()
    return {key: value for key, value in stage.items() if key not in unevaluated}


def _ref_id_problems(stage: dict, pointer: str, index: int, first_index: dict[str, int]) -> list[Problem]:
    problems = required_text(stage, "refId", pointer, MAX_REF_ID_LENGTH)
    if not problems and ("<" in stage["refId"] or ">" in stage["refId"]):
        # Reserved: synthetic stages' refIds are their parent's followed by <n or >n.
        problems.append(Problem(pointer_join(pointer, "refId"), "may not contain < or > (they name synthetic stages)"))
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
        return [Problem(where, EXPECTED[str])]
    stage_type = get_stage_type(type_name)
    if stage_type is None:
        known = ", ".join(sorted(all_stage_types()))
        return [Problem(where, f"unknown stage type {type_name!r}; known types: {known}")]
    if stage_type.unavailable(stage) is not None:
        return []  # it loads; it fails when it starts, saying why (StageType.unavailable)
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
    problems = optional_types(stage, pointer, dict.fromkeys(STAGE_FLAGS, bool)) + validate_window(stage, pointer)
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
