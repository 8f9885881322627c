"""A new user's first hour, in a real browser: create an application, build a pipeline with the stage editor, run it.

As in test_browser.py: the ASGI web process and real RQ workers on the test database and Redis, Debian's
Chromium driven by Playwright (no downloaded browser). The user starts with no grant at all; everything
after signing in is done on the pages: a new application, a new blank pipeline built only with the stage
editor (wait → manual judgment → webhook, a parameter), a round trip through the text view with an edit
made there, a save, a run with a parameter, an approval, and the webhook's call received. Then a
Spinnaker JSON export is imported from a file, and leaving the editor with unsaved changes asks first.
Screenshots of each page go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
import urllib.request

from django.contrib.auth.models import User

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_create_token, do_grant
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, Pipeline
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_stage
from tests.hookserver import Reply
from tests.web.test_browser import (  # noqa: F401  (fixtures)
    LIVE_TIMEOUT_MS,
    PASSWORD,
    browser_available,
    open_chromium,
    screenshot,
    sign_in,
    web_server,
)

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser_available fixture names it: a failure in CI, a skip elsewhere
    pass

SPINNAKER_EXPORT = {
    "application": "somewhere-else", "name": "from-deck", "id": "8d0c1a52-1f0e-4c59-9d7c-1e2f3a4b5c6d",
    "index": 0, "keepWaitingPipelines": False, "limitConcurrent": True, "schema": "1",
    "parameterConfig": [{"name": "tag", "default": "latest", "required": True}],
    "triggers": [],
    "stages": [
        {"refId": "1", "name": "Bake time", "type": "wait", "waitTime": 5, "requisiteStageRefIds": []},
        {"refId": "2", "name": "Go?", "type": "manualJudgment", "requisiteStageRefIds": ["1"]},
        {"refId": "3", "name": "Tell CI", "type": "webhook", "url": "https://ci.example.com/hook",
         "requisiteStageRefIds": ["2"]},
    ],
}


def add_stage(page: Page, type_name: str) -> None:
    page.select_option("#add-stage-type", type_name)
    page.click("#add-stage")


def stage_field(page: Page, name: str):
    return page.locator(f"#stage-form [data-field='{name}']").first


def graph_names(page: Page) -> list[str]:
    return page.locator("#editor-graph .editor-node .node-name").all_text_contents()


def build_pipeline(page: Page, hook_url: str) -> None:
    """Three stages, each added with "Add stage" and filled in through its generated form, and a parameter."""
    expect(page.locator("#visual-view")).to_be_visible()
    add_stage(page, "wait")
    stage_field(page, "name").fill("Soak")
    stage_field(page, "waitTime").fill("1")
    add_stage(page, "manualJudgment")
    stage_field(page, "name").fill("Approve")
    stage_field(page, "instructions").fill("Ship ${parameters.version}?")
    page.click("#stage-form [data-add=judgmentInputs]")
    page.locator("#stage-form [data-field=judgmentInputs] [data-field=value]").fill("promote")
    add_stage(page, "webhook")
    stage_field(page, "name").fill("Announce")
    stage_field(page, "url").fill(hook_url)
    stage_field(page, "method").select_option("POST")
    stage_field(page, "payload").fill('{"version": "${parameters.version}"}')
    page.click("[data-add=parameterConfig]")
    page.locator("#parameters-form [data-field=name]").fill("version")
    page.locator("#parameters-form [data-field=default]").fill("1.0")
    # A trigger and a notification, each through fields: the trigger's are those its type declares.
    page.click("#triggers-form [data-add=triggers]")
    page.locator("#triggers-form [data-field=type]").select_option("git")
    page.locator("#triggers-form [data-field=source]").select_option("github")
    page.locator("#triggers-form [data-field=project]").fill("shop")
    page.locator("#triggers-form [data-field=slug]").fill("web")
    page.locator("#triggers-form [data-field=branch]").fill("main")
    page.click("#notifications-form [data-add=notifications]")
    page.locator("#notifications-form [data-field=type]").select_option("slack")
    page.locator("#notifications-form [data-field=address]").fill("deploys")
    page.locator("#notifications-form [data-field=when] input[value='pipeline.complete']").check()
    page.locator("#notifications-form [data-field=when] input[value='pipeline.failed']").check()
    # Each new stage waits on the one chosen before it: a chain, drawn as the stages were added.
    expect(page.locator("#editor-graph .editor-node")).to_have_count(3)
    expect(page.locator("#editor-graph path.edge")).to_have_count(2)
    assert graph_names(page) == ["Soak", "Approve", "Announce"]
    expect(page.locator("#visual-valid")).to_be_visible()
    expect(page.locator("#unsaved-note")).to_be_visible()


def edit_in_the_text_view_and_come_back(page: Page) -> None:
    """The forms' document is the text's; an edit made in the text reaches the forms and the graph."""
    page.click("[data-view=text]")
    text = page.locator("#pipeline-text")
    expect(text).to_be_visible()
    expect(text).to_have_value(re.compile(r"waitTime: 1\b"))
    assert "promote" in text.input_value() and "Announce" in text.input_value()
    screenshot(page, "first-hour-text-view")
    text.fill(text.input_value().replace("name: Soak", "name: Soak a bit"))
    page.click("[data-view=visual]")
    expect(page.locator("#editor-graph .editor-node .node-name").first).to_have_text("Soak a bit")
    # And back again: nothing of either edit is lost.
    page.click("[data-view=text]")
    assert "Soak a bit" in text.input_value() and "${parameters.version}" in text.input_value()
    page.click("[data-view=visual]")
    page.click("#editor-graph .editor-node[data-ref-id='3']")
    expect(stage_field(page, "url")).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/announce$"))


def run_and_approve(page: Page, base: str, pipeline_id: str) -> str:
    """Run with a parameter from the application page, then approve at the judgment banner; the execution's id."""
    page.goto(f"{base}/applications/kiosk/")
    page.click(f"[data-action=run][data-pipeline-id='{pipeline_id}']")
    dialog = page.locator("#run-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("[name=parameter-p0]").fill("2.0")
    dialog.locator("[data-action=start]").click()
    page.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}/$"))
    banner = page.locator(".judgment-banner")
    expect(banner).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(banner).to_contain_text("Ship 2.0?")
    screenshot(page, "first-hour-judgment")
    banner.locator("select[name$=judgment_input]").select_option("promote")
    banner.locator("[data-action=approve]").click()
    expect(page.locator("#execution-status")).to_have_attribute(
        "data-execution-status", Status.SUCCEEDED, timeout=LIVE_TIMEOUT_MS)
    screenshot(page, "first-hour-succeeded")
    return page.url.rstrip("/").rsplit("/", 1)[1]


def import_export(page: Page, base: str, path) -> None:
    page.goto(f"{base}/applications/kiosk/new-pipeline/")
    page.check("input[name=source][value=import]")
    page.set_input_files("input[name=file]", str(path))
    screenshot(page, "first-hour-import")
    page.click("[data-action=create-pipeline]")
    page.wait_for_url(re.compile(r"/pipelines/[0-9a-f-]{36}/edit/$"))
    expect(page.locator("#messages")).to_contain_text("Created pipeline from-deck.")
    expect(page.locator("#editor-graph .editor-node")).to_have_count(3)
    assert graph_names(page) == ["Bake time", "Go?", "Tell CI"]


def leaving_with_unsaved_changes_asks(page: Page, base: str) -> list[str]:
    """An edit not saved: leaving the page brings up the browser's "leave site?" question, declined here."""
    asked: list[str] = []

    def decline(dialog) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", decline)
    page.click("#editor-graph .editor-node[data-ref-id='1']")
    stage_field(page, "waitTime").fill("7")
    try:
        page.goto(f"{base}/", timeout=3000)
    except Exception:  # noqa: BLE001  (the navigation is declined, so it never finishes)
        pass
    page.remove_listener("dialog", decline)
    return asked


def test_a_new_user_builds_runs_and_imports_pipelines_in_the_browser(
    browser_available, web_server, workers, hook_server, tmp_path  # noqa: F811  (fixtures imported above)
):
    User.objects.create_user("erin", password=PASSWORD)
    hook_server.script("/announce", Reply(200, {"ok": True}))
    export = tmp_path / "from-deck.json"
    export.write_text(json.dumps(SPINNAKER_EXPORT))
    problems: list[str] = []
    workers.start(1)

    with open_chromium() as browser:
        page = sign_in(browser, web_server, "erin", problems)
        expect(page.locator("#no-access-hint")).to_be_visible()
        screenshot(page, "first-hour-no-access")
        page.click("#new-application-link")
        page.fill("#id_name", "kiosk")
        page.fill("#id_owner", "team-kiosk")
        screenshot(page, "first-hour-new-application")
        page.click("[data-action=create-application]")
        expect(page.locator("#application-name")).to_have_text("kiosk")
        page.click("#new-pipeline-link")
        page.fill("#id_name", "ship")
        screenshot(page, "first-hour-new-pipeline")
        page.click("[data-action=create-pipeline]")
        page.wait_for_url(re.compile(r"/pipelines/[0-9a-f-]{36}/edit/"))
        pipeline_id = page.url.split("/pipelines/")[1].split("/")[0]

        build_pipeline(page, hook_server.url("/announce"))
        screenshot(page, "first-hour-stage-editor")
        edit_in_the_text_view_and_come_back(page)
        page.click("[data-action=save]")
        expect(page.locator("#messages")).to_contain_text("Saved as revision 2.")
        expect(page.locator("#unsaved-note")).to_be_hidden()
        expect(page.locator("#trigger-descriptions")).to_contain_text("Runs on a push to github repository shop/web")
        expect(page.locator("#notification-descriptions")).to_contain_text("Sends Slack messages to #deploys")
        expect(page.locator("#editor-graph .editor-node")).to_have_count(3)

        execution_id = run_and_approve(page, web_server, pipeline_id)
        page.goto(f"{web_server}/applications/kiosk/")
        expect(page.locator(f"#runs-{pipeline_id} rect[data-status=SUCCEEDED]")).to_have_count(1)
        screenshot(page, "first-hour-application-runs")
        page.goto(f"{web_server}/pipelines/{pipeline_id}/edit/")
        expect(page.locator("#stage-durations rect")).to_have_count(3)
        screenshot(page, "first-hour-pipeline-stage-durations")
        import_export(page, web_server, export)
        asked = leaving_with_unsaved_changes_asks(page, web_server)
        screenshot(page, "first-hour-unsaved")
        expect(page.locator("#unsaved-note")).to_be_visible()

    assert asked == ["beforeunload"]
    assert problems == []
    saved = Pipeline.objects.get(id=pipeline_id).definition
    assert [(s["refId"], s["type"], s.get("requisiteStageRefIds")) for s in saved["stages"]] == [
        ("1", "wait", []), ("2", "manualJudgment", ["1"]), ("3", "webhook", ["2"])]
    assert saved["stages"][0] == {"refId": "1", "name": "Soak a bit", "type": "wait", "requisiteStageRefIds": [],
                                  "waitTime": 1}
    assert saved["parameterConfig"] == [{"name": "version", "default": "1.0"}]
    assert saved["triggers"] == [{"type": "git", "enabled": True, "source": "github", "project": "shop",
                                  "slug": "web", "branch": "main"}]
    assert saved["notifications"] == [{"type": "slack", "address": "deploys",
                                       "when": ["pipeline.complete", "pipeline.failed"]}]
    execution = Execution.objects.get(id=execution_id)
    assert execution.status == Status.SUCCEEDED and execution.parameters == {"version": "2.0"}
    [call] = hook_server.calls("/announce")
    assert call.json == {"version": "2.0"}
    imported = Pipeline.objects.get(application__name="kiosk", name="from-deck")
    assert imported.definition["stages"][2]["url"] == "https://ci.example.com/hook"
    assert AuditEvent.objects.filter(action="application.created", actor="erin", source="web").exists()


def test_a_live_change_hides_the_actions_it_makes_meaningless_at_once(
    browser_available, web_server, workers  # noqa: F811  (fixtures imported above)
):
    """With the page's fragment requests held back, only the WebSocket event can hide Pause and Skip wait."""
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "soak", "stages": [
        {"refId": "1", "name": "Soak", "type": "wait", "waitTime": 600}]}, user="setup")
    user = User.objects.create_user("erin", password=PASSWORD)
    for action in ("read", "execute"):
        do_grant(pipeline.application, user, action, actor="setup")
    token = do_create_token(user, "browser")[1]
    workers.start(1)
    execution = do_start_execution(pipeline, user=user)
    wait_for_stage(execution.id, "1", {Status.RUNNING})
    problems: list[str] = []

    with open_chromium() as browser:
        page = sign_in(browser, web_server, "erin", problems)
        page.goto(f"{web_server}/executions/{execution.id}/")
        expect(page.locator("#live-status")).to_have_attribute("data-live-state", "open")
        expect(page.locator("[data-action=pause]")).to_be_visible()
        expect(page.locator("[data-action=skip-wait]")).to_be_visible()
        held: list[str] = []
        page.route(re.compile(r".*[?&]fragment="), lambda route: (held.append(route.request.url), route.abort()))
        request = urllib.request.Request(f"{web_server}/api/executions/{execution.id}/cancel/", method="POST",
                                         data=b"{}", headers={"Authorization": f"Bearer {token}",
                                                              "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()
        expect(page.locator("#execution-status")).to_have_attribute("data-execution-status", Status.CANCELED,
                                                                    timeout=LIVE_TIMEOUT_MS)
        expect(page.locator("[data-action=pause]")).to_be_hidden()
        expect(page.locator("[data-action=skip-wait]")).to_be_hidden()
        expect(page.locator("#execution-actions")).to_be_hidden()
        screenshot(page, "live-change-hides-actions")
        for _ in range(50):  # the page then asks for its fragment (after the change), which is held back
            if held:
                break
            page.wait_for_timeout(100)
        expect(page.locator("[data-action=pause]")).to_be_hidden()

    assert held, "the page asked for its fragment, and it was held back: only the event hid the actions"


def test_a_long_value_in_the_stage_panel_wraps_inside_the_panel(
    browser_available, web_server, workers  # noqa: F811  (fixtures imported above)
):
    long_value = "https://artifacts.example.com/" + "a1b2c3d4" * 60  # one unbroken word, far wider than the panel
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "wide", "stages": [
        {"refId": "1", "name": "Note", "type": "wait", "waitTime": 0, "artifactUrl": long_value}]}, user="setup")
    user = User.objects.create_user("erin", password=PASSWORD)
    do_grant(pipeline.application, user, "read", actor="setup")
    workers.start(1)
    execution = do_start_execution(pipeline, user="setup")
    stage = wait_for_stage(execution.id, "1", {Status.SUCCEEDED})
    problems: list[str] = []

    with open_chromium() as browser:
        page = sign_in(browser, web_server, "erin", problems)
        page.goto(f"{web_server}/executions/{execution.id}/?stage={stage.id}")
        context = page.locator("#stage-panel pre.json", has_text="a1b2c3d4").first
        expect(context).to_be_visible()
        screenshot(page, "stage-panel-long-value")
        widths = context.evaluate("element => [element.scrollWidth, element.clientWidth]")
        panel_right = page.locator("#stage-panel").evaluate("element => element.getBoundingClientRect().right")
        block_right = context.evaluate("element => element.getBoundingClientRect().right")

    assert widths[0] <= widths[1] + 1, f"the value runs out of its block: {widths}"
    assert block_right <= panel_right + 1
    assert problems == []
