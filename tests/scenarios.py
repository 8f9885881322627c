"""What tests share besides fixtures: the stages they save, executions shaped by hand, API clients, query counts.

Fixtures (services, workers, the shop/blog world and its people) are in ``tests/conftest.py``; the HTTP
server for stages that call out is ``tests/hookserver.py``. Everything here is a plain function or value.
"""

import threading

from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution

# --- The shop/blog world (its fixtures are in conftest.py) --------------------------------------

# The team whose members may make shop's manual judgment.
JUDGES = "release-managers"
# shop/deliver: a wait, then a judgment only JUDGES may make; blog/publish is the wait alone.
STAGES = [
    {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 60},
    {
        "refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
        "instructions": "Check the staging site, then decide.",
        "selectedStageRoles": [JUDGES], "judgmentInputs": [{"value": "ship"}, {"value": "hold"}],
    },
]
PARAMETERS = [
    {"name": "env", "label": "Environment", "required": True, "options": [{"value": "staging"}, {"value": "prod"}]},
    {"name": "version", "default": "1.0", "description": "What to deliver."},
]


# --- Pipelines the engine runs --------------------------------------------------------------------


def save(stages, name="deliver", **extra):
    """Save shop's pipeline ``name`` with ``stages`` (and any other document keys), as alice."""
    pipeline, _ = do_save_pipeline({"application": "shop", "name": name, "stages": stages, **extra}, user="alice")
    return pipeline


def wait(ref_id, seconds, requisites=(), **options):
    """A wait stage of ``seconds``."""
    return {
        "refId": ref_id,
        "name": f"Wait {ref_id}",
        "type": "wait",
        "waitTime": seconds,
        "requisiteStageRefIds": list(requisites),
        **options,
    }


def failing(ref_id, requisites=(), **options):
    """A stage that fails: a precondition that is false."""
    return {
        "refId": ref_id,
        "name": f"Check {ref_id}",
        "type": "checkPreconditions",
        "requisiteStageRefIds": list(requisites),
        "preconditions": [{"type": "expression", "context": {"expression": "${1 == 2}"}, "failPipeline": True}],
        **options,
    }


def stages_of(execution) -> dict[str, StageExecution]:
    """The execution's stages as they are in the database now, by refId."""
    return {stage.ref_id: stage for stage in StageExecution.objects.filter(execution_id=execution.id)}


def row_lock_free(model, pk) -> bool:
    """Whether another connection can lock ``model``'s row ``pk`` at once (NOWAIT, in a thread of its own)."""
    outcome = []

    def probe():
        try:
            with transaction.atomic():
                model.objects.select_for_update(nowait=True).filter(id=pk).first()
            outcome.append(True)
        except DatabaseError:
            outcome.append(False)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return outcome[0]


# --- Executions shaped by hand (no worker runs them) ----------------------------------------------


def start(pipeline, **parameters) -> Execution:
    """An execution left NOT_STARTED (no worker runs it), started by alice; `deliver` needs an env."""
    if pipeline.name == "deliver":
        parameters = {"env": "staging", **parameters}
    return do_start_execution(pipeline, parameters=parameters, user="alice")


def set_status(execution: Execution, status: str, **stages: str) -> None:
    """Shape a scenario by hand: the execution's status and, by refId, its stages' statuses."""
    now = timezone.now()
    Execution.objects.filter(id=execution.id).update(status=status, start_time=now)
    for ref_id, stage_status in stages.items():
        StageExecution.objects.filter(execution=execution, ref_id=ref_id).update(status=stage_status, start_time=now)


def running_judgment(pipeline) -> Execution:
    """An execution waiting at its manual judgment, as the engine leaves it (context evaluated from the stage)."""
    execution = start(pipeline)
    set_status(execution, Status.RUNNING, **{"1": Status.SUCCEEDED, "2": Status.RUNNING})
    StageExecution.objects.filter(execution=execution, ref_id="1").update(end_time=timezone.now())
    stage = StageExecution.objects.get(execution=execution, ref_id="2")
    stage.context = {key: value for key, value in stage.definition.items() if key not in ("refId", "type", "name")}
    stage.save(update_fields=["context"])
    return execution


# --- Requests -------------------------------------------------------------------------------------


def client_for(user) -> APIClient:
    """An API client authenticated as ``user``; anonymous when ``user`` is None."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def pointers(response) -> list[str]:
    """The JSON pointers of an error response, in order."""
    return [error["pointer"] for error in response.json()["errors"]]


def count_queries(client, path: str) -> int:
    """The SQL queries a successful GET of ``path`` costs."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return len(queries)
