"""Fuzzing the webhook endpoints: whatever arrives, the answer is a 2xx or a 4xx in the one error shape, never a 5xx.

Hypothesis sends JSON values of every shape (and bytes that are not JSON),
with and without each provider's headers, to every webhook path, against
pipelines whose triggers of each kind have secrets, so the reading, the
matching and the proof checks all run. Derandomized and bounded, like the
API's fuzzing; ``-m "not fuzz"`` leaves it out.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.deployments.models import RegistryAccount
from tests.triggers.helpers import save_with_triggers

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

PATHS = ["/webhooks/git/github", "/webhooks/git/gitlab", "/webhooks/git/bitbucket", "/webhooks/git/stash",
         "/webhooks/webhook/deploys", "/webhooks/jenkins/ci", "/webhooks/docker/hub"]
SECRET = "${#secret('hook-key')}"
TEXT = st.text(max_size=20)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=20)
# Payload-shaped objects: the keys the readers look for, with values of any shape.
KEYS = st.sampled_from(["ref", "after", "repository", "project", "push", "changes", "refChanges", "events",
                        "build", "name", "url", "parameters", "artifacts", "object_kind", "deleted"])
SHAPED = st.dictionaries(KEYS, JSON, max_size=6)
HEADERS = st.dictionaries(st.sampled_from([
    "X-GitHub-Event", "X-Hub-Signature-256", "X-Hub-Signature", "X-Gitlab-Token", "X-Event-Key",
    "X-GitHub-Delivery", "X-Request-Id", "X-Webhook-Token", "Authorization", "X-Delivery-Id"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30), max_size=4)


@pytest.fixture(autouse=True)
def world(settings):
    settings.TRIGGER_CI_TOKEN = settings.TRIGGER_REGISTRY_TOKEN = "fuzz-token-0123"
    RegistryAccount.objects.create(name="hub", address="127.0.0.1:5000", insecure=True)
    save_with_triggers([
        {"type": "git", "source": source, "project": "acme", "slug": "shop", "secret": SECRET}
        for source in ("github", "gitlab", "bitbucket", "stash")
    ] + [
        {"type": "webhook", "source": "deploys", "secret": SECRET, "payloadConstraints": {"env": "prod"}},
        {"type": "jenkins", "master": "ci", "job": "shop"},
        {"type": "docker", "account": "hub", "repository": "shop/web", "tag": "v.*"},
    ])


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), body=JSON | SHAPED, raw=st.none() | st.binary(max_size=40), headers=HEADERS)
def test_no_webhook_request_gets_a_server_error(path, body, raw, headers):
    content = raw if raw is not None else json.dumps(body).encode()
    response = Client().post(path, content, content_type="application/json", headers=headers)
    assert response.status_code < 500, (path, body, headers, response.content[:300])
    if response.status_code >= 400:
        errors = response.json()["errors"]
        assert errors and all(set(error) == {"pointer", "message"} and error["message"] for error in errors)
