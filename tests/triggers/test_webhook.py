"""Generic webhooks start pipelines: payload constraints, the payload, parameters and artifacts, a shared secret."""

from __future__ import annotations

import json

import pytest

from apps.pipelines.services import do_save_pipeline
from apps.triggers.models import InboundEvent
from tests.triggers.helpers import SECRET, WAIT, executions_of, post, save_with_triggers, signature

pytestmark = pytest.mark.django_db


def hook(source="deploy-requests", **extra):
    return {"type": "webhook", "enabled": True, "source": source, **extra}


def test_a_webhook_starts_the_pipeline_with_its_payload_parameters_and_artifacts():
    pipeline = save_with_triggers([hook()], parameterConfig=[{"name": "env", "required": True}], secret=None)
    artifact = {"type": "docker/image", "name": "registry/shop", "reference": "registry/shop:1.2", "version": "1.2"}
    payload = {"env": "staging", "parameters": {"env": "prod"}, "artifacts": [artifact]}

    response = post("/webhooks/webhook/deploy-requests", payload)

    assert response.status_code == 200, response.content
    [execution] = executions_of(pipeline)
    assert execution.trigger["payload"] == payload
    assert execution.parameters == {"env": "prod"}
    assert execution.trigger["artifacts"] == [artifact]


def test_payload_constraints_must_all_match():
    pipeline = save_with_triggers([hook(payloadConstraints={"env": "prod|staging", "repo.branch": "main"})],
                                  secret=None)
    assert post("/webhooks/webhook/deploy-requests", {"env": "prod", "repo": {"branch": "dev"}}).status_code == 200
    assert post("/webhooks/webhook/deploy-requests", {"env": "qa", "repo": {"branch": "main"}}).status_code == 200
    assert executions_of(pipeline) == []

    assert post("/webhooks/webhook/deploy-requests", {"env": "prod", "repo": {"branch": "main"}}).status_code == 200
    assert len(executions_of(pipeline)) == 1


def test_a_webhook_with_a_secret_needs_its_signature_or_token():
    pipeline = save_with_triggers([hook(secret="${#secret('hook-key')}")])
    body = json.dumps({"env": "prod"}).encode()
    path = "/webhooks/webhook/deploy-requests"

    assert post(path, body).status_code == 401
    assert post(path, body, {"X-Webhook-Token": "guess"}).status_code == 403
    assert post(path, body, {"X-Hub-Signature-256": signature(body, "guess")}).status_code == 403
    assert executions_of(pipeline) == []

    assert post(path, body, {"X-Hub-Signature-256": signature(body)}).status_code == 200
    assert post(path, body, {"X-Webhook-Token": SECRET}).status_code == 200
    assert len(executions_of(pipeline)) == 2


def test_parameters_the_pipeline_refuses_are_recorded_as_the_reason_nothing_started():
    pipeline = save_with_triggers([hook()], parameterConfig=[{"name": "env", "required": True}], secret=None)

    response = post("/webhooks/webhook/deploy-requests", {"parameters": {}})

    assert response.status_code == 200
    assert executions_of(pipeline) == []
    event = InboundEvent.objects.get()
    assert event.outcome == "refused"
    assert "env" in event.reason


def test_a_malformed_parameters_field_is_refused_400_naming_it():
    save_with_triggers([hook()], secret=None)
    response = post("/webhooks/webhook/deploy-requests", {"parameters": ["env=prod"]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/parameters"


def test_saving_a_webhook_trigger_with_a_bad_constraint_is_refused_at_its_pointer():
    from apps.pipelines.problems import InvalidDocument

    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline({"application": "shop", "name": "deliver", "stages": [WAIT],
                          "triggers": [hook(payloadConstraints={"env": "(?<=x)y"}), hook(source="a b")]})
    pointers = [problem.pointer for problem in refused.value.problems]
    assert pointers == ["/triggers/0/payloadConstraints/env", "/triggers/1/source"]


def test_a_secret_reference_must_name_an_application_secret_that_exists():
    from apps.pipelines.problems import InvalidDocument

    for written in ("abc", "${#secret('nope')}"):
        with pytest.raises(InvalidDocument) as refused:
            do_save_pipeline({"application": "shop", "name": "deliver", "stages": [WAIT],
                              "triggers": [hook(secret=written)]})
        assert [problem.pointer for problem in refused.value.problems] == ["/triggers/0/secret"]


def test_a_plain_secret_as_spinnaker_exports_it_is_moved_into_the_applications_secrets_on_save():
    from apps.pipelines.models import Application, Secret
    from apps.pipelines.secrets import crypto

    document = {"application": "shop", "name": "deliver", "stages": [WAIT],
                "triggers": [hook(), {"type": "git", "source": "github", "project": "acme", "slug": "web",
                                      "secret": "plain-hook-key"}]}
    pipeline, _ = do_save_pipeline(document, user="ops")

    reference = "${#secret('deliver-trigger-1-secret')}"
    assert pipeline.definition["triggers"][1]["secret"] == reference
    assert "plain-hook-key" not in json.dumps(list(pipeline.revisions.values_list("definition", flat=True)))
    secret = Secret.objects.get(application=Application.objects.get(name="shop"), name="deliver-trigger-1-secret")
    assert crypto.decrypt(secret.ciphertext) == "plain-hook-key"

    document["triggers"][1]["secret"] = "another-hook-key"  # importing the export again replaces the value
    pipeline, _ = do_save_pipeline(document, user="ops")
    assert pipeline.definition["triggers"][1]["secret"] == reference
    secret.refresh_from_db()
    assert crypto.decrypt(secret.ciphertext) == "another-hook-key"


def test_a_plain_secret_with_no_encryption_key_saves_nothing(settings):
    from apps.pipelines.models import Pipeline, Secret
    from apps.pipelines.problems import InvalidDocument

    settings.SECRETS_ENCRYPTION_KEYS, settings.SECRETS_USE_DEVELOPMENT_KEY = [], False
    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline({"application": "shop", "name": "deliver", "stages": [WAIT],
                          "triggers": [hook(secret="plain-hook-key")]}, user="ops")
    assert [problem.pointer for problem in refused.value.problems] == ["/triggers/0/secret"]
    assert not Pipeline.objects.exists() and not Secret.objects.exists()


