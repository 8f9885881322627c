"""The webhook stage and the outbound-URL policy, against an HTTP server these tests run on 127.0.0.1.

Executions run through real worker processes, as in test_engine.py. Every
request goes to the loopback server below; the deny-list tests use literal
addresses in denied networks, which the policy refuses before connecting.
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from apps.pipelines import outbound
from apps.pipelines.choices import Status
from apps.pipelines.models import StageExecution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stages import StageRuntime, get_stage_type
from apps.pipelines.stages.json_path import MISSING, JsonPathError, parse_json_path, read_json_path
from tests.conftest import wait_for_execution
from tests.hookserver import HookServer, Reply

# Short delays so that retries and polls take fractions of a second (plus the scheduler's tick).
FAST = {
    "WEBHOOK_RETRY_BACKOFF_SECONDS": "0.05",
    "WEBHOOK_MONITOR_INTERVAL_SECONDS": "0.1",
    "WEBHOOK_TIMEOUT_SECONDS": "5",
}


# --- Helpers -------------------------------------------------------------------------------------


def save(stages, **extra):
    document = {"application": "shop", "name": "hooks", "stages": stages, **extra}
    pipeline, _ = do_save_pipeline(document, user="alice")
    return pipeline


def hook(url: str, ref_id: str = "1", requisites=(), **options) -> dict:
    return {
        "refId": ref_id,
        "name": "Hook",
        "type": "webhook",
        "url": url,
        "requisiteStageRefIds": list(requisites),
        **options,
    }


def run(stages, **extra):
    execution = wait_for_execution(do_start_execution(save(stages, **extra), user="alice").id, timeout=20)
    return execution, {stage.ref_id: stage for stage in StageExecution.objects.filter(execution=execution)}


def error_of(stage: StageExecution) -> str:
    return stage.context["exception"]["details"]["error"]


# --- The call ------------------------------------------------------------------------------------


def test_a_post_sends_payload_and_headers_and_later_stages_read_the_response(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/deploy", Reply(201, {"id": "d-42", "links": ["a"]}, {"X-Request-Id": "r1"}))
    stages = [
        hook(
            hook_server.url("/deploy"),
            payload={"user": "${trigger.user}", "replicas": 3, "tags": ["a", "b"]},
            customHeaders={"X-Token": "s3cret", "X-Multi": ["one", "two"]},
        ),
        {
            "refId": "2",
            "name": "Read",
            "type": "evaluateVariables",
            "requisiteStageRefIds": ["1"],
            "variables": [{"key": "deployId", "value": "${#stage('Hook').outputs.webhook.body.id}"}],
        },
    ]

    execution, by_ref = run(stages)

    assert execution.status == Status.SUCCEEDED
    [call] = hook_server.calls("/deploy")
    assert call.method == "POST"
    assert call.json == {"user": "alice", "replicas": 3, "tags": ["a", "b"]}
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-token"] == "s3cret"
    assert call.headers["x-multi"] == "one, two"
    webhook = by_ref["1"].outputs["webhook"]
    assert webhook["statusCode"] == 201
    assert webhook["body"] == {"id": "d-42", "links": ["a"]}
    assert webhook["headers"]["X-Request-Id"] == "r1"
    assert by_ref["1"].context["webhook"]["statusCode"] == 201
    assert by_ref["2"].outputs == {"deployId": "d-42"}


def test_a_get_sends_no_body_and_keeps_a_text_response_as_text(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/ping", Reply(200, "pong", {"Content-Type": "text/plain"}))

    execution, by_ref = run([hook(hook_server.url("/ping"), method="get", payload={"ignored": True})])

    assert execution.status == Status.SUCCEEDED
    [call] = hook_server.calls("/ping")
    assert (call.method, call.body) == ("GET", b"")
    assert by_ref["1"].outputs["webhook"]["body"] == "pong"


def test_a_fail_fast_status_ends_the_stage_without_retrying(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/busy", Reply(503, {"error": "down for maintenance"}))

    execution, by_ref = run([hook(hook_server.url("/busy"), failFastStatusCodes=[503])])

    assert execution.status == Status.TERMINAL
    assert by_ref["1"].status == Status.TERMINAL
    assert len(hook_server.calls("/busy")) == 1
    assert "failFastStatusCodes" in error_of(by_ref["1"])
    assert by_ref["1"].outputs["webhook"]["body"] == {"error": "down for maintenance"}


def test_a_client_error_is_terminal_at_once(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/missing", Reply(404, {"error": "no such thing"}))

    execution, by_ref = run([hook(hook_server.url("/missing"))])

    assert execution.status == Status.TERMINAL
    assert len(hook_server.calls("/missing")) == 1
    assert hook_server.url("/missing") in error_of(by_ref["1"])
    assert "404" in error_of(by_ref["1"])
    assert by_ref["1"].context["webhook"]["statusCode"] == 404


def test_a_server_error_is_retried_until_the_call_succeeds(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/flaky", Reply(503), Reply(503), Reply(200, {"ok": True}))

    execution, by_ref = run([hook(hook_server.url("/flaky"), payload={"n": 1})])

    assert execution.status == Status.SUCCEEDED
    calls = hook_server.calls("/flaky")
    assert len(calls) == 3
    assert all(call.json == {"n": 1} for call in calls)
    assert by_ref["1"].outputs["webhook"]["body"] == {"ok": True}


def test_retries_stop_after_the_maximum_number_of_attempts(workers, hook_server):
    workers.start(1, **FAST, WEBHOOK_MAX_ATTEMPTS="3")
    hook_server.script("/down", Reply(503))

    execution, by_ref = run([hook(hook_server.url("/down"))])

    assert execution.status == Status.TERMINAL
    assert len(hook_server.calls("/down")) == 3
    error = error_of(by_ref["1"])
    assert hook_server.url("/down") in error
    assert "3 attempts" in error and "status 503" in error


def test_a_connection_failure_is_retried_then_fails_naming_the_url(workers, hook_server):
    workers.start(1, **FAST, WEBHOOK_MAX_ATTEMPTS="2")
    # A port nothing listens on: the server's, once it is closed.
    closed = HookServer()
    url = closed.url("/nothing")
    closed.httpd.server_close()

    execution, by_ref = run([hook(url)])

    assert execution.status == Status.TERMINAL
    assert url in error_of(by_ref["1"])
    assert by_ref["1"].context["webhookAttempts"] == 2


# --- Waiting for completion ----------------------------------------------------------------------


def test_wait_for_completion_polls_the_same_url_until_success(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/job", Reply(200, {"accepted": True}), method="POST")
    hook_server.script(
        "/job",
        Reply(200, {"status": "RUNNING", "message": "building"}),
        Reply(200, {"status": "RUNNING", "message": "testing"}),
        Reply(200, {"status": "succeeded", "message": "done"}),
        method="GET",
    )
    stage = hook(
        hook_server.url("/job"),
        waitForCompletion=True,
        statusUrlResolution="getMethod",
        statusJsonPath="$.status",
        progressJsonPath="$.message",
        successStatuses="SUCCEEDED",
        terminalStatuses="FAILED",
        monitorPollIntervalSeconds=0.1,
    )

    execution, by_ref = run([stage])

    assert execution.status == Status.SUCCEEDED
    assert len(hook_server.calls("/job", "POST")) == 1
    assert len(hook_server.calls("/job", "GET")) == 3
    webhook = by_ref["1"].outputs["webhook"]
    assert webhook["body"] == {"accepted": True}
    assert webhook["statusEndpoint"] == hook_server.url("/job")
    assert webhook["monitor"]["body"] == {"status": "succeeded", "message": "done"}
    assert webhook["monitor"]["progressMessage"] == "done"
    assert by_ref["1"].context["statusEndpoint"] == hook_server.url("/job")


def test_wait_for_completion_without_a_status_path_succeeds_on_the_first_2xx_poll_as_orca_does(
    workers, hook_server
):
    workers.start(1, **FAST)
    hook_server.script("/job", Reply(200, {"accepted": True}))
    hook_server.script("/job", Reply(503, {}), Reply(200, {"whatever": "shape"}), method="GET")
    stage = hook(hook_server.url("/job"), waitForCompletion=True, statusUrlResolution="getMethod",
                 monitorPollIntervalSeconds=0.1, retryStatusCodes=[503])

    execution, by_ref = run([stage])

    assert execution.status == Status.SUCCEEDED
    assert len(hook_server.calls("/job", "GET")) == 2
    assert by_ref["1"].outputs["webhook"]["monitor"]["body"] == {"whatever": "shape"}


def test_wait_for_completion_polls_the_location_header_and_retries_a_failed_poll(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/builds", Reply(202, {}, {"Location": "/builds/7"}))
    hook_server.script("/builds/7", Reply(503), Reply(200, {"state": "DONE"}))
    stage = hook(
        hook_server.url("/builds"),
        waitForCompletion=True,
        statusUrlResolution="locationHeader",
        statusJsonPath="state",
        successStatuses="DONE, OK",
    )

    execution, by_ref = run([stage])

    assert execution.status == Status.SUCCEEDED
    assert len(hook_server.calls("/builds")) == 1
    assert len(hook_server.calls("/builds/7")) == 2
    assert by_ref["1"].context["statusEndpoint"] == hook_server.url("/builds/7")


def test_wait_for_completion_reads_the_status_url_from_the_response(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/deploy", Reply(200, {"links": [{"status": hook_server.url("/deploy/status/9")}]}))
    hook_server.script("/deploy/status/9", Reply(200, {"state": {"phase": 40}}), Reply(200, {"state": {"phase": 100}}))
    stage = hook(
        hook_server.url("/deploy"),
        waitForCompletion=True,
        statusUrlResolution="webhookResponse",
        statusUrlJsonPath="$.links[0].status",
        statusJsonPath="$['state'].phase",
        successStatuses="SUCCEEDED",
    )

    execution, by_ref = run([stage])

    assert execution.status == Status.SUCCEEDED
    assert len(hook_server.calls("/deploy/status/9")) == 2
    assert by_ref["1"].outputs["webhook"]["monitor"]["percentComplete"] == 100


def test_a_terminal_status_fails_the_stage_and_the_pipeline(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/job", Reply(200, {}), method="POST")
    hook_server.script("/job", Reply(200, {"status": "RUNNING"}), Reply(200, {"status": "Failed"}), method="GET")
    stage = hook(
        hook_server.url("/job"),
        waitForCompletion=True,
        statusJsonPath="$.status",
        successStatuses="SUCCEEDED",
        terminalStatuses="FAILED,ERROR",
        canceledStatuses="ABORTED",
    )

    execution, by_ref = run(
        [stage, {"refId": "2", "name": "After", "type": "wait", "waitTime": 0, "requisiteStageRefIds": ["1"]}]
    )

    assert execution.status == Status.TERMINAL
    assert by_ref["1"].status == Status.TERMINAL
    assert by_ref["2"].status == Status.NOT_STARTED
    assert "terminalStatuses" in error_of(by_ref["1"])
    assert by_ref["1"].outputs["webhook"]["monitor"]["status"] == "Failed"


def test_a_canceled_status_cancels_the_stage_and_the_execution(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/job", Reply(200, {}), method="POST")
    hook_server.script("/job", Reply(200, {"status": "ABORTED"}), method="GET")
    stage = hook(
        hook_server.url("/job"),
        waitForCompletion=True,
        statusJsonPath="$.status",
        successStatuses="SUCCEEDED",
        terminalStatuses="FAILED",
        canceledStatuses="ABORTED",
    )

    execution, by_ref = run([stage])

    assert by_ref["1"].status == Status.CANCELED
    assert execution.status == Status.CANCELED


# --- The outbound-URL policy ---------------------------------------------------------------------


def test_a_url_in_a_denied_network_is_refused_before_connecting(workers, hook_server):
    workers.start(1, **FAST, OUTBOUND_URL_DENIED_NETWORKS="169.254.0.0/16,127.0.0.0/8")
    hook_server.script("/hook", Reply(200, {}))

    metadata, metadata_stages = run([hook("http://169.254.169.254/latest/meta-data/")])
    loopback, loopback_stages = run([hook(hook_server.url("/hook"))])

    assert metadata.status == Status.TERMINAL
    error = error_of(metadata_stages["1"])
    assert "http://169.254.169.254/latest/meta-data/" in error and "169.254.0.0/16" in error
    assert loopback.status == Status.TERMINAL
    assert "127.0.0.0/8" in error_of(loopback_stages["1"])
    assert hook_server.calls() == []


def test_a_scheme_that_is_not_allowed_is_refused_before_connecting(workers, hook_server):
    workers.start(1, **FAST, OUTBOUND_URL_ALLOWED_SCHEMES="https")
    hook_server.script("/hook", Reply(200, {}))

    execution, by_ref = run([hook(hook_server.url("/hook"))])

    assert execution.status == Status.TERMINAL
    error = error_of(by_ref["1"])
    assert hook_server.url("/hook") in error and "OUTBOUND_URL_ALLOWED_SCHEMES" in error
    assert hook_server.calls() == []


def test_the_policy_checks_allowed_hosts_and_resolved_addresses():
    with override_settings(OUTBOUND_URL_ALLOWED_HOSTS=[r"hooks\.example\.com", r".*\.ci\.example\.com"]):
        with pytest.raises(outbound.OutboundRefused, match="OUTBOUND_URL_ALLOWED_HOSTS"):
            outbound.check_url("http://127.0.0.1/x")
        with pytest.raises(outbound.OutboundRefused, match="OUTBOUND_URL_ALLOWED_HOSTS"):
            outbound.check_url("http://hooks.example.com.evil/x")
    with override_settings(OUTBOUND_URL_DENIED_NETWORKS=["127.0.0.0/8", "::1/128"]):
        with pytest.raises(outbound.OutboundRefused, match="localhost"):
            outbound.check_url("http://localhost:8080/")  # resolved from the hosts file
    with pytest.raises(outbound.OutboundRefused, match="169.254.0.0/16"):
        outbound.check_url("http://[::ffff:169.254.169.254]/")  # IPv4-mapped IPv6
    with pytest.raises(outbound.OutboundRefused, match="169.254.0.0/16"):
        outbound.check_url("http://2852039166/")  # 169.254.169.254 as one number
    with override_settings(OUTBOUND_URL_ALLOWED_NETWORKS=["127.0.0.1/32"]):
        outbound.check_url("http://127.0.0.1:1/")


def test_a_redirect_into_a_denied_network_is_refused(hook_server):
    hook_server.script("/go", Reply(302, None, {"Location": "http://169.254.169.254/latest/"}))

    with pytest.raises(outbound.OutboundRefused, match="169.254.169.254"):
        outbound.request("GET", hook_server.url("/go"), timeout=5)

    assert len(hook_server.calls("/go")) == 1


def test_the_connected_address_is_checked_too(hook_server, monkeypatch):
    # As if a name had resolved to an allowed address when checked, then to a denied one (DNS rebinding).
    monkeypatch.setattr(outbound, "check_url", lambda url: None)
    hook_server.script("/hook", Reply(200, {}))

    with override_settings(OUTBOUND_URL_DENIED_NETWORKS=["127.0.0.0/8"]):
        with pytest.raises(outbound.OutboundRefused, match="connected address 127.0.0.1"):
            outbound.request("POST", hook_server.url("/hook"), json_body={}, send_body=True, timeout=5)

    assert hook_server.calls() == []


# --- Validation, idempotency, cancel -------------------------------------------------------------


@pytest.mark.django_db
def test_a_bad_literal_url_is_refused_when_saving():
    with pytest.raises(InvalidDocument) as refused:
        save([hook("ftp://files.example.com/x"), hook("not a url", ref_id="2"), hook("", ref_id="3")])
    problems = {problem.pointer: problem.message for problem in refused.value.problems}
    assert set(problems) == {"/stages/0/url", "/stages/1/url", "/stages/2/url"}
    assert "http" in problems["/stages/0/url"]

    with pytest.raises(InvalidDocument) as refused:
        save([hook("http://hooks.example.com/x", method="FETCH", waitForCompletion=True)])
    assert {p.pointer for p in refused.value.problems} == {"/stages/0/method"}

    # An expression is checked when the stage runs.
    save([hook("${parameters.target}")], parameterConfig=[{"name": "target"}])


@pytest.mark.django_db
def test_a_step_after_the_call_never_calls_again(hook_server):
    hook_server.script("/once", Reply(200, {}))
    execution = do_start_execution(save([hook(hook_server.url("/once"))]))
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    stage.context = {"url": hook_server.url("/once"), "webhook": {"statusCode": 200, "body": {"id": 1}}}

    result = get_stage_type("webhook").run(stage, scope=None, runtime=StageRuntime())

    assert result.status == Status.SUCCEEDED
    assert result.outputs["webhook"]["body"] == {"id": 1}
    assert hook_server.calls() == []


@pytest.mark.django_db
def test_cancel_sends_the_cancel_request_once(hook_server):
    hook_server.script("/job/7/cancel", Reply(204))
    execution = do_start_execution(save([hook(hook_server.url("/job"))]))
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    stage.status = Status.CANCELED
    stage.context = {
        "url": hook_server.url("/job"),
        "customHeaders": {"X-Token": "s3cret"},
        "cancelEndpoint": hook_server.url("/job/7/cancel"),
        "cancelMethod": "PUT",
        "cancelPayload": {"reason": "canceled"},
        "signalCancellation": True,
        "webhook": {"statusCode": 200, "body": {"id": 7}},
    }
    stage.save()
    stage_type = get_stage_type("webhook")

    stage_type.cancel(stage, StageRuntime())
    stage_type.cancel(StageExecution.objects.get(id=stage.id), StageRuntime())

    [call] = hook_server.calls("/job/7/cancel")
    assert call.method == "PUT"
    assert call.json == {"reason": "canceled"}
    assert call.headers["x-token"] == "s3cret"
    assert StageExecution.objects.get(id=stage.id).context["webhookCancelSignaled"] is True


@pytest.mark.django_db
def test_cancel_does_nothing_before_the_call_and_never_raises(hook_server):
    execution = do_start_execution(save([hook(hook_server.url("/job"))]))
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    stage_type = get_stage_type("webhook")
    stage.context = {"cancelEndpoint": hook_server.url("/cancel")}
    stage_type.cancel(stage, StageRuntime())  # no call made yet
    stage.context = {"cancelEndpoint": "http://169.254.169.254/cancel", "webhook": {"statusCode": 200}}
    stage_type.cancel(stage, StageRuntime())  # refused by the policy: logged, not raised

    assert hook_server.calls() == []


def test_a_halted_execution_signals_cancellation_to_a_running_webhook(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/job", Reply(200, {}), method="POST")
    hook_server.script("/job", Reply(200, {"status": "RUNNING"}), method="GET")
    hook_server.script("/job/cancel", Reply(200, {}))
    stages = [
        hook(
            hook_server.url("/job"),
            waitForCompletion=True,
            statusJsonPath="$.status",
            successStatuses="SUCCEEDED",
            cancelEndpoint=hook_server.url("/job/cancel"),
            signalCancellation=True,
        ),
        {"refId": "2", "name": "Pause", "type": "wait", "waitTime": 1},
        {
            "refId": "3",
            "name": "Check",
            "type": "checkPreconditions",
            "requisiteStageRefIds": ["2"],
            "preconditions": [{"type": "expression", "context": {"expression": "${1 == 2}"}}],
        },
    ]

    execution, by_ref = run(stages)

    assert execution.status == Status.TERMINAL
    assert by_ref["1"].status == Status.CANCELED
    # The cancel hook runs once the halt has committed: give it a moment.
    deadline = time.monotonic() + 5
    while not hook_server.calls("/job/cancel") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert len(hook_server.calls("/job/cancel", "POST")) == 1


# --- JSON paths ----------------------------------------------------------------------------------


def test_json_paths_in_jayway_and_plain_form():
    document = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x y": True}

    assert read_json_path(document, "$.a.b[1].c") == 2
    assert read_json_path(document, "a.b[-1].c") == 2
    assert read_json_path(document, "$['x y']") is True
    assert read_json_path(document, "$") == document
    assert read_json_path(document, "$.a.nothing") is MISSING
    assert read_json_path(document, "$.a.b[5]") is MISSING
    assert parse_json_path('$["a"].b[0]') == ["a", "b", 0]
    for unsupported in ("$..c", "$.a.*", "$.a[?(@.c)]", ""):
        with pytest.raises(JsonPathError):
            parse_json_path(unsupported)
