"""The stage editor's forms in a real browser: the options every stage has, triggers and notifications as fields.

As in test_browser.py: the ASGI web process on the test database and Redis, Debian's Chromium driven by
Playwright. A pipeline saved with options already set opens with them shown in the form; options, a trigger
(with the fields its type declares) and a notification are then set only through the forms, saved, and read
back from the saved definition. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re

from apps.pipelines.models import Application, Pipeline
from apps.pipelines.services import do_save_pipeline
from tests.web.test_browser import (  # noqa: F401  (fixtures)
    browser_available,
    make_user,
    open_chromium,
    screenshot,
    sign_in,
    web_server,
)

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser_available fixture names it: a failure in CI, a skip elsewhere
    pass


def option(page: Page, name: str):
    return page.locator(f"#stage-options [data-field='{name}']").first


def open_options(page: Page, ref_id: str) -> None:
    page.click(f"#editor-graph .editor-node[data-ref-id='{ref_id}']")
    if not page.locator("#stage-options").evaluate("box => box.open"):
        page.click("#stage-options summary")


def set_options_of_the_first_stage(page: Page) -> None:
    open_options(page, "1")
    option(page, "stageEnabled").fill("${parameters.env == 'prod'}")
    page.select_option("#opt-onFailure", "ignore")
    option(page, "stageTimeoutMs").fill("60000")
    option(page, "restrictExecutionDuringTimeWindow").check()
    option(page, "startHour").fill("10")
    option(page, "days").fill("2\n3")
    option(page, "sendNotifications").check()
    page.click("#stage-options [data-add=notifications]")
    option(page, "type").select_option("email")
    option(page, "address").fill("ops@example.com")
    page.locator("#stage-options [data-field=when] input[value='stage.failed']").check()
    option(page, "comments").fill("Only for production")


def test_stage_options_triggers_and_notifications_are_edited_as_fields(
    browser_available, web_server, tmp_path  # noqa: F811  (fixtures imported above)
):
    pipeline, _ = do_save_pipeline({"application": "kiosk", "name": "ship", "stages": [
        {"refId": "1", "name": "Soak", "type": "wait", "waitTime": 5},
        {"refId": "2", "name": "Check", "type": "wait", "waitTime": 1, "requisiteStageRefIds": ["1"],
         "failPipeline": False, "completeOtherBranchesThenFail": True,
         "stageEnabled": {"type": "expression", "expression": "${trigger.type == 'manual'}"}},
    ]}, user="setup")
    make_user("fran", Application.objects.get(name="kiosk"), ["read", "write"])
    problems: list[str] = []

    with open_chromium() as browser:
        page = sign_in(browser, web_server, "fran", problems)
        page.goto(f"{web_server}/pipelines/{pipeline.id}/edit/")
        expect(page.locator("#visual-view")).to_be_visible()
        open_options(page, "2")
        expect(page.locator("#opt-onFailure")).to_have_value("branchThenFail")
        expect(option(page, "stageEnabled")).to_have_value("${trigger.type == 'manual'}")
        set_options_of_the_first_stage(page)
        page.click("#triggers-form [data-add=triggers]")
        page.locator("#triggers-form [data-field=type]").select_option("docker")
        page.locator("#triggers-form [data-field=account]").fill("ecr-devel")
        page.locator("#triggers-form [data-field=repository]").fill("shop/web")
        page.locator("#triggers-form [data-field=tag]").fill("^v[0-9.]+$")
        page.click("#notifications-form [data-add=notifications]")
        page.locator("#notifications-form [data-field=type]").select_option("slack")
        page.locator("#notifications-form [data-field=address]").fill("deploys")
        page.locator("#notifications-form [data-field=when] input[value='pipeline.failed']").check()
        expect(page.locator("#visual-valid")).to_be_visible()
        screenshot(page, "editor-stage-options")
        page.click("[data-action=save]")
        expect(page.locator("#messages")).to_contain_text("Saved as revision 2.")
        expect(page.locator("#trigger-descriptions")).to_contain_text(re.compile("registry account ecr-devel"))
        open_options(page, "1")
        expect(page.locator("#opt-onFailure")).to_have_value("ignore")
        screenshot(page, "editor-stage-options-saved")

    assert problems == []
    saved = Pipeline.objects.get(id=pipeline.id).definition
    first, second = saved["stages"]
    assert first == {
        "refId": "1", "name": "Soak", "type": "wait", "waitTime": 5,
        "stageEnabled": {"type": "expression", "expression": "${parameters.env == 'prod'}"},
        "failPipeline": False, "continuePipeline": True, "stageTimeoutMs": 60000, "overrideTimeout": True,
        "restrictExecutionDuringTimeWindow": True,
        "restrictedExecutionWindow": {"whitelist": [{"startHour": 10, "startMin": 0, "endHour": 17, "endMin": 0}],
                                      "days": [2, 3]},
        "sendNotifications": True,
        "notifications": [{"type": "email", "address": "ops@example.com", "when": ["stage.failed"]}],
        "comments": "Only for production",
    }
    assert second["failPipeline"] is False and second["completeOtherBranchesThenFail"] is True
    assert saved["triggers"] == [{"enabled": True, "type": "docker", "account": "ecr-devel", "repository": "shop/web",
                                  "tag": "^v[0-9.]+$"}]
    assert saved["notifications"] == [{"type": "slack", "address": "deploys", "when": ["pipeline.failed"]}]
