"""A stage type reaches beyond its own stage only through the runtime it is given."""

from types import SimpleNamespace

from apps.pipelines.choices import Status
from apps.pipelines.problems import ActionRefused
from apps.pipelines.stages import ExecutionSummary, StageRuntime, get_stage_type


class RecordingRuntime(StageRuntime):
    """A runtime with one finished child execution; records what the stage asked of it."""

    def __init__(self, child: ExecutionSummary | None, outputs: list[dict] | None = None):
        self.child, self.outputs, self.canceled = child, outputs or [], []

    def get_execution(self, execution_id: str) -> ExecutionSummary | None:
        return self.child if self.child and self.child.id == execution_id else None

    def stage_outputs(self, execution_id: str) -> list[dict]:
        return self.outputs

    def cancel_execution(self, execution_id: str, *, user: str, reason: str) -> None:
        if self.child is None or self.child.status != Status.RUNNING:
            raise ActionRefused("already ended")
        self.canceled.append((execution_id, user, reason))


def parent_stage(child_id: str) -> SimpleNamespace:
    return SimpleNamespace(context={"executionId": child_id}, execution=SimpleNamespace(canceled_by="alice"))


def test_a_pipeline_stage_reads_its_child_through_the_runtime():
    runtime = RecordingRuntime(ExecutionSummary("c1", Status.SUCCEEDED, "child"), [{"a": 1}, {"a": 2, "b": 3}])

    result = get_stage_type("pipeline").run(parent_stage("c1"), None, runtime)

    assert result.status == Status.SUCCEEDED
    assert result.outputs == {"a": 2, "b": 3}


def test_a_pipeline_stage_whose_child_is_gone_fails():
    result = get_stage_type("pipeline").run(parent_stage("c1"), None, RecordingRuntime(None))

    assert result.status == Status.TERMINAL
    assert result.error == "child execution c1 no longer exists"


def test_canceling_a_pipeline_stage_cancels_its_child_through_the_runtime():
    runtime = RecordingRuntime(ExecutionSummary("c1", Status.RUNNING, "child"))

    get_stage_type("pipeline").cancel(parent_stage("c1"), runtime)

    assert runtime.canceled == [("c1", "alice", "parent execution ended")]


def test_canceling_a_pipeline_stage_whose_child_ended_is_quiet():
    runtime = RecordingRuntime(ExecutionSummary("c1", Status.SUCCEEDED, "child"))

    get_stage_type("pipeline").cancel(parent_stage("c1"), runtime)  # the refusal is swallowed

    assert runtime.canceled == []
