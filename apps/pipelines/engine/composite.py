"""Composite stages: a stage's tasks, and the synthetic stages it plans before and after them.

A stage type may run several tasks in order (``task_graph``) and plan
synthetic stages (``before_stages`` / ``after_stages``) when it starts, as
Orca's ``StageDefinitionBuilder`` does. Synthetic stages are ordinary
StageExecution rows with a ``parent`` and a ``synthetic_owner``; their refIds
are the parent's followed by ``<n`` (before) or ``>n`` (after), so a
stage's descendants are found by refId prefix, and document refIds may not
contain ``<`` or ``>``.

Phases of a composite parent, read from its ``tasks`` (materialized only for
such stages; a stage whose type's ``run()`` is its one task keeps ``tasks``
empty and its steps unchanged):

* every task NOT_STARTED — the before stages run (the parent is RUNNING, no
  step of its own is due, except a wake-up at its ``stageTimeoutMs``);
* one task RUNNING — the parent's own steps run it;
* every task SUCCEEDED — the after stages run; when they are done the parent
  completes.

Every move between phases, and every decision that ends a parent because of
a synthetic stage or its timeout, is made while advancing the execution
(:func:`~apps.pipelines.engine.graph.advance_locked`, under the execution's
lock); this module holds the pure parts: planning, phases, statuses, restart
scopes. Nesting is bounded by :data:`MAX_DEPTH`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from apps.pipelines.choices import CONTINUABLE, Status, SyntheticOwner
from apps.pipelines.definition import stages_problems
from apps.pipelines.models import StageExecution, epoch_millis
from apps.pipelines.stages import StageType, Task
from apps.pipelines.stages.execution_window import window_definition
from apps.pipelines.windows import is_restricted

# How deeply synthetic stages may nest below a top-level stage (Orca's deploy → createServerGroup → ...).
MAX_DEPTH = 3
# The local refId of a composite's execution-window stage among its before stages.
WINDOW_REF = "executionWindow"
SEPARATORS = {SyntheticOwner.STAGE_BEFORE: "<", SyntheticOwner.STAGE_AFTER: ">"}


class PlanningError(Exception):
    """A stage type planned tasks or synthetic stages that cannot run; the stage fails with this message."""


def depth(ref_id: str) -> int:
    """How many levels below a top-level stage the stage with this refId sits."""
    return ref_id.count("<") + ref_id.count(">")


def descendant_prefixes(ref_id: str) -> tuple[str, str]:
    """The refId prefixes of every synthetic stage below ``ref_id``."""
    return f"{ref_id}<", f"{ref_id}>"


def order_key(stage: StageExecution) -> tuple:
    """Document order: top-level stages by position, each followed by its before stages, then its after stages."""
    path: list[tuple[int, int]] = []
    number = ""
    for character in reversed(stage.ref_id):
        if character in "<>":
            path.append((0 if character == "<" else 1, int(number) if number.isdigit() else 0))
            number = ""
        else:
            number = character + number
    return (stage.position, tuple(reversed(path)))


# --- Tasks -------------------------------------------------------------------------------------


def task_entries(stage_type: StageType, tasks) -> list[dict]:
    """The ``tasks`` of a stage as Orca shows them, all NOT_STARTED; a type with no task graph runs ``run()``."""
    names = [(task.name or type(task).__name__, task.implementing_class) for task in tasks]
    if not names:
        names = [(stage_type.type_name, f"{type(stage_type).__module__}.{type(stage_type).__qualname__}")]
    return [
        {"id": str(index), "name": name, "implementingClass": path, "status": Status.NOT_STARTED,
         "startTime": None, "endTime": None}
        for index, (name, path) in enumerate(names, start=1)
    ]


def running_task(stage: StageExecution) -> int | None:
    """The index of the parent's task that is running, or None (before or after its tasks)."""
    for index, task in enumerate(stage.tasks):
        if task["status"] == Status.RUNNING:
            return index
    return None


def tasks_begun(stage: StageExecution) -> bool:
    return any(task["status"] != Status.NOT_STARTED for task in stage.tasks)


def tasks_done(stage: StageExecution) -> bool:
    return bool(stage.tasks) and all(task["status"] == Status.SUCCEEDED for task in stage.tasks)


def set_task(stage: StageExecution, index: int, status: Status) -> None:
    """Move one task to ``status``, stamping its start or end time."""
    task = stage.tasks[index]
    now_ms = epoch_millis(timezone.now())
    task["status"] = status
    if status == Status.RUNNING:
        task["startTime"], task["endTime"] = now_ms, None
    else:
        task["endTime"] = now_ms


def task_runner(stage: StageExecution, stage_type: StageType) -> StageType | Task | None:
    """What runs the parent's current step: its running task, the type itself for a one-task type, or None."""
    index = running_task(stage)
    if index is None:
        return None
    graph = list(stage_type.task_graph(stage))
    if not graph:
        return stage_type
    if index >= len(graph) or (graph[index].name or type(graph[index]).__name__) != stage.tasks[index]["name"]:
        raise PlanningError(f"the tasks of stage type {stage.type!r} changed while the stage ran")
    return graph[index]


# --- Planning synthetic stages ---------------------------------------------------------------------


def plan(stage: StageExecution, stage_type: StageType) -> list[StageExecution]:
    """Materialize the stage's tasks and create its synthetic stages (NOT_STARTED); returns the new rows.

    Raises PlanningError when the stage cannot run here (StageType.unavailable: a cloud provider not
    built), when the stage type's plan is invalid or too deep, or the stage type raised while planning.
    """
    reason = stage_type.unavailable(stage.context)
    if reason is not None:
        raise PlanningError(reason)
    try:
        tasks = list(stage_type.task_graph(stage))
        sides = {SyntheticOwner.STAGE_BEFORE: stage_type.before_stages(stage),
                 SyntheticOwner.STAGE_AFTER: stage_type.after_stages(stage)}
    except Exception as error:  # noqa: BLE001  (a bug in a stage type fails its stage, never the engine)
        raise PlanningError(f"planning the stage failed: {type(error).__name__}: {error}") from error
    rows: list[StageExecution] = []
    if any(sides.values()) and depth(stage.ref_id) >= MAX_DEPTH:
        raise PlanningError(f"synthetic stages may nest at most {MAX_DEPTH} levels deep")
    if is_restricted(stage.context) and (tasks or any(sides.values())):
        # As Orca: the window is a before stage of its own, ahead of all others.
        window = window_definition(stage.context)
        stage.context["executionWindow"] = {"syntheticStage": f"{stage.ref_id}<1"}
    else:
        window = None
    for owner, definitions in sides.items():
        rows += _side_rows(stage, owner, definitions, window if owner == SyntheticOwner.STAGE_BEFORE else None)
    if not tasks and not rows:
        return []
    stage.tasks = task_entries(stage_type, tasks)
    StageExecution.objects.bulk_create(rows)
    return rows


def _side_rows(
    parent: StageExecution, owner: SyntheticOwner, definitions, window: dict | None = None
) -> list[StageExecution]:
    """The rows of one side, validated as a pipeline's stages are; local refIds become the parent's.

    A ``window`` definition runs first, the other stages after it.
    """
    side = "before" if owner == SyntheticOwner.STAGE_BEFORE else "after"
    if not isinstance(definitions, list) or not all(isinstance(item, dict) for item in definitions):
        raise PlanningError(f"the {side} stages must be a list of stage definitions")
    chain = not any("requisiteStageRefIds" in item for item in definitions)
    local: list[dict] = []
    for index, item in enumerate(definitions, start=1):
        definition = {"refId": str(index), "name": item.get("type"), **item}
        if chain:
            definition["requisiteStageRefIds"] = [local[-1]["refId"]] if local else []
        local.append(definition)
    if window is not None:
        for item in local:
            if not item.get("requisiteStageRefIds"):
                item["requisiteStageRefIds"] = [WINDOW_REF]
        local.insert(0, {**window, "refId": WINDOW_REF, "requisiteStageRefIds": []})
    problems = stages_problems(local)
    if problems:
        details = "; ".join(f"{problem.pointer}: {problem.message}" for problem in problems)
        raise PlanningError(f"invalid {side} stages planned by stage {parent.name!r}: {details}")
    separator = SEPARATORS[owner]
    ref_ids = {item["refId"]: f"{parent.ref_id}{separator}{index}" for index, item in enumerate(local, start=1)}
    downstream: dict[str, list[str]] = {ref: [] for ref in ref_ids.values()}
    for item in local:
        for requisite in item["requisiteStageRefIds"]:
            downstream[ref_ids[requisite]].append(ref_ids[item["refId"]])
    return [
        StageExecution(
            execution_id=parent.execution_id, parent=parent, synthetic_owner=owner, ref_id=ref_ids[item["refId"]],
            position=parent.position, type=item["type"], name=item.get("name") or item["type"],
            requisite_ref_ids=[ref_ids[ref] for ref in item["requisiteStageRefIds"]],
            next_ref_ids=downstream[ref_ids[item["refId"]]],
            definition={**item, "refId": ref_ids[item["refId"]],
                        "requisiteStageRefIds": [ref_ids[ref] for ref in item["requisiteStageRefIds"]]},
        )
        for item in local
    ]


# --- Deciding a parent's state from its synthetic stages ---------------------------------------------


def halted_by(children: list[StageExecution]) -> StageExecution | None:
    """The first synthetic stage that halted (TERMINAL, STOPPED, CANCELED), which ends its parent."""
    order = {Status.TERMINAL: 0, Status.STOPPED: 1, Status.CANCELED: 2}
    halted = [child for child in children if child.status in order]
    return min(halted, key=lambda child: order[child.status]) if halted else None


def side_done(children: list[StageExecution], owner: SyntheticOwner) -> bool:
    return all(child.status in CONTINUABLE for child in children if child.synthetic_owner == owner)


def startable(stage: StageExecution, parent: StageExecution) -> bool:
    """Whether a synthetic stage's parent is in the phase its stage runs in."""
    if parent.status != Status.RUNNING:
        return False
    if stage.synthetic_owner == SyntheticOwner.STAGE_BEFORE:
        return not tasks_begun(parent)
    return tasks_done(parent)


def completed_status(children: list[StageExecution]) -> Status:
    """A parent whose tasks and synthetic stages all finished well: FAILED_CONTINUE if one of them did (Orca)."""
    return Status.FAILED_CONTINUE if any(c.status == Status.FAILED_CONTINUE for c in children) else Status.SUCCEEDED


# Moves of a parent that advancing makes (see graph._settle_composites).
END, BEGIN_TASKS, COMPLETE, REWAKE = "end", "begin-tasks", "complete", "rewake"


def timeout_seconds(stage: StageExecution) -> float | None:
    """The stage's ``stageTimeoutMs`` in seconds; None when it has none (or a nonsensical one)."""
    value = stage.context.get("stageTimeoutMs")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return value / 1000


def running_seconds(stage: StageExecution) -> float:
    """How long the stage has been running, not counting time its execution spent paused."""
    if stage.start_time is None:  # not started yet: nothing has run
        return 0.0
    elapsed = (timezone.now() - stage.start_time).total_seconds()
    return elapsed - stage.execution.paused_seconds_since(stage.start_time)


def until_timeout(stage: StageExecution) -> float | None:
    """Seconds left before the stage's timeout (0 when it has passed); None when it has no timeout."""
    timeout = timeout_seconds(stage)
    return None if timeout is None else max(0.0, timeout - running_seconds(stage))


def settle(parent: StageExecution, children: list[StageExecution]) -> tuple[str | None, Status | None, str]:
    """What an active parent does next, from its synthetic stages: (move, status, error message).

    END: a synthetic stage halted (the parent takes Orca's status: TERMINAL
    becomes the parent's own failure status, STOPPED and CANCELED stay) or
    the timeout came while synthetic stages ran. BEGIN_TASKS: its before
    stages are done. COMPLETE: its tasks and after stages are done. REWAKE:
    its wake-up at the timeout is missing or past (a resume, a restart).
    """
    halted = halted_by(children)
    if halted is not None:
        errors = ((halted.context.get("exception") or {}).get("details") or {}).get("errors") or []
        reason = f"synthetic stage {halted.name!r} ({halted.ref_id}) ended {halted.status}"
        return END, halted.status, "; ".join([reason, *map(str, errors)])
    if parent.status != Status.RUNNING or running_task(parent) is not None:
        return None, None, ""
    remaining, timeout = until_timeout(parent), timeout_seconds(parent)
    if remaining == 0 and timeout is not None:
        return END, Status.TERMINAL, f"Stage timed out after {int(timeout * 1000)} ms (stageTimeoutMs)"
    if not tasks_begun(parent) and side_done(children, SyntheticOwner.STAGE_BEFORE):
        return BEGIN_TASKS, None, ""
    if tasks_done(parent) and side_done(children, SyntheticOwner.STAGE_AFTER):
        return COMPLETE, completed_status(children), ""
    due = parent.next_run_at
    if (remaining is None and due is not None) or (remaining is not None and (due is None or due <= timezone.now())):
        return REWAKE, None, ""
    return None, None, ""


# --- Restart ---------------------------------------------------------------------------------------


@dataclass
class RestartPlan:
    """What a restart changes: stages run again from scratch, parents reopened, synthetic stages dropped.

    ``reopen`` maps a parent's refId to whether its own tasks run again
    (they do when a before stage of it restarts).
    """

    reset: list[str] = field(default_factory=list)
    reopen: dict[str, bool] = field(default_factory=dict)
    drop: set[str] = field(default_factory=set)

    def refs(self) -> set[str]:
        return set(self.reset) | set(self.reopen) | self.drop


def downstream_closure(roots: list[str], stages: list[StageExecution]) -> list[str]:
    """The given stages and every stage downstream of any of them, in pipeline order."""
    children: dict[str, list[str]] = {}
    for stage in stages:
        for requisite in stage.requisite_ref_ids:
            children.setdefault(requisite, []).append(stage.ref_id)
    found, todo = set(), list(roots)
    while todo:
        ref = todo.pop()
        if ref not in found:
            found.add(ref)
            todo.extend(children.get(ref, []))
    return [stage.ref_id for stage in stages if stage.ref_id in found]


def restart_scope(ref_id: str, stages: list[StageExecution]) -> set[str]:
    """Every stage a restart of ``ref_id`` would rerun or reopen: none of them may be running when it restarts."""
    return restart_plan(ref_id, stages).refs()


def restart_plan(ref_id: str, stages: list[StageExecution], with_canceled: bool = False) -> RestartPlan:
    """The stages a restart of ``ref_id`` reruns (and, ``with_canceled``, those canceled when it halted).

    A restarted stage reruns with the stages after it among its siblings; a
    composite one is planned afresh (its synthetic stages are dropped). Its
    parent is reopened — its tasks rerun after a before stage — and what
    follows the parent reruns, up to the top level.
    """
    by_ref = {stage.ref_id: stage for stage in stages}
    by_id = {stage.id: stage for stage in stages}
    result = RestartPlan()

    def rerun(node: StageExecution, include_self: bool) -> None:
        group = [stage for stage in stages if stage.parent_id == node.parent_id]
        for ref in downstream_closure([node.ref_id], group):
            if (ref != node.ref_id or include_self) and ref not in result.reset:
                result.reset.append(ref)
                result.drop.update(r for r in by_ref if r.startswith(descendant_prefixes(ref)))
        parent = by_id.get(node.parent_id) if node.parent_id is not None else None
        if parent is None:
            return
        before = node.synthetic_owner == SyntheticOwner.STAGE_BEFORE
        result.reopen[parent.ref_id] = result.reopen.get(parent.ref_id, False) or before
        if before:
            for after in (s for s in stages if s.parent_id == parent.id and s.synthetic_owner != node.synthetic_owner):
                rerun(after, include_self=True)
        rerun(parent, include_self=False)

    rerun(by_ref[ref_id], include_self=True)
    if with_canceled:
        for stage in sorted((s for s in stages if s.status == Status.CANCELED), key=lambda s: depth(s.ref_id)):
            if stage.ref_id not in result.refs():
                rerun(stage, include_self=True)
    return result
