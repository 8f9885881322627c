"""The secrets API: values go in and never come out; names to readers; writers manage; every change audited."""

from __future__ import annotations

import json

import pytest

from apps.accounts.models import AuditEvent
from apps.pipelines.models import Secret
from apps.pipelines.secrets.store import secret_values
from tests.scenarios import client_for, pointers

pytestmark = pytest.mark.django_db

TOKEN, NEW_TOKEN = "tok-api-0001", "tok-api-0002"
URL = "/api/applications/shop/secrets/"


def test_a_writer_sets_a_secret_and_no_answer_or_audit_event_ever_carries_its_value(people):
    alice, bob = client_for(people["alice"]), client_for(people["bob"])

    created = alice.post(URL, {"name": "deploy-token", "value": TOKEN}, format="json")
    replaced = alice.put(f"{URL}deploy-token/", {"value": NEW_TOKEN}, format="json")
    listed = bob.get(URL)
    detail = bob.get(f"{URL}deploy-token/")

    assert (created.status_code, replaced.status_code, listed.status_code, detail.status_code) == (201, 200, 200, 200)
    assert [item["name"] for item in listed.json()["results"]] == ["deploy-token"]
    assert detail.json()["created_by"] == "alice" and detail.json()["updated_by"] == "alice"
    answers = json.dumps([created.json(), replaced.json(), listed.json(), detail.json()])
    assert TOKEN not in answers and NEW_TOKEN not in answers and "value" not in answers
    secret = Secret.objects.get()
    assert secret_values(secret.application_id, ["deploy-token"]) == {"deploy-token": NEW_TOKEN}
    events = AuditEvent.objects.filter(object_type="secret").order_by("id")
    assert [(event.action, event.details) for event in events] == [
        ("secret.set", {"name": "deploy-token", "created": True}),
        ("secret.set", {"name": "deploy-token", "created": False}),
    ]


def test_posting_a_name_the_application_has_replaces_its_value(people):
    alice = client_for(people["alice"])
    alice.post(URL, {"name": "deploy-token", "value": TOKEN}, format="json")

    again = alice.post(URL, {"name": "deploy-token", "value": NEW_TOKEN}, format="json")

    assert again.status_code == 200
    assert Secret.objects.count() == 1
    assert secret_values(Secret.objects.get().application_id, ["deploy-token"]) == {"deploy-token": NEW_TOKEN}


def test_a_reader_sees_names_but_may_not_set_replace_or_delete(people):
    client_for(people["alice"]).post(URL, {"name": "deploy-token", "value": TOKEN}, format="json")
    bob = client_for(people["bob"])

    answers = [bob.post(URL, {"name": "other", "value": TOKEN}, format="json").status_code,
               bob.put(f"{URL}deploy-token/", {"value": NEW_TOKEN}, format="json").status_code,
               bob.delete(f"{URL}deploy-token/").status_code]

    assert answers == [403, 403, 403]
    assert list(Secret.objects.values_list("name", flat=True)) == ["deploy-token"]


def test_deleting_a_secret_is_audited_and_it_is_gone(people):
    alice = client_for(people["alice"])
    alice.post(URL, {"name": "deploy-token", "value": TOKEN}, format="json")

    deleted = alice.delete(f"{URL}deploy-token/")

    assert deleted.status_code == 204
    assert not Secret.objects.exists()
    assert alice.get(f"{URL}deploy-token/").status_code == 404
    assert AuditEvent.objects.filter(action="secret.deleted", details={"name": "deploy-token"}).exists()


@pytest.mark.parametrize("body, pointer", [
    ({"name": "deploy token", "value": TOKEN}, "/name"),
    ({"name": "deploy-token", "value": "abc"}, "/value"),
    ({"name": "deploy-token"}, "/value"),
    ({"value": TOKEN}, "/name"),
])
def test_a_bad_secret_is_refused_at_its_field_and_nothing_is_written(people, body, pointer):
    response = client_for(people["alice"]).post(URL, body, format="json")

    assert response.status_code == 400
    assert pointers(response) == [pointer]
    assert not Secret.objects.exists()


def test_a_pipeline_referencing_a_missing_secret_is_refused_at_the_header_and_validate_says_so(people):
    alice = client_for(people["alice"])
    document = {"application": "shop", "name": "hooks", "stages": [
        {"refId": "1", "name": "Hook", "type": "webhook", "url": "http://127.0.0.1:9/x",
         "customHeaders": {"Authorization": "Bearer ${#secret('deploy-token')}"}}]}

    refused = alice.post("/api/pipelines/", document, format="json")
    validated = alice.post("/api/pipelines/validate/", document, format="json")
    alice.post(URL, {"name": "deploy-token", "value": TOKEN}, format="json")
    saved = alice.post("/api/pipelines/", document, format="json")

    assert refused.status_code == 400
    assert pointers(refused) == ["/stages/0/customHeaders/Authorization"]
    assert validated.json()["valid"] is False
    assert [error["pointer"] for error in validated.json()["errors"]] == ["/stages/0/customHeaders/Authorization"]
    assert saved.status_code == 201
    assert TOKEN not in json.dumps(saved.json())
