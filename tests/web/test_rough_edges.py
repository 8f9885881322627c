"""The small things a new user trips over: icon, header, token copying, status filter, judgments, the demo."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.services import do_judge_stage
from tests.scenarios import running_judgment, set_status, start

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_site_has_an_icon_where_browsers_look_for_it(people):
    html = client_for(people["bob"]).get("/").content.decode()

    assert 'rel="icon" href="/static/favicon.svg"' in html
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"


def test_the_header_shows_teams_only_when_there_are_some_and_the_admin_only_to_staff(people):
    bob = client_for(people["bob"]).get("/").content.decode()
    dave = client_for(people["dave"]).get("/").content.decode()
    root = client_for(people["root"]).get("/").content.decode()

    assert "no team" not in bob and 'id="current-teams"' not in bob and 'id="admin-link"' not in bob
    assert 'id="current-teams"' in dave and "release-managers" in dave
    assert 'id="admin-link"' in root and 'href="/admin/"' in root


def test_a_new_token_has_a_copy_button_and_says_how_to_use_it_with_cdp(people):
    html = client_for(people["bob"]).post("/tokens/", {"name": "laptop"}, follow=True).content.decode()

    assert 'data-copy="#new-token-value"' in html and "cdp application list" in html


def test_the_status_filter_offers_five_groups_and_filters_by_them(people, shop):
    running, done, failed = start(shop), start(shop), start(shop)
    set_status(running, Status.RUNNING)
    set_status(done, Status.SUCCEEDED)
    set_status(failed, Status.TERMINAL)
    client = client_for(people["bob"])

    html = client.get("/applications/shop/").content.decode()
    only_failed = client.get("/applications/shop/?status_group=failed").content.decode()
    api = client.get("/api/executions/?status_group=running&status_group=succeeded").json()

    offered = [part.split('"')[0] for part in html.split('name="status_group" value="')[1:]]
    assert offered == ["running", "waiting", "succeeded", "failed", "canceled"]
    assert str(failed.id) in only_failed and str(done.id) not in only_failed and str(running.id) not in only_failed
    assert {item["id"] for item in api["results"]} == {str(running.id), str(done.id)}


def test_the_judgment_and_its_comment_show_in_the_stage_panel(people, shop):
    execution = running_judgment(shop)
    do_judge_stage(execution.id, "2", decision="continue", user=people["dave"], judgment_input="ship",
                   comment="Both regions look good.")
    stage = StageExecution.objects.get(execution=execution, ref_id="2")

    html = client_for(people["bob"]).get(f"/executions/{execution.id}/stages/{stage.id}/").content.decode()

    assert 'id="stage-judgment"' in html and "Both regions look good." in html and "ship" in html


def test_actions_say_which_statuses_they_are_for_so_a_live_change_hides_them_at_once(people, shop):
    execution = running_judgment(shop)

    html = client_for(people["dave"]).get(f"/executions/{execution.id}/").content.decode()

    assert f'data-status-of="{execution.id}" data-shown-while="RUNNING"' in html  # Pause
    stage = StageExecution.objects.get(execution=execution, ref_id="2")
    assert f'data-status-of="{stage.id}" data-shown-while="RUNNING"' in html  # the judgment banner


def test_the_demo_starts_an_execution_only_when_none_is_waiting(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=StringIO())
    demo = Pipeline.objects.get(application__name="demo")
    first = Execution.objects.get(pipeline=demo)
    set_status(first, Status.RUNNING, **{"5": Status.RUNNING})  # waiting at its judgment

    call_command("seed_demo", stdout=StringIO())
    assert Execution.objects.filter(pipeline=demo).count() == 1

    set_status(first, Status.SUCCEEDED)
    call_command("seed_demo", stdout=StringIO())
    assert Execution.objects.filter(pipeline=demo).count() == 2
