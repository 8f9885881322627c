"""The dashboard in a real browser: sign in, run the demo pipeline, watch it live, approve its judgment.

The platform's pieces run as in production, on loopback: the ASGI web process
(uvicorn, started as ``manage.py runplatform`` starts it) and real RQ workers,
both on the test database and the test Redis. Debian's Chromium runs headless,
driven by Playwright's sync API; Playwright downloads no browser here.

The workers start only once alice is on the new execution's page, so every
stage is NOT_STARTED there at first and each change she sees arrives over the
WebSocket: a MutationObserver installed after the page loaded records every
status each stage shows, and a marker set on ``window`` then must still be
there at the end (no navigation, no reload).

Without Chromium (``apt-get install -y chromium``) or Playwright
(requirements-dev.txt) the test is skipped, naming what is missing; in CI
(``CI=true``) it fails instead. Screenshots go to test-artifacts/screenshots/,
the web process's and the workers' logs to test-artifacts/logs/browser/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_grant
from apps.pipelines.choices import Status
from apps.pipelines.definition import parse_document
from apps.pipelines.models import Pipeline
from apps.pipelines.services import do_save_pipeline
from cdplatform.webprocess import free_port, http_status, web_command
from tests.conftest import ROOT, missing_service, wait_for_execution, worker_database_url

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # the browser_available fixture names it: a failure in CI, a skip elsewhere
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
DEMO_PIPELINE = ROOT / "apps" / "pipelines" / "demo" / "deliver.yml"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
LOGS = ROOT / "test-artifacts" / "logs" / "browser"
PASSWORD = "a-browser-test-password"
SERVER_START_SECONDS = 30
# Longest wait for something the workers do (a stage, the whole execution), in ms.
LIVE_TIMEOUT_MS = 30_000

# Installed once the execution page has loaded: remembers every status each stage shows, whether
# set in place by live.js from a WebSocket event or brought in by a fragment it swapped in.
WATCH_STAGES = """() => {
  window.__marker = 1;
  window.__inPlaceChanges = 0;
  const history = window.__stageHistory = {};
  const note = (el) => {
    const id = el.getAttribute("data-stage-id"), status = el.getAttribute("data-stage-status");
    if (!id || !status) return;
    const seen = history[id] || (history[id] = []);
    if (seen[seen.length - 1] !== status) seen.push(status);
  };
  const noteAll = (root) => {
    if (root.matches("[data-stage-id][data-stage-status]")) note(root);
    root.querySelectorAll("[data-stage-id][data-stage-status]").forEach(note);
  };
  noteAll(document.body);
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "attributes") { window.__inPlaceChanges += 1; note(record.target); }
      else record.addedNodes.forEach((node) => { if (node.nodeType === 1) noteAll(node); });
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-stage-status"]});
}"""


# --- The platform's processes --------------------------------------------------------------------


# Loopback only: no proxy from the environment.
@pytest.fixture
def web_server(transactional_db, redis_url, tmp_path):
    """The ASGI web process (uvicorn) on a free loopback port, on the test database and Redis; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "web.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            web_command("127.0.0.1", port),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while http_status(f"{base}/login/") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the web process did not serve /login/; its log:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        static = http_status(f"{base}/static/js/live.js")
        if static != 200:
            pytest.fail(
                f"the web process answers GET /static/js/live.js with {static}: pages would load without "
                "live.js, htmx and their CSS (cdplatform/asgi.py serves no static files)"
            )
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        # The web process's and the workers' logs (the workers stop first), for a run that failed.
        shutil.rmtree(LOGS, ignore_errors=True)
        LOGS.mkdir(parents=True)
        for log_file in tmp_path.glob("*.log"):
            shutil.copyfile(log_file, LOGS / log_file.name)


@pytest.fixture
def browser_available():
    """Check that Playwright and Chromium are installed (missing: fail in CI, skip elsewhere)."""
    if sync_playwright is None:
        missing_service("Playwright is not installed: pip install -r requirements-dev.txt")
    if not CHROMIUM.exists():
        missing_service(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")


@contextmanager
def open_chromium():
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser).

    Playwright's sync API keeps an asyncio loop running in this thread while it is open, under which
    Django refuses database queries: the test reads the database before and after, never inside.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --- Data and pages ----------------------------------------------------------------------------------


def save_demo_pipeline() -> Pipeline:
    """The demo pipeline of apps/pipelines/demo/deliver.yml, with every wait shortened to 1 s."""
    document = parse_document(DEMO_PIPELINE.read_text())
    for stage in document["stages"]:
        if "waitTime" in stage:
            stage["waitTime"] = 1
    pipeline, _ = do_save_pipeline(document, user="setup")
    return pipeline


def make_user(username: str, application, actions: list[str]) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    for action in actions:
        do_grant(application, user, action, actor="setup")
    return user


def note_console_error(problems: list[str], username: str, message) -> None:
    """Keep an error the page logged; the favicon Chromium asks for on its own (the site has none) is not one."""
    url = message.location.get("url") or ""
    if message.type == "error" and not url.endswith("/favicon.ico"):
        problems.append(f"{username}: {message.text} ({url})")


def sign_in(browser: Browser, base: str, username: str, problems: list[str]) -> Page:
    """A new browser context signed in through the sign-in page; page errors are appended to ``problems``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"{username}: {error}"))
    page.on("console", lambda message: note_console_error(problems, username, message))
    page.on(
        "response",
        lambda response: (
            response.status >= 400
            and problems.append(f"{username}: {response.request.method} {response.url} answered {response.status}")
        ),
    )
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base}/")
    expect(page.locator("#current-user")).to_have_text(username)
    return page


def open_application(page: Page, name: str) -> None:
    """From the applications page, follow the application's link and wait for its live connection."""
    page.click(f"#applications tr[data-application='{name}'] td.appname a")
    expect(page.locator("#application-name")).to_have_text(name)
    expect(page.locator("#live-status")).to_have_attribute("data-live-state", "open")


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def stage_history(page: Page) -> dict[str, list[str]]:
    return page.evaluate("() => window.__stageHistory")


def wait_for_stages(page: Page, statuses: dict[str, str]) -> None:
    """Wait until each stage (by id) shows its status on the page."""
    selector = ", ".join(f"[data-stage-id='{id}'][data-stage-status='{status}']" for id, status in statuses.items())
    page.wait_for_function(
        "([selector, count]) => new Set([...document.querySelectorAll(selector)].map((el) => el.dataset.stageId)).size"
        " === count",
        arg=[selector, len(statuses)],
        timeout=LIVE_TIMEOUT_MS,
    )


# --- The scenario ----------------------------------------------------------------------------------


def test_run_watch_and_approve_the_demo_pipeline_live(browser_available, web_server, workers):
    pipeline = save_demo_pipeline()
    make_user("alice", pipeline.application, ["read", "execute"])
    make_user("bob", pipeline.application, ["read"])
    problems: list[str] = []

    with open_chromium() as browser:
        # alice opens the demo application and runs its pipeline from the Run form.
        alice = sign_in(browser, web_server, "alice", problems)
        open_application(alice, "demo")
        screenshot(alice, "application-alice")
        alice.click(f"[data-action=run][data-pipeline-id='{pipeline.id}']")
        dialog = alice.locator("#run-dialog")
        expect(dialog).to_be_visible()
        dialog.locator("[name=parameter-p0]").fill("2.3.4")
        dialog.locator("[name=parameter-p1]").select_option("canary")
        dialog.locator("[data-action=start]").click()
        alice.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}/$"))
        execution_id = alice.url.rstrip("/").rsplit("/", 1)[1]
        stages = alice.eval_on_selector_all(
            "#stage-table tr[data-stage-id]",
            "(rows) => Object.fromEntries(rows.map((r) => [r.dataset.refId, r.dataset.stageId]))",
        )
        assert sorted(stages) == ["1", "2", "3", "4", "5", "6"]
        expect(alice.locator("#messages")).to_contain_text("Started deliver.")
        expect(alice.locator("#live-status")).to_have_attribute("data-live-state", "open")
        alice.evaluate(WATCH_STAGES)
        assert set(stage_history(alice)) == set(stages.values())
        assert all(seen == [Status.NOT_STARTED] for seen in stage_history(alice).values())

        # The workers start now: every change from here on reaches the open page live.
        workers.start(1)
        banner = alice.locator(f"#judgment-{stages['5']}.judgment-banner")
        expect(banner).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(banner).to_contain_text("Tested demo-2.3.4 in both test regions?")
        wait_for_stages(alice, {stages[ref]: Status.SUCCEEDED for ref in "1234"} | {stages["5"]: Status.RUNNING})
        expect(alice.locator("#execution-status")).to_have_attribute("data-execution-status", Status.RUNNING)
        screenshot(alice, "execution-judgment-alice")

        # bob reads the same application and execution, live, but is offered neither Run nor Approve.
        bob = sign_in(browser, web_server, "bob", problems)
        open_application(bob, "demo")
        expect(bob.locator(f"tr.execution-row[data-execution-id='{execution_id}']")).to_be_visible()
        expect(bob.locator("[data-action=run]")).to_have_count(0)
        screenshot(bob, "application-bob")
        bob.click(f"td.status-cell a[href='/executions/{execution_id}/']")
        expect(bob.locator("#live-status")).to_have_attribute("data-live-state", "open")
        expect(bob.locator(f"[data-stage-id='{stages['5']}'][data-stage-status=RUNNING]").first).to_be_visible()
        bob.evaluate("() => { window.__marker = 1; }")
        for action in ("approve", "stop-judgment", "cancel", "pause", "skip-wait", "restart"):
            expect(bob.locator(f"[data-action={action}]")).to_have_count(0)
        expect(bob.locator(".judgment-banner")).to_have_count(0)
        screenshot(bob, "execution-bob")

        # alice approves with an input and a comment; the page updates in place (htmx) and goes on live.
        judge = f"judge-{stages['5']}"
        banner.locator(f"[name={judge}-judgment_input]").select_option("promote")
        banner.locator(f"[name={judge}-comment]").fill("Both regions look good.")
        banner.locator("[data-action=approve]").click()
        expect(alice.locator("#messages")).to_contain_text("Approve for prod: continued.")
        expect(alice.locator(".judgment-banner")).to_have_count(0)
        for page in (alice, bob):
            expect(page.locator("#execution-status")).to_have_attribute(
                "data-execution-status", Status.SUCCEEDED, timeout=LIVE_TIMEOUT_MS
            )
            expect(page.locator("#execution-status")).to_have_text(Status.SUCCEEDED)
        wait_for_stages(alice, {stage_id: Status.SUCCEEDED for stage_id in stages.values()})
        # The actions offered follow the status: a finished execution has none left (live.js re-reads the page).
        expect(alice.locator("#execution-actions")).to_have_count(0)
        expect(alice.locator("[data-action=skip-wait]")).to_have_count(0)
        expect(alice.locator("[data-action=restart]")).to_have_count(len(stages))
        screenshot(alice, "execution-succeeded-alice")

        # No page was reloaded or left, and each stage was seen going NOT_STARTED, RUNNING, SUCCEEDED. (An
        # action's answer rendered just before an event may show an older state for a moment, after which
        # live.js reads the page again: a state may repeat, but the first RUNNING precedes the first
        # SUCCEEDED and the last one is SUCCEEDED.)
        assert alice.evaluate("() => window.__marker") == 1
        assert bob.evaluate("() => window.__marker") == 1
        assert alice.evaluate("() => window.__inPlaceChanges") > 0, "no status was set in place from an event"
        history = stage_history(alice)
        for ref, stage_id in sorted(stages.items()):
            seen = history[stage_id]
            assert seen[0] == Status.NOT_STARTED and seen[-1] == Status.SUCCEEDED, (ref, history)
            assert Status.RUNNING in seen and seen.index(Status.RUNNING) < seen.index(Status.SUCCEEDED), (ref, history)
        expect(bob.locator("[data-action]")).to_have_count(0)

    assert problems == []
    execution = wait_for_execution(execution_id, timeout=5)
    assert execution.status == Status.SUCCEEDED
    assert execution.parameters == {"version": "2.3.4", "strategy": "canary"}
    assert execution.stages.get(ref_id="1").outputs["release"] == "demo-2.3.4"
    judged = execution.stages.get(ref_id="5").context
    assert (judged["judgmentStatus"], judged["judgmentInput"], judged["lastModifiedBy"]) == (
        "continue",
        "promote",
        "alice",
    )
    comment = AuditEvent.objects.get(action="stage.judgment_comment")
    assert (comment.actor, comment.details["comment"]) == ("alice", "Both regions look good.")
