"""Each refusal is decided once, in the service: the API and the pages refuse the same request the same way.

A permission refusal is a 403 from both; a state refusal is a 409 from the API and, on the pages, the same
message shown back on the execution's page. erin executes in shop but is not a release manager; bob reads it.
"""

from html import escape
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import do_grant
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_save_pipeline
from tests.scenarios import set_status, start

pytestmark = pytest.mark.django_db

STAGES = [
    {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 600},
    {"refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
     "selectedStageRoles": ["release-managers"]},
]


@pytest.fixture
def world():
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "ship", "stages": STAGES})
    erin, bob, dave = (User.objects.create_user(name) for name in ("erin", "bob", "dave"))
    do_grant(pipeline.application, erin, "execute", actor="setup")
    do_grant(pipeline.application, dave, "execute", actor="setup")
    do_grant(pipeline.application, bob, "read", actor="setup")
    dave.groups.add(Group.objects.create(name="release-managers"))
    return SimpleNamespace(pipeline=pipeline, erin=erin, bob=bob, dave=dave)


def at_judgment(world) -> Execution:
    execution = start(world.pipeline)
    set_status(execution, Status.RUNNING, **{"1": Status.SUCCEEDED, "2": Status.RUNNING})
    return execution


def waiting(world) -> Execution:
    execution = start(world.pipeline)
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})
    return execution


def api(user, execution, action: str, body: dict | None = None):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"/api/executions/{execution.id}/{action}/", body or {}, format="json")


def page(user, execution, action: str, ref_id: str | None = None, data: dict | None = None):
    client = Client()
    client.force_login(user)
    stage = f"stages/{StageExecution.objects.get(execution=execution, ref_id=ref_id).id}/" if ref_id else ""
    response = client.post(f"/executions/{execution.id}/{stage}{action}/", data or {})
    if response.status_code == 302:
        response.shown = client.get(response["Location"]).content.decode()
    return response


def refusal(response) -> str:
    [error] = response.json()["errors"]
    return error["message"]


def test_judging_without_the_stages_role_is_forbidden_from_both(world):
    execution = at_judgment(world)
    from_api = api(world.erin, execution, "judge", {"stage": "2", "decision": "continue"})
    assert from_api.status_code == 403
    assert refusal(from_api) == "Only members of release-managers may judge this stage."
    stage_id = StageExecution.objects.get(execution=execution, ref_id="2").id
    from_page = page(world.erin, execution, "judge", "2", {f"judge-{stage_id}-decision": "continue"})
    assert from_page.status_code == 403
    assert not StageExecution.objects.get(execution=execution, ref_id="2").context.get("judgmentStatus")


def test_restarting_a_running_stage_is_refused_with_the_same_reason(world):
    execution = waiting(world)
    from_api = api(world.erin, execution, "restart", {"stage": "1"})
    assert from_api.status_code == 409
    assert refusal(from_api) == "stage 'Wait' is RUNNING; only a finished stage can be restarted"
    from_page = page(world.erin, execution, "restart", "1")
    assert from_page.status_code == 302 and escape(refusal(from_api)) in from_page.shown


def test_skipping_a_stage_that_cannot_be_skipped_is_refused_with_the_same_reason(world):
    execution = at_judgment(world)
    from_api = api(world.dave, execution, "skip-wait", {"stage": "2"})
    assert from_api.status_code == 409
    assert refusal(from_api) == "stage 'Approve' is a manualJudgment stage, which cannot be skipped"
    from_page = page(world.dave, execution, "skip-wait", "2")
    assert from_page.status_code == 302 and escape(refusal(from_api)) in from_page.shown


def test_pausing_an_execution_that_is_not_running_is_refused_with_the_same_reason(world):
    execution = start(world.pipeline)
    from_api = api(world.erin, execution, "pause")
    assert from_api.status_code == 409
    from_page = page(world.erin, execution, "pause")
    assert from_page.status_code == 302 and escape(refusal(from_api)) in from_page.shown
    assert Execution.objects.get(id=execution.id).status == Status.NOT_STARTED


def test_a_reader_is_forbidden_to_cancel_from_both(world):
    execution = waiting(world)
    from_api = api(world.bob, execution, "cancel", {"reason": "no"})
    assert from_api.status_code == 403 and refusal(from_api) == "You may not execute in application shop."
    assert page(world.bob, execution, "cancel", data={"reason": "no"}).status_code == 403
    assert Execution.objects.get(id=execution.id).status == Status.RUNNING


def test_the_page_offers_only_what_the_services_allow(world):
    execution = at_judgment(world)
    client = Client()
    client.force_login(world.erin)
    html = client.get(f"/executions/{execution.id}/").content.decode()
    assert 'data-action="pause"' in html and 'data-action="cancel"' in html
    assert "/judge/" not in html  # erin may execute but not judge
    client.force_login(world.dave)
    assert "/judge/" in client.get(f"/executions/{execution.id}/").content.decode()
