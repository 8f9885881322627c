"""Creating in the dashboard: a new application, a new pipeline blank, as a copy, or imported from a Spinnaker file."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.models import AuditEvent
from apps.accounts.permissions import MANAGE, WRITE, can
from apps.pipelines.models import Application, Pipeline

pytestmark = pytest.mark.django_db

SPINNAKER_EXPORT = {
    "application": "elsewhere", "name": "deploy-from-deck", "id": "5b2f3c1e-0000-4000-8000-00000000abcd",
    "keepWaitingPipelines": False, "limitConcurrent": True, "index": 0, "schema": "1",
    "parameterConfig": [{"name": "tag", "default": "latest", "required": True}],
    "triggers": [{"type": "docker", "enabled": True, "registry": "registry.local", "repository": "shop/web"}],
    "stages": [
        {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 5, "requisiteStageRefIds": []},
        {"refId": "2", "name": "Judge", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
         "judgmentInputs": [{"value": "go"}]},
    ],
}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_signed_in_user_creates_an_application_and_may_then_manage_it(people):
    client = client_for(people["charlie"])

    response = client.post("/new/application/", {"name": "kiosk", "owner": "team-kiosk", "description": "Sells"})

    assert response.status_code == 302 and response["Location"] == "/applications/kiosk/"
    kiosk = Application.objects.get(name="kiosk")
    assert can(people["charlie"], WRITE, kiosk) and can(people["charlie"], MANAGE, kiosk)
    event = AuditEvent.objects.get(action="application.created")
    assert (event.actor, event.source) == ("charlie", "web")
    assert 'id="new-pipeline-link"' in client.get("/applications/kiosk/").content.decode()


def test_an_application_name_is_checked_by_the_model_and_a_taken_one_is_refused(people):
    client = client_for(people["charlie"])

    bad = client.post("/new/application/", {"name": "no spaces here!"})
    taken = client.post("/new/application/", {"name": "shop"})

    assert bad.status_code == taken.status_code == 200
    assert 'data-error-for="name"' in bad.content.decode()
    assert "already exists" in taken.content.decode()
    assert not AuditEvent.objects.filter(action="application.created").exists()


def test_a_blank_pipeline_is_created_and_opens_in_the_editor(people):
    client = client_for(people["alice"])

    response = client.post("/applications/shop/new-pipeline/", {"name": "hotfix", "source": "blank"})

    pipeline = Pipeline.objects.get(application__name="shop", name="hotfix")
    assert response["Location"] == f"/pipelines/{pipeline.id}/edit/"
    assert pipeline.definition["stages"] == [] and pipeline.revisions.count() == 1
    assert AuditEvent.objects.get(action="pipeline.saved", object_id=str(pipeline.id)).actor == "alice"


def test_a_copy_keeps_the_stages_and_gets_its_own_id(people, shop):
    client = client_for(people["alice"])

    client.post("/applications/shop/new-pipeline/", {"name": "deliver-2", "source": "copy", "copy_of": shop.id})

    copied = Pipeline.objects.get(name="deliver-2")
    assert copied.id != shop.id
    assert copied.definition["stages"] == shop.definition["stages"]
    assert copied.definition["id"] == str(copied.id)


def test_a_spinnaker_export_is_imported_into_this_application_under_its_own_name(people):
    client = client_for(people["alice"])
    upload = SimpleUploadedFile("export.json", json.dumps(SPINNAKER_EXPORT).encode(), "application/json")

    client.post("/applications/shop/new-pipeline/", {"name": "", "source": "import", "file": upload})

    imported = Pipeline.objects.get(application__name="shop", name="deploy-from-deck")
    assert imported.definition["triggers"] == SPINNAKER_EXPORT["triggers"]
    assert [stage["type"] for stage in imported.definition["stages"]] == ["wait", "manualJudgment"]


def test_a_broken_file_is_refused_with_its_problems_and_nothing_is_saved(people):
    client = client_for(people["alice"])
    document = {**SPINNAKER_EXPORT, "stages": [{"refId": "1", "name": "W", "type": "wait", "waitTime": "soon"}]}
    upload = SimpleUploadedFile("export.yml", json.dumps(document).encode())
    not_yaml = SimpleUploadedFile("export.yml", b"stages: [unclosed")

    refused = client.post("/applications/shop/new-pipeline/", {"source": "import", "file": upload}).content.decode()
    unparsed = client.post("/applications/shop/new-pipeline/", {"source": "import", "file": not_yaml})

    assert "/stages/0/waitTime" in refused
    assert unparsed.status_code == 200 and "line" in unparsed.content.decode()
    assert not Pipeline.objects.filter(name="deploy-from-deck").exists()


def test_a_new_pipeline_never_overwrites_one_of_the_same_name(people, shop):
    client = client_for(people["alice"])

    response = client.post("/applications/shop/new-pipeline/", {"name": "deliver", "source": "blank"})

    assert "already has a pipeline named deliver" in response.content.decode()
    assert Pipeline.objects.get(pk=shop.pk).definition["stages"] == shop.definition["stages"]


def test_only_writers_may_create_pipelines_and_outsiders_do_not_learn_the_application_exists(people):
    assert client_for(people["bob"]).get("/applications/shop/new-pipeline/").status_code == 403
    assert client_for(people["bob"]).post("/applications/shop/new-pipeline/",
                                          {"name": "x", "source": "blank"}).status_code == 403
    assert client_for(people["charlie"]).get("/applications/shop/new-pipeline/").status_code == 404
    assert 'id="new-pipeline-link"' not in client_for(people["bob"]).get("/applications/shop/").content.decode()
    assert not Pipeline.objects.filter(name="x").exists()


def test_a_copy_can_only_be_of_a_pipeline_the_user_may_read(people, blog):
    client = client_for(people["alice"])

    response = client.post("/applications/shop/new-pipeline/", {"name": "stolen", "source": "copy", "copy_of": blog.id})

    assert 'data-error-for="copy_of"' in response.content.decode()
    assert not Pipeline.objects.filter(name="stolen").exists()


def test_a_user_with_no_grants_is_told_how_to_get_access(db, django_user_model):
    html = client_for(django_user_model.objects.create_user("newcomer")).get("/").content.decode()

    assert 'id="no-access-hint"' in html and "grant you read access" in html
    assert 'href="/new/application/"' in html
