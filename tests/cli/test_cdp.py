"""The ``cdp`` command, run as a real process from another directory against a running platform, with only a token.

The web process is the ASGI server the browser tests use (tests/web/test_browser.py's ``web_server``) and
real workers run the pipelines. ``cdp`` runs as the console script declared in pyproject.toml would: its
package alone is copied into a temporary directory, which is its only import path and its working
directory, and its environment holds nothing of the platform's but ``CDP_URL`` and ``CDP_TOKEN``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib

import pytest
from django.contrib.auth.models import User

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_create_token, do_grant
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, Pipeline
from apps.pipelines.services import do_save_pipeline
from tests.conftest import ROOT, wait_for_stage
from tests.web.test_browser import web_server  # noqa: F401  (the fixture)

QUICK = """\
application: shop
name: quick
parameterConfig:
  - name: version
    required: true
stages:
  - refId: "1"
    name: Pause
    type: wait
    waitTime: 0
"""
JUDGED = {"application": "shop", "name": "judged", "stages": [
    {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 0},
    {"refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
     "judgmentInputs": [{"value": "ship"}]},
]}


@pytest.fixture
def cdp(tmp_path, web_server):  # noqa: F811  (the fixture imported above)
    """Run ``cdp ARGS`` as the console script would, elsewhere, with a URL and (by default) alice's token."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["cdp"].split(":")
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "cdpcli", lib / "cdpcli", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    entry = f"import sys; from {module} import {function}; sys.exit({function}())"

    def run(*args: str, token: str | None = None, url: str | None = None, stdin: str | None = None):
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(lib), "HOME": str(tmp_path)}
        if url != "":  # "": none in the environment (the config file's)
            env["CDP_URL"] = url or web_server
        if token is not None:
            env["CDP_TOKEN"] = token
        return subprocess.run([sys.executable, "-c", entry, *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=60, input=stdin)

    run.work = work
    return run


@pytest.fixture
def alice(transactional_db):
    pipeline, _ = do_save_pipeline(JUDGED, user="setup")
    user = User.objects.create_user("alice")
    for action in ("read", "write", "execute"):
        do_grant(pipeline.application, user, action, actor="setup")
    do_save_pipeline({"application": "secret", "name": "vault", "stages": JUDGED["stages"][:1]}, user="setup")
    return do_create_token(user, "laptop")[1]


def test_cdp_lists_gets_saves_and_validates_as_the_tokens_user(cdp, alice):
    listed = cdp("application", "list", token=alice)
    assert listed.returncode == 0, listed.stderr
    assert [app["name"] for app in json.loads(listed.stdout)] == ["shop"]
    assert cdp("application", "get", "secret", token=alice).returncode == 3
    table = cdp("--output", "table", "application", "list", token=alice).stdout
    assert table.splitlines()[0].split() == ["NAME", "OWNER", "PERMISSIONS"] and "read,write,execute" in table

    (cdp.work / "quick.yml").write_text(QUICK)
    created = cdp("pipeline", "save", "quick.yml", token=alice)
    assert created.returncode == 0, created.stderr
    (cdp.work / "quick.yml").write_text(QUICK.replace("waitTime: 0", "waitTime: 1"))
    updated = cdp("pipeline", "save", "quick.yml", token=alice)
    assert updated.returncode == 0, updated.stderr
    quick = Pipeline.objects.get(application__name="shop", name="quick")
    assert quick.revisions.count() == 2 and quick.definition["stages"][0]["waitTime"] == 1
    assert AuditEvent.objects.filter(action="pipeline.saved", actor="alice", source="api").count() == 2

    got = json.loads(cdp("pipeline", "get", "--application", "shop", "--name", "quick", token=alice).stdout)
    assert got["id"] == str(quick.id)
    refused = cdp("pipeline", "validate", "-", token=alice, stdin='{"application": "shop", "name": "x", '
                  '"stages": [{"refId": "1", "name": "W", "type": "wiat"}]}')
    assert refused.returncode == 1 and "/stages/0/type: unknown stage type 'wiat'" in refused.stderr
    assert cdp("pipeline", "validate", "quick.yml", token=alice).returncode == 0
    assert cdp("pipeline", "delete", "--application", "shop", "--name", "quick", token=alice).returncode == 0
    assert not Pipeline.objects.filter(name="quick").exists()


def test_cdp_executes_and_waits_then_judges_with_a_comment(cdp, alice, workers):
    workers.start(1)
    (cdp.work / "quick.yml").write_text(QUICK)
    assert cdp("pipeline", "save", "quick.yml", token=alice).returncode == 0

    ran = cdp("pipeline", "execute", "shop", "quick", "--param", "version=2.0", "--wait", "--poll", "0.2",
              token=alice)

    assert ran.returncode == 0, ran.stderr
    done = json.loads(ran.stdout)
    assert done["status"] == Status.SUCCEEDED and done["trigger"]["parameters"] == {"version": "2.0"}
    assert Execution.objects.get(id=done["id"]).started_by == "alice"
    missing = cdp("pipeline", "execute", "shop", "quick", "--wait", token=alice)
    assert missing.returncode == 1 and "/parameters/version" in missing.stderr

    started = json.loads(cdp("pipeline", "execute", "shop", "judged", token=alice).stdout)
    wait_for_stage(started["id"], "2", {Status.RUNNING})
    judged = cdp("execution", "judge", started["id"], "2", "--decision", "continue", "--input", "ship",
                 "--comment", "Looks good", token=alice)
    assert judged.returncode == 0, judged.stderr
    deadline = time.monotonic() + 30
    while Execution.objects.get(id=started["id"]).status != Status.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.2)
    shown = json.loads(cdp("execution", "get", started["id"], token=alice).stdout)
    assert shown["status"] == Status.SUCCEEDED
    judgment = next(stage for stage in shown["stages"] if stage["refId"] == "2")
    assert judgment["context"]["judgmentInput"] == "ship"
    assert judgment["context"]["judgmentComment"] == "Looks good"
    evaluated = cdp("pipeline", "eval", started["id"], "${#judgment('Approve')} by ${trigger.user}", token=alice)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout) == {"value": "ship by alice"}
    failed = cdp("pipeline", "eval", started["id"], "${'a' * 100000000}", token=alice)  # over the size budget
    assert failed.returncode == 1 and failed.stderr.startswith("/expression: ")
    listing = cdp("-o", "table", "execution", "list", "--application", "shop", token=alice).stdout
    assert started["id"] in listing and listing.splitlines()[0].split()[:4] == ["ID", "APPLICATION", "NAME", "STATUS"]


def test_cdp_exit_codes_tell_a_script_what_went_wrong(cdp, alice, tmp_path):
    assert cdp("application", "list").returncode == 4  # no token at all
    bad = cdp("application", "list", token="cdp_not-a-token")
    assert bad.returncode == 4 and bad.stderr
    assert cdp("application", "list", token=alice, url="http://127.0.0.1:9").returncode == 5
    assert cdp("execution", "get", "00000000-0000-4000-8000-000000000000", token=alice).returncode == 3
    assert cdp("pipeline", "execute", "shop", "judged", "--param", "no-equals", token=alice).returncode == 2
    assert cdp("pipeline", "frobnicate", token=alice).returncode == 2
    for command in ([], ["application"], ["pipeline"], ["execution"], ["pipeline", "execute"],
                    ["execution", "judge"]):
        helped = cdp(*command, "--help")
        assert helped.returncode == 0 and "usage: cdp" in helped.stdout, command
    assert "exit codes" in cdp("--help").stdout


def test_cdp_reads_the_platform_and_token_from_its_config_file(cdp, alice, tmp_path, web_server):  # noqa: F811
    config = tmp_path / ".config" / "cdp" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(f"[default]\nurl = {web_server}\ntoken = {alice}\n\n[other]\nurl = http://127.0.0.1:9\n")

    from_file = cdp("application", "list", url="")
    other = cdp("--profile", "other", "application", "list", token=alice, url="")

    assert from_file.returncode == 0, from_file.stderr
    assert other.returncode == 5
