"""The applications and pipelines API: CRUD, permissions, documents in JSON and YAML, revisions, query counts."""

import json

import pytest
import yaml
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_create_token, do_grant
from apps.pipelines.models import Application, Pipeline
from apps.pipelines.services import do_save_pipeline
from tests.scenarios import client_for, count_queries, pointers

WAIT = {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 5}


def document(name: str = "deliver", application: str = "shop", **extra) -> dict:
    return {"application": application, "name": name, "stages": [WAIT], **extra}


@pytest.fixture
def shop(db):
    return Application.objects.create(name="shop", owner="team-shop")


@pytest.fixture
def alice(shop):
    user = User.objects.create_user("alice")
    do_grant(shop, user, "write", actor="setup")
    do_grant(shop, user, "execute", actor="setup")
    return user


@pytest.fixture
def bob(shop):
    user = User.objects.create_user("bob")
    do_grant(shop, user, "read", actor="setup")
    return user


@pytest.fixture
def charlie(db):
    return User.objects.create_user("charlie")


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", password="x")


@pytest.fixture
def pipeline(shop):
    saved, _ = do_save_pipeline(document(), user="setup")
    return saved


def url(pipeline: Pipeline, suffix: str = "") -> str:
    return f"/api/pipelines/{pipeline.pk}/{suffix}"


# --- Pipelines: create, read, update, delete -----------------------------------------------------


def test_alice_creates_reads_updates_and_deletes_a_pipeline(alice):
    client = client_for(alice)
    created = client.post("/api/pipelines/", document(), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["application"] == "shop" and body["name"] == "deliver" and body["updatedBy"] == "alice"
    assert body["definition"]["stages"] == [WAIT]
    assert body["definition"]["id"] == body["id"]
    assert created["Location"].endswith(f"/api/pipelines/{body['id']}/")

    detail = client.get(f"/api/pipelines/{body['id']}/")
    assert detail.status_code == 200 and detail.json()["id"] == body["id"]

    changed = document(description="Now with a description", id=body["id"])
    updated = client.put(f"/api/pipelines/{body['id']}/", changed, format="json")
    assert updated.status_code == 200, updated.json()
    assert updated.json()["definition"]["description"] == "Now with a description"

    deleted = client.delete(f"/api/pipelines/{body['id']}/")
    assert deleted.status_code == 204
    assert not Pipeline.objects.exists()
    actions = list(AuditEvent.objects.filter(object_type="pipeline").order_by("id").values_list("action", "source"))
    assert actions == [("pipeline.saved", "api"), ("pipeline.saved", "api"), ("pipeline.deleted", "api")]
    assert set(AuditEvent.objects.filter(object_type="pipeline").values_list("actor", "ip_address")) == {
        ("alice", "127.0.0.1")
    }


@pytest.mark.parametrize("content_type", ["application/x-yaml", "text/yaml", "application/yaml"])
def test_it_creates_a_pipeline_from_yaml(alice, content_type):
    text = yaml.safe_dump(document())
    response = client_for(alice).post("/api/pipelines/", text, content_type=content_type)
    assert response.status_code == 201, response.json()
    assert Pipeline.objects.get().definition["stages"] == [WAIT]


def test_it_refuses_to_create_a_pipeline_whose_name_is_taken(alice, pipeline):
    response = client_for(alice).post("/api/pipelines/", document(description="other"), format="json")
    assert response.status_code == 409
    assert pointers(response) == ["/name"]
    assert pipeline.revisions.count() == 1
    assert "description" not in Pipeline.objects.get().definition


def test_it_refuses_a_rename_or_a_move_with_pointers(alice, pipeline):
    body = document(name="renamed", application="other")
    response = client_for(alice).put(url(pipeline), body, format="json")
    assert response.status_code == 400
    assert sorted(pointers(response)) == ["/application", "/name"]
    assert pipeline.revisions.count() == 1


def test_it_has_no_partial_update(alice, pipeline):
    assert client_for(alice).patch(url(pipeline), {"name": "x"}, format="json").status_code == 405


# --- Bad input is a 4xx in the one error shape, and changes nothing ------------------------------


def test_a_bad_document_comes_back_with_every_problem_at_its_pointer(alice, pipeline):
    bad = document(stages=[{"refId": "1", "name": "Wait", "type": "wiat"}, {"name": 3}], limitConcurrent="yes")
    response = client_for(alice).put(url(pipeline), bad, format="json")
    assert response.status_code == 400
    found = pointers(response)
    assert {"/stages/0/type", "/stages/1/refId", "/stages/1/name", "/stages/1/type", "/limitConcurrent"} <= set(found)
    assert pipeline.revisions.count() == 1


def test_a_bad_yaml_document_comes_back_with_pointers(alice):
    text = """\
application: shop
name: deliver
stages:
  - {refId: "1", name: Wait, type: wait, waitTime: x}
"""
    response = client_for(alice).post("/api/pipelines/", text, content_type="application/x-yaml")
    assert response.status_code == 400
    assert pointers(response) == ["/stages/0/waitTime"]
    assert not Pipeline.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[1, 2]", "application/json"),
        ("42", "application/json"),
        ('{"application": "shop",', "application/json"),
        ('{"application": "shop", "application": "shop", "name": "x"}', "application/json"),
        ("name: [unclosed", "application/x-yaml"),
        ("- just\n- a list\n", "text/yaml"),
        ("updateTs: !!binary aGVsbG8=\n", "application/x-yaml"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_unparseable_bodies_are_400s_in_the_error_shape(alice, body, content_type):
    data = body.encode("latin-1") if body.startswith("\xff") else body
    response = client_for(alice).post("/api/pipelines/", data, content_type=content_type)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors and all(set(error) == {"pointer", "message"} for error in errors)
    assert not Pipeline.objects.exists()


def test_wrong_types_and_unknown_media_types_are_4xx(alice, pipeline):
    client = client_for(alice)
    assert pointers(client.post("/api/pipelines/", {"application": 7, "name": []}, format="json")) == [
        "/application",
        "/name",
    ]
    form = client.post("/api/pipelines/", {"application": "shop"})
    assert form.status_code == 415 and "errors" in form.json()
    assert client.get("/api/pipelines/not-a-uuid/").status_code == 404
    assert client.get("/api/pipelines/not-a-uuid/").json()["errors"][0]["pointer"] == ""


def test_creating_in_an_unknown_application_names_it(alice):
    response = client_for(alice).post("/api/pipelines/", document(application="nowhere"), format="json")
    assert response.status_code == 404
    assert pointers(response) == ["/application"]
    assert not Application.objects.filter(name="nowhere").exists()


# --- Who may see and change what -----------------------------------------------------------------


def test_charlie_sees_nothing_of_shop(charlie, pipeline):
    client = client_for(charlie)
    assert client.get("/api/pipelines/").json()["results"] == []
    assert client.get("/api/applications/").json()["results"] == []
    assert client.get("/api/applications/shop/").status_code == 404
    for suffix in ("", "revisions/", "revisions/1/", "diff/?from=1&to=1", "export/"):
        assert client.get(url(pipeline, suffix)).status_code == 404, suffix
    assert client.put(url(pipeline), document(), format="json").status_code == 404
    assert client.delete(url(pipeline)).status_code == 404
    assert client.post(url(pipeline, "restore/"), {"revision": 1}, format="json").status_code == 404
    created = client.post("/api/pipelines/", document(name="sneaky"), format="json")
    assert created.status_code == 404 and pointers(created) == ["/application"]
    assert Pipeline.objects.count() == 1


def test_bob_reads_shop_but_may_not_write(bob, pipeline):
    client = client_for(bob)
    assert [row["name"] for row in client.get("/api/pipelines/").json()["results"]] == ["deliver"]
    assert client.get(url(pipeline)).status_code == 200
    assert client.put(url(pipeline), document(description="x"), format="json").status_code == 403
    assert client.delete(url(pipeline)).status_code == 403
    assert client.post(url(pipeline, "restore/"), {"revision": 1}, format="json").status_code == 403
    created = client.post("/api/pipelines/", document(name="other"), format="json")
    assert created.status_code == 403 and pointers(created) == ["/application"]
    assert client.patch("/api/applications/shop/", {"owner": "bob"}, format="json").status_code == 403
    assert client.delete("/api/applications/shop/").status_code == 403
    assert pipeline.revisions.count() == 1 and Pipeline.objects.count() == 1


def test_anonymous_requests_are_refused(pipeline):
    response = client_for(None).get("/api/pipelines/")
    assert response.status_code == 401 and "errors" in response.json()
    assert client_for(None).post("/api/pipelines/validate/", document(), format="json").status_code == 401


def test_a_token_authenticates_a_script(alice, pipeline):
    _, token = do_create_token(alice, "ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [row["id"] for row in client.get("/api/pipelines/").json()["results"]] == [str(pipeline.pk)]
    saved = client.put(url(pipeline), document(description="from CI"), format="json")
    assert saved.status_code == 200 and saved.json()["updatedBy"] == "alice"


# --- Validation without saving -------------------------------------------------------------------


def test_validate_answers_valid_for_a_good_document(charlie):
    response = client_for(charlie).post("/api/pipelines/validate/", document(application="anything"), format="json")
    assert response.status_code == 200
    assert response.json() == {"valid": True, "errors": []}


def test_validate_lists_every_problem_of_a_bad_document(charlie):
    bad = document(stages=[{"refId": "1", "name": "Wait", "type": "wait", "waitTime": "soon",
                            "requisiteStageRefIds": ["9"]}])
    response = client_for(charlie).post("/api/pipelines/validate/", bad, format="json")
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert {"/stages/0/waitTime", "/stages/0/requisiteStageRefIds/0"} <= set(pointers(response))
    assert not Pipeline.objects.exists()


def test_validate_reports_yaml_that_does_not_parse(charlie):
    response = client_for(charlie).post("/api/pipelines/validate/", "name: [oops", content_type="text/yaml")
    assert response.status_code == 200
    assert response.json()["valid"] is False and pointers(response) == [""]


# --- Revisions, diff, restore, export ------------------------------------------------------------


@pytest.fixture
def three_revisions(pipeline):
    do_save_pipeline(document(description="second"), user="setup")
    do_save_pipeline(document(description="third"), user="setup")
    return pipeline


def test_revisions_are_listed_newest_first_and_read_one_by_one(bob, three_revisions):
    client = client_for(bob)
    listed = client.get(url(three_revisions, "revisions/"))
    assert listed.status_code == 200
    assert [row["number"] for row in listed.json()["results"]] == [3, 2, 1]
    assert set(listed.json()["results"][0]) == {"number", "createdAt", "createdBy"}
    second = client.get(url(three_revisions, "revisions/2/"))
    assert second.status_code == 200 and second.json()["definition"]["description"] == "second"
    for missing in ("9", "0", "x", "99999999999999999999"):
        response = client.get(url(three_revisions, f"revisions/{missing}/"))
        assert response.status_code == 404 and "errors" in response.json(), missing


def test_diff_shows_what_changed_between_two_revisions(bob, three_revisions):
    response = client_for(bob).get(url(three_revisions, "diff/"), {"from": 2, "to": 3})
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"]) == (2, 3)
    assert '-  "description": "second",' in body["diff"].splitlines()
    assert '+  "description": "third",' in body["diff"].splitlines()
    assert body["diff"].startswith("--- revision 2\n+++ revision 3\n")


@pytest.mark.parametrize(
    ("query", "expected"),
    [({"to": 2}, ["/from"]), ({"from": 1, "to": 7}, ["/to"]), ({"from": "a", "to": ""}, ["/from", "/to"])],
)
def test_diff_names_a_missing_or_unknown_revision(bob, three_revisions, query, expected):
    response = client_for(bob).get(url(three_revisions, "diff/"), query)
    assert response.status_code == 400
    assert pointers(response) == expected


def test_restore_saves_an_old_revision_again_as_a_new_one(alice, three_revisions):
    response = client_for(alice).post(url(three_revisions, "restore/"), {"revision": 1}, format="json")
    assert response.status_code == 200, response.json()
    assert "description" not in response.json()["definition"]
    assert list(three_revisions.revisions.values_list("number", flat=True)) == [4, 3, 2, 1]
    event = AuditEvent.objects.filter(action="pipeline.saved").first()
    assert (event.actor, event.source, event.details["revision"]) == ("alice", "api", 4)


@pytest.mark.parametrize(("body", "status"), [({"revision": 9}, 400), ({"revision": "x"}, 400), ([1], 400), ({}, 400)])
def test_restore_refuses_a_bad_revision(alice, three_revisions, body, status):
    response = client_for(alice).post(url(three_revisions, "restore/"), body, format="json")
    assert response.status_code == status
    assert "errors" in response.json()
    assert three_revisions.revisions.count() == 3


def test_export_downloads_the_document_as_json_by_default(bob, pipeline):
    response = client_for(bob).get(url(pipeline, "export/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="shop-deliver.json"'
    assert json.loads(response.content) == pipeline.definition


def test_export_downloads_the_document_as_yaml(bob, pipeline):
    response = client_for(bob).get(url(pipeline, "export/"), {"format": "yaml"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert response["Content-Disposition"].endswith('.yaml"')
    assert yaml.safe_load(response.content) == pipeline.definition


def test_export_refuses_an_unknown_format_in_json(bob, pipeline):
    response = client_for(bob).get(url(pipeline, "export/"), {"format": "xml"})
    assert response.status_code == 400
    assert pointers(response) == ["/format"]


@pytest.mark.parametrize("suffix", ["export.yaml", "revisions.json", "revisions/1.json", "diff.json?from=1&to=1"])
def test_format_suffixes_are_not_routes_and_answer_a_json_404(bob, pipeline, suffix):
    response = client_for(bob).get(f"/api/pipelines/{pipeline.pk}/{suffix}")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"pointer": "", "message": "Not found."}]}


def test_export_errors_stay_json(charlie, pipeline):
    response = client_for(charlie).get(url(pipeline, "export/"), {"format": "yaml"})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and "errors" in response.json()


# --- Applications --------------------------------------------------------------------------------


def test_anyone_may_create_an_application_and_then_owns_it(charlie):
    client = client_for(charlie)
    created = client.post("/api/applications/", {"name": "cart", "owner": "team-cart"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["permissions"] == ["read", "write", "execute", "manage"]
    assert client.patch("/api/applications/cart/", {"description": "Carts"}, format="json").status_code == 200
    assert client.get("/api/applications/cart/").json()["description"] == "Carts"
    actions = set(AuditEvent.objects.filter(application_name="cart").values_list("action", flat=True))
    assert actions == {"application.created", "permission.granted", "application.updated"}


def test_a_superuser_creates_an_application_without_grants(root):
    response = client_for(root).post("/api/applications/", {"name": "ops"}, format="json")
    assert response.status_code == 201 and response.json()["permissions"] == ["read", "write", "execute", "manage"]
    assert not AuditEvent.objects.filter(action="permission.granted").exists()


@pytest.mark.parametrize(
    ("body", "pointer"), [({"name": "Bad Name"}, "/name"), ({"name": "shop"}, "/name"), ({}, "/name"), ([], "")]
)
def test_a_bad_application_is_refused(alice, body, pointer):
    response = client_for(alice).post("/api/applications/", body, format="json")
    assert response.status_code == 400
    assert pointers(response) == [pointer]


def test_an_application_cannot_be_renamed(alice):
    response = client_for(alice).put("/api/applications/shop/", {"name": "market"}, format="json")
    assert response.status_code == 400 and pointers(response) == ["/name"]
    assert Application.objects.filter(name="shop").exists()


def test_each_application_lists_what_the_user_may_do(alice, bob):
    other = Application.objects.create(name="blog")
    do_grant(other, bob, "execute", actor="setup")
    rows = client_for(bob).get("/api/applications/").json()["results"]
    assert [(row["name"], row["permissions"]) for row in rows] == [("blog", ["read", "execute"]), ("shop", ["read"])]
    assert client_for(alice).get("/api/applications/shop/").json()["permissions"] == ["read", "write", "execute"]


def test_applications_filter_and_order(root):
    for name, owner in (("alpha", "a"), ("beta", "b"), ("alphabet", "a")):
        Application.objects.create(name=name, owner=owner)
    client = client_for(root)

    def names(query):
        return [row["name"] for row in client.get("/api/applications/", query).json()["results"]]

    assert names({"name__icontains": "ALPHA"}) == ["alpha", "alphabet"]
    assert names({"owner": "b"}) == ["beta"]
    assert names({"ordering": "-name"}) == ["beta", "alphabet", "alpha"]
    assert names({"name": "beta"}) == ["beta"]


def test_an_application_with_pipelines_cannot_be_deleted(alice, pipeline):
    client = client_for(alice)
    refused = client.delete("/api/applications/shop/")
    assert refused.status_code == 409 and "errors" in refused.json()
    assert Application.objects.filter(name="shop").exists()
    client.delete(url(pipeline))
    assert client.delete("/api/applications/shop/").status_code == 204
    assert AuditEvent.objects.filter(action="application.deleted", application_name="shop").exists()


def test_pipelines_filter_by_application_and_name(root, pipeline):
    Application.objects.create(name="blog")
    do_save_pipeline(document(name="publish", application="blog"))
    client = client_for(root)

    def names(query):
        return [row["name"] for row in client.get("/api/pipelines/", query).json()["results"]]

    assert names({"application": "blog"}) == ["publish"]
    assert names({"name__icontains": "DELI"}) == ["deliver"]
    assert names({}) == ["deliver", "publish"]


# --- Query counts: the same whatever the number of rows ------------------------------------------


def test_the_application_list_costs_the_same_for_2_or_20_rows(bob):
    client = client_for(bob)

    def add_applications(count: int) -> None:
        for index in range(count):
            application = Application.objects.create(name=f"app-{Application.objects.count()}-{index}")
            do_grant(application, bob, "execute", actor="setup")

    add_applications(1)
    few = count_queries(client, "/api/applications/")
    add_applications(18)
    assert len(client.get("/api/applications/").json()["results"]) == 20
    assert count_queries(client, "/api/applications/") == few


def test_the_pipeline_and_revision_lists_cost_the_same_for_2_or_20_rows(bob, pipeline):
    client = client_for(bob)
    do_save_pipeline(document(name="p-1"))
    do_save_pipeline(document(description="r2"))
    few_pipelines = count_queries(client, "/api/pipelines/")
    few_revisions = count_queries(client, url(pipeline, "revisions/"))
    for index in range(2, 20):
        do_save_pipeline(document(name=f"p-{index}"))
        do_save_pipeline(document(description=f"r{index + 1}"))
    assert len(client.get("/api/pipelines/").json()["results"]) == 20
    assert count_queries(client, "/api/pipelines/") == few_pipelines
    assert count_queries(client, url(pipeline, "revisions/")) == few_revisions
