"""The dashboard pages: who sees what, who may do what, and what each page costs in queries.

No worker runs in these tests. Executions are created with do_start_execution
and stay NOT_STARTED (their start job is queued on commit, which a test's
transaction never reaches); a scenario that needs another state (a RUNNING
manual judgment, a finished stage) sets the rows' status directly.
"""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.audit import record
from apps.accounts.models import ApiToken, AuditEvent
from apps.accounts.services import do_grant
from apps.pipelines.choices import Status
from apps.pipelines.forms import RunPipelineForm
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.problems import Problem
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.views import StageView, describe_notification, describe_trigger, graph_layout
from tests.scenarios import JUDGES, STAGES, count_queries, running_judgment, set_status, start

pytestmark = pytest.mark.django_db

def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stage(execution, ref_id: str) -> StageExecution:
    return StageExecution.objects.get(execution=execution, ref_id=ref_id)


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def following_messages(client, response) -> str:
    """The page a redirect leads to, where django.contrib.messages shows what happened."""
    assert response.status_code == 302, response.status_code
    return page(client, response["Location"])


# --- Signing in ---------------------------------------------------------------------------------


def test_every_page_sends_an_anonymous_visitor_to_sign_in(shop):
    execution = start(shop)
    for url in ("/", "/applications/shop/", f"/executions/{execution.id}/", f"/pipelines/{shop.id}/edit/",
                "/activity/", "/tokens/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_sign_in_and_out_with_our_own_page(people):
    people["bob"].set_password("secret-pass-1")
    people["bob"].save()
    client = Client()
    assert "Sign in" in page(client, "/login/")

    signed_in = client.post("/login/", {"username": "bob", "password": "secret-pass-1"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert 'id="current-user"' in page(client, "/")

    signed_out = client.post("/logout/")
    assert signed_out.status_code == 302 and signed_out["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_the_header_shows_the_user_their_teams_and_links(people):
    html = page(client_for(people["dave"]), "/")

    assert re.search(r'id="current-user"[^>]*>dave<', html)
    assert f'<span class="team">{JUDGES}</span>' in html
    assert 'href="/api/docs/"' in html and 'href="/tokens/"' in html


# --- Reading: every page for a reader, 404 for an outsider ----------------------------------------


def reader_urls(shop, execution) -> list[str]:
    first = stage(execution, "1")
    return [
        "/applications/shop/",
        f"/executions/{execution.id}/",
        f"/executions/{execution.id}/stages/{first.id}/",
        f"/pipelines/{shop.id}/edit/",
        f"/pipelines/{shop.id}/diff/?base=1&other=1",
    ]


def test_each_page_renders_for_a_reader(people, shop):
    execution = running_judgment(shop)
    client = client_for(people["bob"])

    assert "deliver" in page(client, "/")
    for url in reader_urls(shop, execution):
        page(client, url)
    page(client, "/activity/")
    page(client, "/tokens/")


def test_it_answers_404_to_an_outsider(people, shop):
    execution = running_judgment(shop)
    judgment = stage(execution, "2")
    client = client_for(people["charlie"])

    for url in reader_urls(shop, execution):
        assert client.get(url).status_code == 404, url
    for url in (f"/pipelines/{shop.id}/run/", f"/executions/{execution.id}/cancel/",
                f"/executions/{execution.id}/stages/{judgment.id}/judge/", f"/pipelines/{shop.id}/restore/"):
        assert client.post(url, {"revision": 1}).status_code == 404, url
    listing = page(client, "/")
    assert "blog" in listing and "shop" not in listing


def test_a_superuser_sees_every_application(people, shop, blog):
    listing = page(client_for(people["root"]), "/")

    assert 'data-application="shop"' in listing and 'data-application="blog"' in listing


def test_the_search_box_filters_applications(people, shop, blog):
    client = client_for(people["root"])

    assert 'data-application="blog"' not in page(client, "/?q=sho")
    assert 'data-application="shop"' in page(client, "/?q=deliv")  # a pipeline's name finds its application
    assert "No application matches" in page(client, "/?q=nothing-like-it")


def test_the_applications_page_shows_each_pipelines_latest_status(people, shop):
    older, newer = start(shop), start(shop)
    set_status(older, Status.TERMINAL)
    set_status(newer, Status.SUCCEEDED)
    Execution.objects.filter(id=older.id).update(created_at=timezone.now() - timedelta(hours=1))

    html = page(client_for(people["bob"]), "/")

    assert f'href="/executions/{newer.id}/" data-latest-status="SUCCEEDED"' in html


# --- Reader: no buttons, and the server refuses anyway ---------------------------------------------


def test_a_reader_sees_no_run_approve_or_cancel_buttons(people, shop):
    execution = running_judgment(shop)
    client = client_for(people["bob"])

    application = page(client, "/applications/shop/")
    execution_page = page(client, f"/executions/{execution.id}/")
    editor = page(client, f"/pipelines/{shop.id}/edit/")

    assert 'data-action="run"' not in application
    for action in ("approve", "stop-judgment", "cancel", "pause", "restart", "skip-wait", "evaluate"):
        assert f'data-action="{action}"' not in execution_page
    assert "judgment-banner" not in execution_page
    assert 'data-action="save"' not in editor and 'data-action="validate"' in editor


def test_a_reader_is_refused_every_action_with_403(people, shop):
    execution = running_judgment(shop)
    first, judgment = stage(execution, "1"), stage(execution, "2")
    client = client_for(people["bob"])
    before = AuditEvent.objects.count()
    base = f"/executions/{execution.id}"

    refused = {
        f"/pipelines/{shop.id}/run/": {"parameter-p0": "prod"},
        f"{base}/cancel/": {"reason": "no"},
        f"{base}/evaluate/": {"expression": "${trigger.user}"},
        f"{base}/pause/": {},
        f"{base}/resume/": {},
        f"{base}/stages/{first.id}/restart/": {},
        f"{base}/stages/{judgment.id}/skip-wait/": {},
        f"{base}/stages/{judgment.id}/judge/": {f"judge-{judgment.id}-decision": "continue"},
        f"/pipelines/{shop.id}/restore/": {"revision": 1},
        f"/pipelines/{shop.id}/edit/": {"action": "save", "text": json.dumps(shop.definition), "format": "json"},
    }
    for url, data in refused.items():
        assert client.post(url, data).status_code == 403, url
    assert client.get(f"/pipelines/{shop.id}/run/").status_code == 403

    assert AuditEvent.objects.count() == before
    assert Execution.objects.count() == 1
    assert Execution.objects.get(id=execution.id).status == Status.RUNNING
    assert "judgmentStatus" not in stage(execution, "2").context


# --- Executor: running a pipeline ---------------------------------------------------------------------


def test_an_executor_sees_the_run_button_and_a_form_built_from_the_parameters(people, shop):
    client = client_for(people["alice"])

    assert f'data-action="run" data-pipeline-id="{shop.id}"' in page(client, "/applications/shop/")
    form = page(client, f"/pipelines/{shop.id}/run/")

    assert '<select name="parameter-p0"' in form
    assert '<option value="staging">' in form and '<option value="prod">' in form
    assert re.search(r'<input type="text" name="parameter-p1" value="1.0"', form)
    assert 'Environment <span class="required"' in form and "What to deliver." in form


def test_running_a_pipeline_starts_an_execution_and_shows_it(people, shop):
    client = client_for(people["alice"])

    response = client.post(f"/pipelines/{shop.id}/run/", {"parameter-p0": "prod", "parameter-p1": "2.0"})

    execution = Execution.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/executions/{execution.id}/"
    assert execution.parameters == {"env": "prod", "version": "2.0"}
    assert execution.trigger["user"] == "alice"
    event = AuditEvent.objects.get(action="execution.started")
    assert event.source == "web" and event.actor == "alice"


def test_the_run_form_shows_parameter_problems_at_their_field(people, shop):
    response = client_for(people["alice"]).post(f"/pipelines/{shop.id}/run/", {"parameter-p1": "2.0"})

    assert response.status_code == 200
    assert 'data-error-for="parameter-p0"' in response.content.decode()
    assert not Execution.objects.exists()


def test_the_services_parameter_problems_land_at_their_field():
    form = RunPipelineForm({"parameter-p0": "x"}, parameter_config=[{"name": "env/x"}])
    assert form.is_valid()

    form.add_problems([Problem("/parameters/env~1x", "must be one of: a, b"), Problem("", "something else")])

    assert form.errors["p0"] == ["must be one of: a, b"]
    assert form.non_field_errors() == ["/: something else"]


def test_a_disabled_pipeline_is_refused_on_the_form(people, shop):
    do_save_pipeline({**shop.definition, "disabled": True})

    response = client_for(people["alice"]).post(f"/pipelines/{shop.id}/run/", {"parameter-p0": "prod"})

    assert response.status_code == 200 and "is disabled" in response.content.decode()
    assert not Execution.objects.exists()


# --- Executor: steering an execution ------------------------------------------------------------------


def test_a_judge_sees_the_banner_with_inputs_and_buttons(people, shop):
    execution = running_judgment(shop)
    judgment = stage(execution, "2")

    html = page(client_for(people["dave"]), f"/executions/{execution.id}/")

    assert f'data-judgment-stage-id="{judgment.id}"' in html
    assert "Check the staging site, then decide." in html
    assert '<option value="ship">' in html and '<option value="hold">' in html
    assert 'data-action="approve"' in html and 'data-action="stop-judgment"' in html
    assert 'data-action="cancel"' in html and 'data-action="pause"' in html
    assert f"/stages/{stage(execution, '1').id}/restart/" not in html  # the judgment after it still runs


def test_an_executor_outside_the_judges_role_gets_no_banner_and_is_refused(people, shop):
    execution = running_judgment(shop)
    judgment = stage(execution, "2")
    client = client_for(people["alice"])

    html = page(client, f"/executions/{execution.id}/")
    response = client.post(f"/executions/{execution.id}/stages/{judgment.id}/judge/",
                           {f"judge-{judgment.id}-decision": "continue"})

    assert "judgment-banner" not in html and 'data-action="cancel"' in html
    assert response.status_code == 403
    assert "judgmentStatus" not in stage(execution, "2").context


def test_approving_a_judgment_calls_the_service_and_records_the_comment(people, shop):
    execution = running_judgment(shop)
    judgment = stage(execution, "2")
    client = client_for(people["dave"])
    prefix = f"judge-{judgment.id}"

    response = client.post(f"/executions/{execution.id}/stages/{judgment.id}/judge/", {
        f"{prefix}-decision": "continue", f"{prefix}-judgment_input": "ship", f"{prefix}-comment": "Looks good",
    })

    context = stage(execution, "2").context
    assert context["judgmentStatus"] == "continue" and context["judgmentInput"] == "ship"
    assert context["lastModifiedBy"] == "dave"
    judged = AuditEvent.objects.get(action="stage.judged")
    comment = AuditEvent.objects.get(action="stage.judgment_comment")
    assert judged.source == "web" and comment.source == "web"
    assert comment.details == {"stage": "2", "stageName": "Approve", "decision": "continue", "comment": "Looks good"}
    assert "Approve: continued." in following_messages(client, response)


def test_a_judgment_with_an_unknown_input_is_not_recorded(people, shop):
    execution = running_judgment(shop)
    judgment = stage(execution, "2")
    client = client_for(people["dave"])

    response = client.post(f"/executions/{execution.id}/stages/{judgment.id}/judge/", {
        f"judge-{judgment.id}-decision": "continue", f"judge-{judgment.id}-judgment_input": "maybe",
    })

    assert "The judgment was not recorded" in following_messages(client, response)
    assert "judgmentStatus" not in stage(execution, "2").context


def test_cancel_with_a_reason(people, shop):
    execution = start(shop)
    client = client_for(people["alice"])

    response = client.post(f"/executions/{execution.id}/cancel/", {"reason": "wrong build"})

    execution.refresh_from_db()
    assert execution.status == Status.CANCELED and execution.cancel_reason == "wrong build"
    assert execution.canceled_by == "alice"
    assert AuditEvent.objects.get(action="execution.canceled").source == "web"
    html = following_messages(client, response)
    assert "Execution canceled." in html and 'data-action="cancel"' not in html


def test_a_refused_action_is_shown_as_a_message(people, shop):
    execution = start(shop)  # NOT_STARTED: it cannot be paused
    client = client_for(people["alice"])

    response = client.post(f"/executions/{execution.id}/pause/")

    html = following_messages(client, response)
    assert 'class="message error"' in html and "only a RUNNING one can be paused" in html


def test_pause_and_resume(people, shop):
    execution = start(shop)
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})
    client = client_for(people["alice"])

    client.post(f"/executions/{execution.id}/pause/")
    assert Execution.objects.get(id=execution.id).status == Status.PAUSED
    assert 'data-action="resume"' in page(client, f"/executions/{execution.id}/")
    client.post(f"/executions/{execution.id}/resume/")
    assert Execution.objects.get(id=execution.id).status == Status.RUNNING


def test_skip_a_running_wait(people, shop):
    execution = start(shop)
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})
    wait = stage(execution, "1")
    client = client_for(people["alice"])

    assert f'/stages/{wait.id}/skip-wait/' in page(client, f"/executions/{execution.id}/")
    client.post(f"/executions/{execution.id}/stages/{wait.id}/skip-wait/")

    assert stage(execution, "1").context["skipRemainingWait"] is True


def test_restart_a_finished_stage(people, shop):
    execution = start(shop)
    set_status(execution, Status.TERMINAL, **{"1": Status.TERMINAL})
    wait = stage(execution, "1")
    client = client_for(people["alice"])

    assert f'/stages/{wait.id}/restart/' in page(client, f"/executions/{execution.id}/")
    client.post(f"/executions/{execution.id}/stages/{wait.id}/restart/")

    assert Execution.objects.get(id=execution.id).status == Status.RUNNING
    assert stage(execution, "1").context["restartDetails"]["restartedBy"] == "alice"


def test_a_stage_of_another_execution_is_not_found(people, shop):
    execution, other = start(shop), start(shop)
    response = client_for(people["alice"]).post(
        f"/executions/{execution.id}/stages/{stage(other, '1').id}/restart/"
    )
    assert response.status_code == 404


# --- The execution page: graph, panel, live hooks -------------------------------------------------------


def test_the_execution_page_draws_the_graph_with_live_hooks(people, shop):
    execution = running_judgment(shop)
    first, judgment = stage(execution, "1"), stage(execution, "2")

    html = page(client_for(people["bob"]), f"/executions/{execution.id}/")

    assert f'data-live-url="/ws/executions/{execution.id}/"' in html
    assert f'data-execution-id="{execution.id}" data-execution-status="RUNNING"' in html
    node = re.search(rf'<a class="node status-RUNNING"[^>]*data-stage-id="{judgment.id}"[^>]*>', html, re.S)
    assert node and 'data-stage-status="RUNNING"' in node.group(0)
    assert f'data-start-time="{int(judgment.start_time.timestamp() * 1000)}"' in node.group(0)
    assert f'data-stage-id="{first.id}"' in html
    assert 'data-edge-from="1" data-edge-to="2"' in html
    assert "Trigger as JSON" in html and "staging" in html


def test_the_stage_panel_shows_context_outputs_and_errors(people, shop):
    execution = start(shop)
    StageExecution.objects.filter(execution=execution, ref_id="1").update(
        status=Status.TERMINAL, outputs={"image": "shop:1.0"},
        context={"exception": {"details": {"errors": ["registry unreachable"]}}},
    )
    first = stage(execution, "1")
    client = client_for(people["bob"])

    panel = page(client, f"/executions/{execution.id}/stages/{first.id}/")
    inline = page(client, f"/executions/{execution.id}/?stage={first.id}")

    assert "registry unreachable" in panel and "&quot;image&quot;: &quot;shop:1.0&quot;" in panel
    assert "<html" not in panel
    assert f'data-panel-stage-id="{first.id}"' in inline


def test_the_execution_fragment_is_the_live_target_alone(people, shop):
    execution = running_judgment(shop)
    client = client_for(people["bob"])

    fragment = page(client, f"/executions/{execution.id}/?fragment=execution")
    again = page(client, f"/executions/{execution.id}/?fragment=execution")

    assert fragment.lstrip().startswith('<div id="execution"') and "<html" not in fragment
    version = re.search(r'data-version="(\w+)"', fragment).group(1)
    assert f'data-version="{version}"' in again
    StageExecution.objects.filter(execution=execution, ref_id="2").update(status=Status.SUCCEEDED)
    assert f'data-version="{version}"' not in page(client, f"/executions/{execution.id}/?fragment=execution")


def test_the_graph_puts_stages_in_columns_by_depth():
    def node(ref, *requisites, position=0):
        return StageView(StageExecution(ref_id=ref, requisite_ref_ids=list(requisites), position=position))

    views = [node("1"), node("2", "1", position=1), node("3", "1", position=2), node("4", "2", "3", position=3),
             node("5", "1", "4", position=4)]
    graph = graph_layout(views)

    columns = [view.x for view in views]
    assert columns[0] < columns[1] == columns[2] < columns[3] < columns[4]  # 5 after 4: the longest path counts
    assert views[1].y != views[2].y  # parallel branches one under the other
    assert len(graph["edges"]) == 6
    assert graph["width"] > columns[4]


# --- The application page ------------------------------------------------------------------------------


def test_the_application_page_shows_stage_bars_and_live_hooks(people, shop):
    execution = running_judgment(shop)
    first = stage(execution, "1")

    html = page(client_for(people["bob"]), "/applications/shop/")

    assert 'data-live-url="/ws/applications/shop/"' in html
    assert f'data-execution-id="{execution.id}" data-execution-status="RUNNING"' in html
    segment = re.search(rf'<a role="listitem" class="seg status-SUCCEEDED"[^>]*data-stage-id="{first.id}"[^>]*>',
                        html, re.S).group(0)
    assert 'title="Wait — SUCCEEDED — ' in segment and "data-start-time=" in segment and "data-end-time=" in segment


def test_the_application_page_filters_by_status_and_trigger(people, shop):
    running, succeeded = start(shop), start(shop)
    set_status(running, Status.RUNNING)
    set_status(succeeded, Status.SUCCEEDED)
    hooked = do_start_execution(shop, parameters={"env": "prod"}, trigger={"type": "webhook"}, user="hooks")
    client = client_for(people["bob"])

    by_status = page(client, "/applications/shop/?status=RUNNING&status=SUCCEEDED")
    by_trigger = page(client, "/applications/shop/?trigger_type=webhook")

    assert str(running.id) in by_status and str(succeeded.id) in by_status and str(hooked.id) not in by_status
    assert str(hooked.id) in by_trigger and str(running.id) not in by_trigger
    assert '<option value="webhook" selected>' in by_trigger


def test_the_application_page_shows_the_ten_newest_executions_per_pipeline(people, shop):
    executions = [start(shop) for _ in range(12)]
    for age, execution in enumerate(reversed(executions)):
        Execution.objects.filter(id=execution.id).update(created_at=timezone.now() - timedelta(minutes=age))

    html = page(client_for(people["bob"]), "/applications/shop/")

    assert all(str(execution.id) in html for execution in executions[2:])
    assert str(executions[0].id) not in html and str(executions[1].id) not in html


def test_the_application_fragment_is_the_live_target_alone(people, shop):
    start(shop)
    fragment = page(client_for(people["bob"]), "/applications/shop/?fragment=executions")

    assert fragment.lstrip().startswith('<div id="executions"') and "<html" not in fragment


# --- The pipeline editor ---------------------------------------------------------------------------------


BROKEN_YAML = """application: shop
name: deliver
stages:
  - refId: "1"
    name: Wait
    type: wait
    waitTime: soon
  - refId: "2"
    type: nope
    requisiteStageRefIds: ["9"]
"""


def test_the_editor_validates_and_shows_each_problem_at_its_pointer_and_line(people, shop):
    response = client_for(people["bob"]).post(
        f"/pipelines/{shop.id}/edit/", {"action": "validate", "text": BROKEN_YAML, "format": "yaml"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'data-pointer="/stages/0/waitTime" data-line="7"', html)
    assert 'data-pointer="/stages/1/name"' not in html  # a stage without a name is named after its type
    assert re.search(r'data-pointer="/stages/1/requisiteStageRefIds/0" data-line="10"', html)
    assert 'class="goto-line" data-line="7"' in html
    assert "waitTime: soon" in html  # the text stays as typed


def test_the_editor_reports_a_syntax_error_with_its_line(people, shop):
    response = client_for(people["bob"]).post(
        f"/pipelines/{shop.id}/edit/", {"action": "validate", "text": '{"name": "x",\n "stages": [}', "format": "json"}
    )

    assert re.search(r'data-pointer="" data-line="2"', response.content.decode())


def test_the_editor_saves_for_a_writer(people, shop):
    document = {**shop.definition, "description": "Now with a description."}
    client = client_for(people["alice"])

    response = client.post(f"/pipelines/{shop.id}/edit/",
                           {"action": "save", "text": json.dumps(document), "format": "json"})

    assert response.status_code == 302 and response["Location"] == f"/pipelines/{shop.id}/edit/?format=json&view=visual"
    shop.refresh_from_db()
    assert shop.definition["description"] == "Now with a description."
    assert shop.revisions.count() == 2
    assert AuditEvent.objects.filter(action="pipeline.saved", source="web", actor="alice").exists()
    assert "Saved as revision 2." in following_messages(client, response)


def test_the_editor_saves_nothing_with_problems(people, shop):
    response = client_for(people["alice"]).post(
        f"/pipelines/{shop.id}/edit/", {"action": "save", "text": BROKEN_YAML, "format": "yaml"}
    )

    assert response.status_code == 200 and "Not saved" in response.content.decode()
    assert shop.revisions.count() == 1


def test_the_editor_refuses_a_rename(people, shop):
    document = {**shop.definition, "name": "renamed"}
    response = client_for(people["alice"]).post(
        f"/pipelines/{shop.id}/edit/", {"action": "save", "text": json.dumps(document), "format": "json"}
    )

    assert 'data-pointer="/name"' in response.content.decode()
    assert not Pipeline.objects.filter(name="renamed").exists()


def test_the_editor_switches_between_yaml_and_json(people, shop):
    client = client_for(people["bob"])
    yaml_text = page(client, f"/pipelines/{shop.id}/edit/")
    assert "application: shop" in yaml_text

    response = client.post(f"/pipelines/{shop.id}/edit/", {"action": "json", "text": "application: shop\nname: x\n",
                                                           "format": "yaml"})

    html = response.content.decode()
    assert "&quot;application&quot;: &quot;shop&quot;" in html
    assert 'value="json" class="on"' in html


def test_triggers_and_notifications_are_described_in_words(people, shop):
    do_save_pipeline({
        **shop.definition,
        "triggers": [{"type": "docker", "registry": "registry.local", "repository": "shop/web", "enabled": True},
                     {"type": "mystery"}],
        "notifications": [{"type": "slack", "address": "ops", "when": ["pipeline.failed"]}],
    })

    html = page(client_for(people["bob"]), f"/pipelines/{shop.id}/edit/")

    assert "Runs when an image is pushed to registry registry.local" in html
    assert "Runs on a mystery trigger" in html
    assert "Sends Slack messages to #ops on failure" in html


def test_describing_triggers_and_notifications():
    assert describe_trigger({"type": "cron", "cronExpression": "0 0 * * *", "enabled": False}) == (
        "Runs on the schedule 0 0 * * * (disabled)"
    )
    assert describe_notification({"type": "email", "address": "ops@example.com",
                                  "when": ["pipeline.complete", "pipeline.failed"]}) == (
        "Sends e-mails to ops@example.com on success, on failure"
    )
    assert describe_notification({"type": "pager", "address": "team"}) == (
        "Sends nothing: pager notifications are not sent (sent: slack, email, webhook, microsoftteams, googlechat)"
    )
    assert describe_notification({"type": "slack", "address": "ops"}) == (
        "Sends Slack messages to #ops — never: it names no moment in when"
    )
    assert describe_notification({"type": "googlechat", "address": "https://chat.example.com/v1/spaces/A?key=k",
                                  "when": ["manualJudgment"]}) == (
        "Sends Google Chat messages to https://chat.example.com/… when a judgment is awaited"
    )


def test_the_diff_between_two_revisions_and_restore(people, shop):
    do_save_pipeline({**shop.definition, "description": "second"})
    client = client_for(people["alice"])

    diff = page(client, f"/pipelines/{shop.id}/diff/?base=1&other=2")
    assert '<span class="diff-added">+  &quot;description&quot;: &quot;second&quot;' in diff
    assert 'data-action="restore"' in diff

    response = client.post(f"/pipelines/{shop.id}/restore/", {"revision": 1})

    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.revisions.count() == 3 and "description" not in shop.definition
    assert "Restored revision 1 as revision 3." in following_messages(client, response)


def test_the_diff_names_a_missing_revision(people, shop):
    html = page(client_for(people["bob"]), f"/pipelines/{shop.id}/diff/?base=1&other=7")

    assert "No revision 7." in html and 'data-action="restore"' not in html


# --- Activity ----------------------------------------------------------------------------------------------


def test_activity_is_restricted_to_readable_applications(people, shop, blog):
    start(shop)
    start(blog)
    record("token.created", "root", object_type="token", object_id="1")

    bob = page(client_for(people["bob"]), "/activity/?action=execution.started")
    charlie = page(client_for(people["charlie"]), "/activity/?action=execution.started")
    root = page(client_for(people["root"]), "/activity/")

    assert 'href="/applications/shop/"' in bob and 'href="/applications/blog/"' not in bob
    assert 'href="/applications/blog/"' in charlie and 'href="/applications/shop/"' not in charlie
    assert 'data-action="token.created"' in root


def test_activity_filters_by_application_action_actor_and_source(people, shop):
    start(shop)
    do_save_pipeline({**shop.definition, "description": "x"}, user="alice")
    client = client_for(people["bob"])

    def actions(query: str) -> set[str]:
        return set(re.findall(r'<tr data-event-id="\d+" data-action="([\w.]+)"', page(client, f"/activity/?{query}")))

    assert actions("application=shop&action=pipeline.saved") == {"pipeline.saved"}
    assert actions("actor=alice") == {"execution.started", "pipeline.saved"}
    assert actions("actor=setup&source=system") == {"permission.granted"}
    assert actions("source=web") == set()
    later = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert actions(f"created_after={later}") == set()


def test_activity_is_paginated(people, shop):
    for number in range(60):
        record("test.event", "root", application=shop.application, details={"n": number})
    client = client_for(people["bob"])

    first = page(client, "/activity/?action=test.event")
    second = page(client, "/activity/?action=test.event&page=2")

    assert first.count('data-action="test.event"') == 50 and second.count('data-action="test.event"') == 10
    assert 'href="?action=test.event&amp;page=2"' in first


# --- Tokens --------------------------------------------------------------------------------------------------


def test_tokens_are_created_shown_once_and_revoked(people):
    client = client_for(people["bob"])

    created = client.post("/tokens/", {"name": "ci"})

    html = created.content.decode()
    secret = re.search(r'<input[^>]*value="(cdp_[^"]+)"[^>]*id="new-token-value"', html).group(1)
    row = ApiToken.objects.get(user=people["bob"], name="ci")
    assert row.key_hash == ApiToken.hash(secret)
    assert created["Cache-Control"] == "no-store"
    assert secret not in page(client, "/tokens/")
    assert AuditEvent.objects.filter(action="token.created", source="web").exists()

    duplicate = client.post("/tokens/", {"name": "ci"})
    assert "exists already" in duplicate.content.decode()

    revoked = client.post(f"/tokens/{row.id}/revoke/")
    assert revoked.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None and not row.is_usable
    assert f'data-token-id="{row.id}" data-token-state="revoked"' in page(client, "/tokens/")


def test_another_users_token_cannot_be_revoked(people):
    client_for(people["bob"]).post("/tokens/", {"name": "mine"})
    row = ApiToken.objects.get(name="mine")

    assert client_for(people["charlie"]).post(f"/tokens/{row.id}/revoke/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


# --- Query counts: constant whatever the amount of data ----------------------------------------------------------


def add_pipelines(application: str, count: int, executions: int) -> None:
    for number in range(count):
        pipeline, _ = do_save_pipeline({"application": application, "name": f"extra-{number}", "stages": STAGES})
        for _ in range(executions):
            execution = do_start_execution(pipeline, user="alice")
            set_status(execution, Status.RUNNING, **{"1": Status.SUCCEEDED, "2": Status.RUNNING})


def test_the_applications_page_costs_the_same_queries_for_more_data(people, shop):
    client = client_for(people["root"])
    start(shop)
    few = count_queries(client, "/")

    for name in ("a1", "a2", "a3", "a4"):
        add_pipelines(name, 3, 2)
    many = count_queries(client, "/")

    assert few == many <= 7


def test_the_application_page_costs_the_same_queries_for_more_data(people, shop):
    client = client_for(people["dave"])
    start(shop)
    few = count_queries(client, "/applications/shop/")

    add_pipelines("shop", 4, 12)
    many = count_queries(client, "/applications/shop/")

    assert few == many <= 11


def test_the_execution_page_costs_the_same_queries_for_more_stages(people):
    client = client_for(people["dave"])

    def execution_with(stage_count: int) -> Execution:
        """Every stage a running judgment the viewer may make: the most the page checks."""
        stages = [{"refId": str(n), "name": f"Stage {n}", "type": "manualJudgment", "selectedStageRoles": [JUDGES],
                   "requisiteStageRefIds": [str(n - 1)] if n > 1 else []} for n in range(1, stage_count + 1)]
        pipeline, _ = do_save_pipeline({"application": "graph", "name": f"p{stage_count}", "stages": stages})
        do_grant(pipeline.application, people["dave"], "execute", actor="setup")
        execution = do_start_execution(pipeline, user="root")
        set_status(execution, Status.RUNNING, **{str(n): Status.RUNNING for n in range(1, stage_count + 1)})
        return execution

    small, large = execution_with(2), execution_with(12)
    few = count_queries(client, f"/executions/{small.id}/")
    many = count_queries(client, f"/executions/{large.id}/")

    assert few == many <= 8
    assert page(client, f"/executions/{large.id}/").count("judgment-banner") == 12


# --- The expression box ---------------------------------------------------------------------------


def test_an_executor_evaluates_an_expression_against_the_execution_from_its_page(people, shop):
    execution = running_judgment(shop)
    client = client_for(people["dave"])
    assert 'data-action="evaluate"' in page(client, f"/executions/{execution.id}/")

    response = client.post(f"/executions/{execution.id}/evaluate/",
                           {"expression": "${#stage('Wait').status} for ${parameters.env} in ${nowhere}"})

    assert response.status_code == 200
    body = response.content.decode()
    assert "SUCCEEDED for staging in ${nowhere}" in body
    assert 'id="evaluation-summary"' in body and "nowhere" in body


def test_the_expression_box_evaluates_as_a_chosen_stage(people, shop):
    execution = running_judgment(shop)
    judgment = stage(execution, "2")
    client = client_for(people["dave"])

    response = client.post(f"/executions/{execution.id}/evaluate/",
                           {"expression": "${#currentStage().name}", "stage": str(judgment.id)})

    assert "Approve" in response.content.decode()


def test_the_expression_box_shows_a_refused_or_over_long_expression(people, shop, settings):
    execution = running_judgment(shop)
    client = client_for(people["dave"])
    settings.EXPRESSION_MAX_LENGTH = 20

    too_long = client.post(f"/executions/{execution.id}/evaluate/", {"expression": "${'" + "a" * 30 + "'}"})
    over_budget = client.post(f"/executions/{execution.id}/evaluate/", {"expression": "${'ab' * 10000000}"})

    assert too_long.status_code == 400 and "At most 20 characters" in too_long.content.decode()
    assert over_budget.status_code == 200 and 'data-evaluation="error"' in over_budget.content.decode()


def test_the_trigger_filter_offers_each_kind_the_applications_executions_have_once(people, shop, blog):
    for kind in ("webhook", "git", "git", "cron"):
        do_start_execution(shop, parameters={"env": "prod"}, trigger={"type": kind}, user="hooks")
    do_start_execution(blog, trigger={"type": "docker"}, user="hooks")

    html = page(client_for(people["bob"]), "/applications/shop/")

    offered = re.findall(r'<option value="(\w+)"', html.split('name="trigger_type"', 1)[1].split("</select>", 1)[0])
    assert offered == ["cron", "git", "webhook"], "each kind once, in order; another application's not at all"
