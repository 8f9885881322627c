"""CI build triggers: the Jenkins Notification plugin's build-finished JSON starts pipelines on success only."""

from __future__ import annotations

import pytest

from apps.triggers.models import InboundEvent
from tests.triggers.helpers import executions_of, post, save_with_triggers

pytestmark = pytest.mark.django_db

TOKEN = "ci-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def ci_token(settings):
    settings.TRIGGER_CI_TOKEN = TOKEN


def notification(phase="FINALIZED", status="SUCCESS", number=18, name="asgard", url="job/asgard/"):
    return {
        "name": name, "url": url,
        "build": {"full_url": f"http://ci.example.com/{url}{number}/", "number": number, "queue_id": 7,
                  "phase": phase, "status": status, "url": f"{url}{number}/",
                  "scm": {"url": "https://github.com/acme/asgard.git", "branch": "origin/main", "commit": "c6d86dc"},
                  "parameters": {"RELEASE": "1.4"}, "artifacts": {}},
    }


def jenkins_trigger(job="asgard", **extra):
    return {"type": "jenkins", "enabled": True, "master": "ci", "job": job, **extra}


def test_a_successful_build_starts_the_pipeline_with_its_build_info_and_properties():
    pipeline = save_with_triggers([jenkins_trigger()], secret=None)

    response = post("/webhooks/jenkins/ci", notification(), AUTH)

    assert response.status_code == 200, response.content
    [execution] = executions_of(pipeline)
    assert execution.trigger["buildNumber"] == 18
    assert execution.trigger["buildInfo"]["url"] == "http://ci.example.com/job/asgard/18/"
    assert execution.trigger["buildInfo"]["scm"]["commit"] == "c6d86dc"
    assert execution.trigger["properties"] == {"RELEASE": "1.4"}


def test_other_phases_and_failed_builds_start_nothing():
    pipeline = save_with_triggers([jenkins_trigger()], secret=None)
    for phase, status in (("STARTED", None), ("COMPLETED", "SUCCESS"), ("FINALIZED", "FAILURE")):
        response = post("/webhooks/jenkins/ci", notification(phase, status), AUTH)
        assert response.status_code == 200
    assert executions_of(pipeline) == []
    assert set(InboundEvent.objects.values_list("outcome", flat=True)) == {"ignored"}


def test_a_job_in_a_folder_matches_spinnakers_folder_job_name():
    pipeline = save_with_triggers([jenkins_trigger(job="team/job/asgard")], secret=None)
    post("/webhooks/jenkins/ci", notification(url="job/team/job/asgard/"), AUTH)
    assert len(executions_of(pipeline)) == 1


def test_the_same_build_reported_twice_starts_one_execution():
    pipeline = save_with_triggers([jenkins_trigger()], secret=None)
    assert post("/webhooks/jenkins/ci", notification(), AUTH).status_code == 200
    assert post("/webhooks/jenkins/ci", notification(), AUTH).status_code == 403
    assert len(executions_of(pipeline)) == 1


def test_without_the_token_nothing_starts(settings):
    pipeline = save_with_triggers([jenkins_trigger()], secret=None)
    assert post("/webhooks/jenkins/ci", notification()).status_code == 401
    assert post("/webhooks/jenkins/ci", notification(), {"Authorization": "Bearer nope"}).status_code == 403
    assert post("/webhooks/jenkins/ci?token=nope", notification()).status_code == 403
    settings.TRIGGER_CI_TOKEN = ""
    assert post("/webhooks/jenkins/ci", notification(), AUTH).status_code == 403
    assert executions_of(pipeline) == []


def test_the_token_may_come_in_the_url_for_senders_that_set_only_a_url():
    pipeline = save_with_triggers([jenkins_trigger()], secret=None)
    assert post(f"/webhooks/jenkins/ci?token={TOKEN}", notification()).status_code == 200
    assert len(executions_of(pipeline)) == 1


def test_a_notification_without_a_build_number_is_refused_naming_the_field():
    response = post("/webhooks/jenkins/ci", {"name": "asgard", "build": {"phase": "FINALIZED"}}, AUTH)
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/build/number"
