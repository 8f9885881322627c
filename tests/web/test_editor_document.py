"""The editor's two views of one document: the text read into the stage editor, the stage editor's document as text."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_text_is_read_as_the_document_the_stage_editor_edits(people):
    answer = client_for(people["charlie"]).post("/pipelines/document/", {"text": "name: x\nstages: []\n"})

    assert answer.status_code == 200 and answer.json() == {"document": {"name": "x", "stages": []}}


def test_a_text_that_does_not_parse_answers_its_problems_with_their_line(people):
    answer = client_for(people["charlie"]).post("/pipelines/document/", {"text": "name: x\nstages: [\n"})

    assert answer.status_code == 400
    [problem] = answer.json()["problems"]
    assert problem["pointer"] == "" and problem["line"] == 3


def test_a_duplicate_key_is_refused_as_a_save_would_refuse_it(people):
    answer = client_for(people["charlie"]).post("/pipelines/document/", {"text": "name: x\nname: y\n"})

    assert answer.status_code == 400 and "name" in json.dumps(answer.json())


@pytest.mark.parametrize("fmt, expected", [
    ("yaml", "name: x\nstages: []\n"), ("json", '{\n  "name": "x",\n  "stages": []\n}\n'),
])
def test_the_stage_editors_document_is_written_in_the_chosen_format(people, fmt, expected):
    answer = client_for(people["charlie"]).post(
        "/pipelines/document/", {"document": json.dumps({"name": "x", "stages": []}), "format": fmt})

    assert answer.json() == {"text": expected}


@pytest.mark.parametrize("body", [{"document": "[1]", "format": "yaml"}, {"document": "{", "format": "json"},
                                  {"document": "{}", "format": "toml"}, {},
                                  {"document": '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "format": "yaml"}])
def test_anything_else_is_a_400_naming_what_is_expected(people, body):
    answer = client_for(people["charlie"]).post("/pipelines/document/", body)

    assert answer.status_code == 400 and "JSON object" in answer.json()["problems"][0]["message"]


def test_the_conversion_is_for_the_signed_in_and_by_post_only(people):
    assert Client().post("/pipelines/document/", {"text": "a: 1"}).status_code == 302
    assert client_for(people["charlie"]).get("/pipelines/document/").status_code == 405


def test_the_editor_embeds_its_document_and_every_stage_types_fields(people, shop):
    html = client_for(people["alice"]).get(f"/pipelines/{shop.id}/edit/").content.decode()

    assert 'id="pipeline-document"' in html and '"refId": "1"' in html
    assert 'id="stage-types"' in html and '"waitTime"' in html and '"judgmentInputs"' in html
    assert 'name="view" value="visual"' in html


def test_a_text_that_does_not_parse_reopens_in_the_text_view_with_nothing_lost(people, shop):
    response = client_for(people["alice"]).post(
        f"/pipelines/{shop.id}/edit/", {"action": "validate", "text": "stages: [", "format": "yaml", "view": "visual"})
    html = response.content.decode()

    assert 'name="view" value="text"' in html and "stages: [</textarea>" in html
    assert 'data-unsaved="true"' in html
