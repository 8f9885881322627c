"""The stage-types endpoint: every stage type a pipeline may use, with the fields the editor builds its forms from."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.pipelines.stages import all_stage_types
from apps.pipelines.stages.base import FIELD_KINDS, StageField, StageType, register, unregister


@pytest.fixture
def client(db):
    client = APIClient()
    client.force_login(User.objects.create_user("charlie"))
    return client


def test_every_stage_type_a_person_may_write_is_listed_with_its_fields(client):
    listed = {item["type"]: item for item in client.get("/api/stage-types/").json()}

    assert {"wait", "manualJudgment", "checkPreconditions", "evaluateVariables", "webhook", "pipeline"} <= set(listed)
    assert "restrictExecutionDuringTimeWindow" not in listed, "the engine plans that one itself"
    wait = {field["name"]: field for field in listed["wait"]["fields"]}["waitTime"]
    assert (wait["kind"], wait["required"], wait["label"]) == ("integer", False, "Wait time (seconds)")  # none: 0 s
    method = {field["name"]: field for field in listed["webhook"]["fields"]}["method"]
    assert (method["kind"], method["default"], "PATCH" in method["choices"]) == ("choice", "POST", True)
    inputs = {field["name"]: field for field in listed["manualJudgment"]["fields"]}["judgmentInputs"]
    assert [item["name"] for item in inputs["items"]] == ["value"]


def test_every_listed_type_declares_fields_of_known_kinds_and_its_required_fields_among_them(client):
    for item in client.get("/api/stage-types/").json():
        assert all(field["kind"] in FIELD_KINDS for field in item["fields"]), item["type"]
        declared_required = {field["name"] for field in item["fields"] if field["required"]}
        assert declared_required == set(all_stage_types()[item["type"]].required_fields), item["type"]


def test_one_stage_type_is_read_by_its_name_and_an_unknown_one_is_a_404(client):
    assert client.get("/api/stage-types/webhook/").json()["label"] == "Webhook"

    response = client.get("/api/stage-types/nope/")

    assert response.status_code == 404
    assert "nope" in response.json()["errors"][0]["message"]


def test_a_new_stage_type_is_listed_with_its_declared_fields_and_required_ones_checked(client):
    @register
    class Deploy(StageType):
        type_name = "testDeployFields"
        label = "Test deploy"
        fields = (StageField("cluster", required=True, help="Where to"), StageField("replicas", "integer", default=1))

    try:
        described = client.get("/api/stage-types/testDeployFields/").json()
        assert [field["name"] for field in described["fields"]] == ["cluster", "replicas"]
        assert Deploy.required_fields == ("cluster",)
    finally:
        unregister("testDeployFields")


def test_a_field_of_an_unknown_kind_or_a_choice_without_choices_is_refused_when_declared():
    with pytest.raises(ValueError, match="kind"):
        StageField("x", "colour")
    with pytest.raises(ValueError, match="choices"):
        StageField("x", "choice")
