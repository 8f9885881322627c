"""Docker engine and registry accounts: the YAML file, write-only credentials, the zero-configuration ``local``,
and the deploy permission through the one permission model."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.accounts.permissions import DEPLOY, PermissionRefused, can
from apps.accounts.services import do_grant
from apps.deployments.credentials import decrypted
from apps.deployments.models import DockerAccount, RegistryAccount
from apps.deployments.providers.engines import engine_address
from apps.deployments.services.accounts import check_deploy, do_save_registry_account

pytestmark = pytest.mark.django_db

ACCOUNTS_FILE = """
docker:
  - {name: local, host: "unix:///var/run/docker.sock", registries: [local]}
  - {name: staging, host: "tcp://127.0.0.1:2376", tls: true, registries: [local, hub]}
registries:
  - {name: local, address: "127.0.0.1:5000", insecure: true}
  - {name: hub, address: "registry.example.com", username: ci, password: "hub-password-1"}
"""


def load(tmp_path, text: str) -> str:
    path = tmp_path / "accounts.yml"
    path.write_text(text)
    out = StringIO()
    call_command("accounts", "load", str(path), stdout=out)
    return out.getvalue()


def state() -> list:
    engines = [(a.name, a.host, a.tls, sorted(a.registries.values_list("name", flat=True)))
               for a in DockerAccount.objects.order_by("name")]
    registries = list(RegistryAccount.objects.order_by("name").values_list("name", "address", "insecure", "username"))
    return [engines, registries]


def test_the_local_account_exists_with_no_configuration_and_follows_docker_host(monkeypatch):
    local = DockerAccount.objects.get(name="local")
    assert local.host == ""

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_address(local) == "unix:///var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine_address(local) == "tcp://127.0.0.1:2375"


def test_loading_the_accounts_file_twice_changes_nothing_the_second_time(tmp_path):
    first = load(tmp_path, ACCOUNTS_FILE)
    after_first = state()
    second = load(tmp_path, ACCOUNTS_FILE)

    assert "created registries/hub" in first and "created docker/staging" in first
    assert "applied docker/local" in first  # the zero-configuration row, now configured
    assert "created" not in second
    assert state() == after_first == [
        [("local", "unix:///var/run/docker.sock", False, ["local"]),
         ("staging", "tcp://127.0.0.1:2376", True, ["hub", "local"])],
        [("hub", "registry.example.com", False, "ci"), ("local", "127.0.0.1:5000", True, "")],
    ]
    assert decrypted(RegistryAccount.objects.get(name="hub").credentials) == "hub-password-1"


def test_a_file_with_a_problem_changes_nothing_and_names_each_problem(tmp_path):
    bad = """
registries:
  - {name: fine, address: "127.0.0.1:5001"}
  - {name: broken, address: "http://127.0.0.1:5000/v2", insecure: "yes"}
docker:
  - {name: remote, host: "ssh://somewhere", registries: [missing], colour: blue}
"""
    with pytest.raises(CommandError) as refused:
        load(tmp_path, bad)

    message = str(refused.value)
    for pointer in ("/registries/1/address", "/registries/1/insecure", "/docker/0/host", "/docker/0/registries/0",
                    "/docker/0/colour"):
        assert f"#{pointer}:" in message, message
    assert not RegistryAccount.objects.filter(name="fine").exists()
    assert not DockerAccount.objects.filter(name="remote").exists()


def test_a_file_that_is_not_yaml_or_not_the_format_is_refused(tmp_path):
    for text, pointer in (("docker: [", "#/:"), ("- a\n- b\n", "#/:"), ("clusters: []\n", "#/clusters:")):
        with pytest.raises(CommandError, match=pointer):
            load(tmp_path, text)


def test_credentials_go_in_and_never_come_out(tmp_path):
    root = User.objects.create_superuser("root")
    client = APIClient()
    client.force_login(root)

    created = client.post("/api/registry-accounts/", {"name": "hub", "address": "registry.example.com",
                                                       "username": "ci", "password": "hub-password-2"}, format="json")
    listed = client.get("/api/registry-accounts/")
    engine = client.post("/api/docker-accounts/", {"name": "tls", "host": "tcp://127.0.0.1:2376", "tls": True,
                                                    "clientKey": "-----BEGIN KEY-----x", "registries": ["hub"]},
                         format="json")

    assert created.status_code == 201, created.content
    assert created.json()["hasCredentials"] is True
    assert engine.status_code == 201 and engine.json()["hasClientKey"] is True
    for response in (created, listed, engine, client.get("/api/docker-accounts/tls/")):
        assert b"hub-password-2" not in response.content and b"BEGIN KEY" not in response.content
    stored = RegistryAccount.objects.get(name="hub").credentials
    assert "hub-password-2" not in stored and decrypted(stored) == "hub-password-2"
    audit = AuditEvent.objects.filter(object_type="registry_account").get()
    assert "hub-password-2" not in str(audit.details) and audit.details == {
        "fields": ["address", "password", "username"]}


def test_a_change_without_the_password_keeps_it_and_an_empty_one_clears_it():
    do_save_registry_account({"name": "hub", "address": "registry.example.com", "password": "pw-one"}, actor="ops")

    do_save_registry_account({"name": "hub", "insecure": True}, actor="ops")
    kept = RegistryAccount.objects.get(name="hub")
    do_save_registry_account({"name": "hub", "password": ""}, actor="ops")

    assert kept.insecure and decrypted(kept.credentials) == "pw-one"
    assert RegistryAccount.objects.get(name="hub").has_credentials is False


def test_an_api_body_with_a_bad_field_is_a_400_naming_it():
    client = APIClient()
    client.force_login(User.objects.create_superuser("root"))

    response = client.post("/api/docker-accounts/", {"name": "x", "host": "ftp://nope", "registries": ["none"]},
                           format="json")

    assert response.status_code == 400
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/host", "/registries/0"}
    assert not DockerAccount.objects.filter(name="x").exists()


def test_deploying_to_an_account_needs_its_deploy_permission_direct_or_through_a_team():
    account = DockerAccount.objects.get(name="local")
    reader, deployer, teammate = (User.objects.create_user(name) for name in ("bob", "erin", "frank"))
    team = Group.objects.create(name="deployers")
    teammate.groups.add(team)
    do_grant(account, reader, "read", actor="ops")
    do_grant(account, deployer, "deploy", actor="ops")
    do_grant(account, team, "deploy", actor="ops")

    with pytest.raises(PermissionRefused, match="You may not deploy"):
        check_deploy(reader, account)
    check_deploy(deployer, account)
    check_deploy(teammate, account)
    check_deploy("the command line", account)  # an operator identity
    assert [can(user, DEPLOY, account) for user in (reader, deployer, teammate)] == [False, True, True]
    assert DockerAccount.objects.restrict(reader, DEPLOY).count() == 0
    assert list(DockerAccount.objects.restrict(deployer, "read")) == [account]
