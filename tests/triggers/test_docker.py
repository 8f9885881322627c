"""Docker triggers against a real registry: its notifications start pipelines, and so does polling it."""

from __future__ import annotations

import shutil
import time

import pytest

from apps.deployments.models import RegistryAccount
from apps.pipelines.services import do_save_pipeline
from apps.triggers import polling
from apps.triggers.models import InboundEvent
from tests.conftest import missing_service
from tests.triggers.helpers import WAIT, executions_of, post
from tests.triggers.registry import start_registry, stop_registry

TOKEN = "registry-token-0123456789"
ACCOUNT = "local-registry"


@pytest.fixture
def registry_binary():
    if shutil.which("docker-registry") is None:
        missing_service("docker-registry is not installed (apt-get install docker-registry)")


@pytest.fixture
def notifying_registry(registry_binary, live_server, clean_redis, settings, tmp_path):
    """A real registry whose notifications go to the platform's /webhooks/docker/<account> endpoint."""
    settings.TRIGGER_REGISTRY_TOKEN = TOKEN
    registry = start_registry(tmp_path, f"{live_server.url}/webhooks/docker/{ACCOUNT}", TOKEN)
    RegistryAccount.objects.create(name=ACCOUNT, address=registry.address, insecure=True)
    yield registry
    stop_registry(registry)


@pytest.fixture
def quiet_registry(registry_binary, transactional_db, clean_redis, settings, tmp_path):
    """A real registry that notifies nobody; the platform polls it (the outbound policy lets loopback in)."""
    registry = start_registry(tmp_path)
    RegistryAccount.objects.create(name=ACCOUNT, address=registry.address, insecure=True)
    settings.TRIGGER_POLLED_REGISTRY_ACCOUNTS = [ACCOUNT]
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    yield registry
    stop_registry(registry)


def docker_pipeline(tag=None, name="deploy"):
    trigger = {"type": "docker", "enabled": True, "account": ACCOUNT, "repository": "shop/web"}
    if tag:
        trigger["tag"] = tag
    stages = [{**WAIT, "name": "Deploy ${trigger.tag}"}]
    pipeline, _ = do_save_pipeline({"application": "shop", "name": name, "stages": stages, "triggers": [trigger]})
    return pipeline


def wait_for_executions(pipeline, count: int, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while len(executions_of(pipeline)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return executions_of(pipeline)


def test_a_push_to_the_real_registry_notifies_the_platform_and_starts_the_pipeline_with_the_tag(notifying_registry):
    pipeline = docker_pipeline(tag=r"v\d+\.\d+")
    digest = notifying_registry.push("shop/web", "v1.4")

    [execution] = wait_for_executions(pipeline, 1)

    trigger = execution.trigger
    assert (trigger["tag"], trigger["digest"], trigger["repository"]) == ("v1.4", digest, "shop/web")
    name = f"{notifying_registry.address}/shop/web"
    assert trigger["artifacts"][0] | {"metadata": None} == {
        "type": "docker/image", "name": name, "reference": f"{name}:v1.4", "version": "v1.4", "metadata": None}
    assert InboundEvent.objects.filter(source=f"docker/{ACCOUNT}", outcome="started").count() == 1


def test_tags_that_do_not_match_and_blob_uploads_start_nothing(notifying_registry):
    pipeline = docker_pipeline(tag=r"v\d+\.\d+")
    notifying_registry.push("shop/web", "latest")
    notifying_registry.push("shop/web", "v2.0")

    executions = wait_for_executions(pipeline, 1)
    time.sleep(1)  # the registry's notifications of "latest" came first; nothing else may arrive
    assert [e.trigger["tag"] for e in executions_of(pipeline)] == ["v2.0"] == [e.trigger["tag"] for e in executions]


@pytest.mark.django_db
def test_a_notification_without_the_token_is_refused(settings):
    settings.TRIGGER_REGISTRY_TOKEN = TOKEN
    RegistryAccount.objects.create(name=ACCOUNT, address="127.0.0.1:5000", insecure=True)
    pipeline = docker_pipeline()
    envelope = {"events": [{"id": "e-1", "action": "push", "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "repository": "shop/web",
        "tag": "v1", "digest": "sha256:" + "a" * 64}}]}

    assert post(f"/webhooks/docker/{ACCOUNT}", envelope).status_code == 401
    assert post(f"/webhooks/docker/{ACCOUNT}", envelope, {"Authorization": "Bearer guess"}).status_code == 403
    assert executions_of(pipeline) == []

    ok = post(f"/webhooks/docker/{ACCOUNT}", envelope, {"Authorization": f"Bearer {TOKEN}"})
    replay = post(f"/webhooks/docker/{ACCOUNT}", envelope, {"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == replay.status_code == 200
    assert len(executions_of(pipeline)) == 1  # the replayed event was recorded and refused
    assert InboundEvent.objects.filter(outcome="refused", reason__contains="already received").count() == 1


@pytest.mark.django_db
def test_a_trigger_naming_only_the_registry_address_fires_on_that_accounts_notifications(settings):
    settings.TRIGGER_REGISTRY_TOKEN = TOKEN
    RegistryAccount.objects.create(name=ACCOUNT, address="127.0.0.1:5000", insecure=True)
    trigger = {"type": "docker", "registry": "127.0.0.1:5000", "repository": "shop/web"}
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deploy", "stages": [WAIT], "triggers": [trigger]})
    envelope = {"events": [{"id": "e-9", "action": "push", "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "shop/web", "tag": "v3",
        "digest": "sha256:" + "b" * 64}}]}

    post(f"/webhooks/docker/{ACCOUNT}", envelope, {"Authorization": f"Bearer {TOKEN}"})

    assert [e.trigger["tag"] for e in executions_of(pipeline)] == ["v3"]


@pytest.mark.django_db
def test_a_docker_trigger_naming_a_registry_account_not_configured_yet_loads_and_says_so():
    """As in Spinnaker, a document is often imported before its accounts exist: it saves, and its trigger is
    described as waiting for that account."""
    from apps.triggers.kinds.docker import DockerKind

    pipeline = docker_pipeline()
    [trigger] = pipeline.definition["triggers"]
    assert trigger["account"] == ACCOUNT
    assert f"registry account {ACCOUNT} (not configured here yet)" in DockerKind().describe(trigger)


def test_polling_records_what_exists_first_then_fires_each_new_tag_once(quiet_registry):
    pipeline = docker_pipeline()
    quiet_registry.push("shop/web", "v1")

    assert polling.poll_registries() == 0  # the first poll only records what exists
    assert executions_of(pipeline) == []

    digest = quiet_registry.push("shop/web", "v2")
    assert polling.poll_registries() == 1
    assert polling.poll_registries() == 0

    [execution] = executions_of(pipeline)
    assert (execution.trigger["tag"], execution.trigger["digest"]) == ("v2", digest)


@pytest.mark.django_db
def test_a_writer_saves_a_docker_trigger_only_on_a_registry_account_they_read():
    from django.contrib.auth.models import User

    from apps.accounts.permissions import PermissionRefused
    from apps.accounts.services import do_grant
    from apps.pipelines.models import Application

    account = RegistryAccount.objects.create(name=ACCOUNT, address="127.0.0.1:5000", insecure=True)
    alice = User.objects.create_user("alice")
    do_grant(Application.objects.create(name="shop"), alice, "write", actor="setup")
    document = {"application": "shop", "name": "deploy", "stages": [WAIT],
                "triggers": [{"type": "docker", "account": ACCOUNT, "repository": "shop/web"}]}

    with pytest.raises(PermissionRefused) as refused:
        do_save_pipeline(document, user=alice)
    assert refused.value.field == "/triggers/0/account"

    do_grant(account, alice, "read", actor="setup")
    do_save_pipeline(document, user=alice)
