"""Application secrets: a webhook's token never readable in the pipeline, the execution JSON, the logs or errors.

Issue 15, item 12: a webhook's ``customHeaders`` (tokens) were visible to every
reader of the pipeline document and of the execution JSON. Now the document
holds ``${#secret('deploy-token')}``, the value is stored encrypted, resolved
only in the worker just before the request, and redacted from everything the
stage stores. Executions run through real workers against the loopback
``hook_server`` (tests/hookserver.py).
"""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.models import Application, Event, Secret, StageExecution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.secrets import crypto, redaction
from apps.pipelines.secrets.services import do_delete_secret, do_set_secret
from apps.pipelines.secrets.store import secret_values
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stages import StageRuntime, get_stage_type
from tests.conftest import wait_for_execution
from tests.hookserver import Reply

TOKEN = "tok-4f9a1c-deploy"
FAST = {"WEBHOOK_RETRY_BACKOFF_SECONDS": "0.05", "WEBHOOK_TIMEOUT_SECONDS": "5", "WEBHOOK_MAX_ATTEMPTS": "1"}


def shop_with_secret(value: str = TOKEN) -> Application:
    application = Application.objects.create(name="shop")
    do_set_secret(application, "deploy-token", value, user="alice")
    return application


def hook(url: str, **options) -> dict:
    return {"refId": "1", "name": "Hook", "type": "webhook", "url": url, **options}


def save(stages, **extra):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "hooks", "stages": stages, **extra}, user="alice")
    return pipeline


def run(pipeline, **parameters):
    execution = do_start_execution(pipeline, parameters=parameters, user="alice")
    execution = wait_for_execution(execution.id, timeout=20)
    return execution, StageExecution.objects.get(execution=execution, ref_id="1")


def everything_stored(execution) -> str:
    """All a reader (or the database) holds of a run: the execution JSON, the stage rows, the events."""
    stages = list(StageExecution.objects.filter(execution=execution).values("context", "outputs", "definition"))
    events = list(Event.objects.filter(execution_id=execution.id).values("payload"))
    return json.dumps([execution_document(execution), stages, events], default=str)


# --- The finding: the token is readable -----------------------------------------------------------


def test_a_secret_header_reaches_the_server_while_nothing_stored_or_shown_holds_it(workers, hook_server):
    workers.start(1, **FAST)
    shop_with_secret()
    # The remote end echoes the token back, in its body and in a header.
    hook_server.script("/deploy", Reply(200, {"seen": f"Bearer {TOKEN}", "id": "d-1"}, {"X-Echo": TOKEN}))
    pipeline = save([hook(hook_server.url("/deploy"), customHeaders={
        "Authorization": "Bearer ${#secret('deploy-token')}", "X-Plain": "visible"})])

    execution, stage = run(pipeline)

    assert execution.status == Status.SUCCEEDED
    [call] = hook_server.calls("/deploy")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert stage.context["customHeaders"] == {"Authorization": "Bearer ${#secret('deploy-token')}",
                                              "X-Plain": "visible"}
    assert stage.outputs["webhook"]["body"] == {"seen": "Bearer ***", "id": "d-1"}
    assert stage.outputs["webhook"]["headers"]["X-Echo"] == "***"
    assert TOKEN not in everything_stored(execution)
    assert TOKEN not in json.dumps(pipeline.definition)
    assert TOKEN not in Secret.objects.get().ciphertext


def test_a_secret_in_the_url_and_payload_is_redacted_from_the_failure_the_stage_records(workers, hook_server):
    workers.start(1, **FAST)
    shop_with_secret()
    hook_server.script(f"/hooks?token={TOKEN}", Reply(404, {"detail": f"no hook for {TOKEN}"}))
    pipeline = save([hook(hook_server.url("/hooks?token=${#secret('deploy-token')}"),
                          payload={"auth": "${#secret('deploy-token')}", "user": "${trigger.user}"})])

    execution, stage = run(pipeline)

    assert stage.status == Status.TERMINAL
    [call] = hook_server.calls(f"/hooks?token={TOKEN}")
    assert call.json == {"auth": TOKEN, "user": "alice"}
    assert "returned 404" in stage.outputs["webhook"]["error"]
    assert "token=***" in stage.outputs["webhook"]["error"]
    assert stage.outputs["webhook"]["body"] == {"detail": "no hook for ***"}
    assert stage.context["payload"] == {"auth": "${#secret('deploy-token')}", "user": "alice"}
    assert TOKEN not in everything_stored(execution)


def test_a_reference_arriving_as_data_is_never_resolved(workers, hook_server):
    """Someone who may only run the pipeline passes the reference as a parameter: it is sent as text."""
    workers.start(1, **FAST)
    shop_with_secret()
    hook_server.script("/echo", Reply(200, {}))
    pipeline = save([hook(hook_server.url("/echo"), customHeaders={"X-Note": "${parameters.note}"})],
                    parameterConfig=[{"name": "note"}])

    execution, _ = run(pipeline, note="${#secret('deploy-token')}")

    assert execution.status == Status.SUCCEEDED
    [call] = hook_server.calls("/echo")
    assert call.headers["x-note"] == "${#secret('deploy-token')}"


def test_a_secret_deleted_after_the_pipeline_was_saved_fails_the_stage_naming_it(workers, hook_server):
    workers.start(1, **FAST)
    application = shop_with_secret()
    hook_server.script("/deploy", Reply(200, {}))
    pipeline = save([hook(hook_server.url("/deploy"), customHeaders={"X-Token": "${#secret('deploy-token')}"})])
    do_delete_secret(Secret.objects.get(application=application), user="alice")

    execution, stage = run(pipeline)

    assert stage.status == Status.TERMINAL
    assert "has no secret 'deploy-token'" in stage.context["exception"]["details"]["error"]
    assert hook_server.calls("/deploy") == []


def test_polling_the_call_url_sends_the_secret_again_while_the_stored_status_url_is_masked(workers, hook_server):
    workers.start(1, **FAST, WEBHOOK_MONITOR_INTERVAL_SECONDS="0.1")
    shop_with_secret()
    path = f"/job?token={TOKEN}"
    hook_server.script(path, Reply(202, {"accepted": True}), method="POST")
    hook_server.script(path, Reply(200, {"status": "RUNNING"}), Reply(200, {"status": "SUCCEEDED"}), method="GET")
    pipeline = save([hook(hook_server.url("/job?token=${#secret('deploy-token')}"), waitForCompletion=True,
                          statusUrlResolution="getMethod", statusJsonPath="$.status", successStatuses="SUCCEEDED",
                          monitorPollIntervalSeconds=0.1)])

    execution, stage = run(pipeline)

    assert execution.status == Status.SUCCEEDED
    assert len(hook_server.calls(path, "GET")) == 2
    assert stage.context["statusEndpoint"] == hook_server.url("/job?token=***")
    assert TOKEN not in everything_stored(execution)


@pytest.mark.django_db
def test_the_cancel_request_carries_the_secret_resolved_from_the_definition(hook_server):
    shop_with_secret()
    hook_server.script("/job/7/cancel", Reply(204))
    pipeline = save([hook(hook_server.url("/job"), cancelEndpoint=hook_server.url("/job/7/cancel"),
                          customHeaders={"X-Token": "${#secret('deploy-token')}"})])
    execution = do_start_execution(pipeline, user="alice")
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    stage.status = Status.CANCELED
    stage.context = {**pipeline.definition["stages"][0], "webhook": {"statusCode": 200}}
    stage.save()

    get_stage_type("webhook").cancel(stage, StageRuntime())

    [call] = hook_server.calls("/job/7/cancel")
    assert call.headers["x-token"] == TOKEN
    assert TOKEN not in json.dumps(StageExecution.objects.get(id=stage.id).context)


# --- Saving a pipeline: references are checked, each at its pointer -----------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("stage, pointer, message", [
    (hook("http://127.0.0.1:9/x", customHeaders={"A": "${#secret('missing')}"}), "/stages/0/customHeaders/A",
     "application 'shop' has no secret 'missing'"),
    (hook("http://127.0.0.1:9/x", payload={"a": "${#secret('deploy-token') + 'x'}"}), "/stages/0/payload/a",
     "a whole ${#secret('name')} of its own"),
    (hook("http://127.0.0.1:9/x", payload={"a": "${#secret(parameters.name)}"}), "/stages/0/payload/a",
     "a whole ${#secret('name')} of its own"),
    (hook("http://127.0.0.1:9/x", statusJsonPath="${#secret('deploy-token')}"), "/stages/0/statusJsonPath",
     "only in the fields a stage resolves itself"),
    ({"refId": "1", "name": "Vars", "type": "evaluateVariables",
      "variables": [{"key": "t", "value": "${#secret('deploy-token')}"}]}, "/stages/0/variables/0/value",
     "only in the fields a stage resolves itself"),
])
def test_a_bad_or_unknown_reference_is_refused_at_its_pointer_and_nothing_is_saved(stage, pointer, message):
    shop_with_secret()

    with pytest.raises(InvalidDocument) as refused:
        save([stage])

    assert [(problem.pointer, message in problem.message) for problem in refused.value.problems] == [(pointer, True)]
    assert not Application.objects.get(name="shop").pipelines.exists()


@pytest.mark.django_db
def test_the_context_evaluated_at_stage_start_keeps_the_reference():
    shop_with_secret()
    pipeline = save([hook("http://127.0.0.1:9/x", customHeaders={"A": "Bearer ${#secret('deploy-token')}"})])
    execution = do_start_execution(pipeline, user="alice")
    from apps.pipelines.scope import ExpressionScope

    evaluated = ExpressionScope(execution).evaluate(pipeline.definition["stages"][0])

    assert evaluated["customHeaders"] == {"A": "Bearer ${#secret('deploy-token')}"}


# --- Encryption at rest, keys and rotation -------------------------------------------------------


@pytest.mark.django_db
def test_values_are_stored_encrypted_and_reencrypt_moves_them_to_the_newest_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(SECRETS_ENCRYPTION_KEYS=[old]):
        application = shop_with_secret()
        stored = Secret.objects.get().ciphertext
    assert Fernet(old.encode()).decrypt(stored.encode()).decode() == TOKEN

    with override_settings(SECRETS_ENCRYPTION_KEYS=[new, old]):
        call_command("reencrypt_secrets", stdout=(output := _Output()))
    with override_settings(SECRETS_ENCRYPTION_KEYS=[new]):
        assert secret_values(application.pk, ["deploy-token"]) == {"deploy-token": TOKEN}
    assert "1 secret" in output.text


@pytest.mark.django_db
def test_a_secret_whose_key_was_removed_cannot_be_used_and_says_why():
    with override_settings(SECRETS_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        application = shop_with_secret()

    with override_settings(SECRETS_ENCRYPTION_KEYS=[Fernet.generate_key().decode()]):
        with pytest.raises(crypto.SecretsUnavailable, match="secret 'deploy-token' cannot be used: no key of "
                                                            "SECRETS_ENCRYPTION_KEYS decrypts it"):
            secret_values(application.pk, ["deploy-token"])


@pytest.mark.django_db
def test_without_debug_and_without_a_key_a_secret_is_refused_with_the_setting_named():
    application = Application.objects.create(name="shop")

    with override_settings(SECRETS_ENCRYPTION_KEYS=[], SECRETS_USE_DEVELOPMENT_KEY=False):
        with pytest.raises(InvalidDocument, match="SECRETS_ENCRYPTION_KEYS is not set") as refused:
            do_set_secret(application, "deploy-token", TOKEN, user="alice")

    assert refused.value.problems[0].pointer == "/value"
    assert not Secret.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name, value, pointer", [
    ("deploy token", TOKEN, "/name"), ("", TOKEN, "/name"), ("t", "abc", "/value"), ("t", 42, "/value"),
])
def test_a_bad_name_or_value_is_refused_at_its_field(name, value, pointer):
    application = Application.objects.create(name="shop")

    with pytest.raises(InvalidDocument) as refused:
        do_set_secret(application, name, value, user="alice")

    assert [problem.pointer for problem in refused.value.problems] == [pointer]
    assert not Secret.objects.exists()


# --- Redaction in logs and errors ----------------------------------------------------------------


class _Output:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_log_records_written_while_a_secret_is_in_use_have_it_masked():
    stream = _Output()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redaction.RedactSecrets())
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    try:
        with redaction.active(redaction.Redactor([TOKEN])):
            logger.warning("calling %s", f"http://h/?t={TOKEN}")
            try:
                raise ValueError(f"bad {TOKEN}")
            except ValueError:
                logger.exception("failed")
        logger.warning("after %s", "the block")
    finally:
        logger.removeHandler(handler)

    assert TOKEN not in stream.text
    assert "calling http://h/?t=***" in stream.text and "ValueError: bad ***" in stream.text
    assert "after the block" in stream.text


def test_encoded_forms_of_a_value_are_masked_too():
    redactor = redaction.Redactor(["a b/c&d\"e"])

    masked = redactor.value({"q": "x=a%20b%2Fc%26d%22e", "plus": "a+b%2Fc%26d%22e", "json": '{"v": "a b/c&d\\"e"}'})

    assert masked == {"q": "x=***", "plus": "***", "json": '{"v": "***"}'}


@pytest.mark.django_db
def test_an_exception_carrying_a_value_is_raised_again_redacted():
    from apps.pipelines.scope import ExpressionScope
    from apps.pipelines.secrets.resolution import SecretRedactedError, using_secrets

    shop_with_secret()
    pipeline = save([hook("http://127.0.0.1:9/x", customHeaders={"A": "${#secret('deploy-token')}"})])
    execution = do_start_execution(pipeline, user="alice")
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    fields = get_stage_type("webhook").secret_fields

    with pytest.raises(SecretRedactedError) as raised:
        with using_secrets(stage, ExpressionScope(execution, stage=stage), fields) as use:
            raise RuntimeError(f"could not send {use.context['customHeaders']['A']}")

    assert str(raised.value) == "RuntimeError: could not send ***"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.django_db
def test_a_synthetic_stage_whose_definition_names_a_secret_is_refused_before_any_lookup():
    """A synthetic stage's definition is planned from its parent's evaluated context, that is from data."""
    from apps.pipelines.scope import ExpressionScope
    from apps.pipelines.secrets.resolution import SyntheticStageSecrets, using_secrets

    shop_with_secret()
    pipeline = save([hook("http://127.0.0.1:9/x", customHeaders={"A": "${#secret('deploy-token')}"})])
    execution = do_start_execution(pipeline, user="alice")
    parent = StageExecution.objects.get(execution=execution, ref_id="1")
    child = StageExecution(execution=execution, parent=parent, ref_id="1<1", type="webhook", name="Planned",
                           definition=parent.definition, context=parent.definition)

    with pytest.raises(SyntheticStageSecrets, match="a synthetic stage cannot use secrets"):
        with using_secrets(child, ExpressionScope(execution, stage=child), get_stage_type("webhook").secret_fields):
            pass


@pytest.mark.django_db
def test_the_command_line_validate_reports_a_missing_secret_at_its_pointer(tmp_path, capsys):
    Application.objects.create(name="shop")
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps({"application": "shop", "name": "hooks", "stages": [
        hook("http://127.0.0.1:9/x", customHeaders={"X-Token": "${#secret('deploy-token')}"})]}))

    with pytest.raises(SystemExit) as exited:
        call_command("pipeline", "validate", str(path))

    assert exited.value.code == 1
    assert "/stages/0/customHeaders/X-Token: application 'shop' has no secret 'deploy-token'" in capsys.readouterr().err


def test_the_development_key_is_reported_by_check_deploy_only_and_a_missing_key_always():
    """Development commands stay quiet (scripts read their stderr); a deploy check and production say what is wrong."""
    with override_settings(SECRETS_ENCRYPTION_KEYS=[], SECRETS_USE_DEVELOPMENT_KEY=True):
        assert "pipelines.W001" not in {message.id for message in checks.run_checks()}
        assert "pipelines.W001" in {message.id for message in checks.run_checks(include_deployment_checks=True)}
    with override_settings(SECRETS_ENCRYPTION_KEYS=[], SECRETS_USE_DEVELOPMENT_KEY=False):
        assert "pipelines.W002" in {message.id for message in checks.run_checks()}
    with override_settings(SECRETS_ENCRYPTION_KEYS=[Fernet.generate_key().decode()], SECRETS_USE_DEVELOPMENT_KEY=False):
        ids = {message.id for message in checks.run_checks(include_deployment_checks=True)}
        assert not ids & {"pipelines.W001", "pipelines.W002"}
