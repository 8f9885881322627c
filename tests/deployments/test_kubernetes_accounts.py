"""Kubernetes accounts: the YAML file's ``kubernetes`` section, kubeconfigs checked at their pointers, write-only
contents, the deploy permission through the one permission model, the namespaces and kinds an account may touch,
and API clients built from contents, a file and the worker pod's service account: against an API server at a
port nobody listens on or a socket that never answers, and at the end against the real test cluster's."""

from __future__ import annotations

import os
import socket
import time
from io import StringIO
from types import SimpleNamespace

import pytest
import yaml
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client
from kubernetes import client as kubernetes_client
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config, kube_config
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.accounts.permissions import DEPLOY, PermissionRefused, can
from apps.accounts.services import do_grant
from apps.deployments.credentials import decrypted
from apps.deployments.models import KubernetesAccount
from apps.deployments.providers.kubernetes import client as kube
from apps.deployments.providers.kubernetes.client import (
    KubernetesUnreachable,
    api_client,
    check_kind,
    check_namespace,
)
from apps.deployments.services.accounts import check_deploy
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.deployments.stages.common import StageRefused, kubernetes_account
from apps.pipelines.problems import InvalidDocument

pytestmark = pytest.mark.django_db

TOKEN = "k8s-token-do-not-show"
# Two contexts on two servers nobody listens at, the second one the current context.
KUBECONFIG = f"""
apiVersion: v1
kind: Config
clusters:
- {{name: local, cluster: {{server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}}}
- {{name: other, cluster: {{server: "https://127.0.0.1:2", insecure-skip-tls-verify: true}}}}
users:
- {{name: admin, user: {{token: {TOKEN}}}}}
contexts:
- {{name: local, context: {{cluster: local, user: admin}}}}
- {{name: other, context: {{cluster: other, user: admin}}}}
current-context: other
"""


def load(tmp_path, text: str) -> str:
    path = tmp_path / "accounts.yml"
    path.write_text(text)
    out = StringIO()
    call_command("accounts", "load", str(path), stdout=out)
    return out.getvalue()


def kubeconfig_file(tmp_path, text: str = KUBECONFIG, name: str = "kubeconfig") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def refused_pointers(document: dict) -> dict[str, str]:
    with pytest.raises(InvalidDocument) as refused:
        do_save_kubernetes_account(document, actor="ops")
    return {problem.pointer: problem.message for problem in refused.value.problems}


def row(account: KubernetesAccount) -> tuple:
    account.refresh_from_db()
    return (account.kubeconfig, account.kubeconfig_file, account.context, account.in_cluster, account.namespaces,
            account.omit_namespaces, account.kinds, account.omit_kinds, account.updated_at)


# --- The accounts file ----------------------------------------------------------------------------


def test_loading_the_accounts_file_twice_changes_nothing_the_second_time(tmp_path):
    path = kubeconfig_file(tmp_path)
    contents = KUBECONFIG.replace("\n", "\n      ")
    text = f"""
kubernetes:
  - {{name: k8s, kubeconfigFile: {path}, context: local, namespaces: [shop, shop-test], omitKinds: [Secret]}}
  - name: inline
    kubeconfigContents: |
      {contents}
    kinds: [deployment, Service]
"""
    first = load(tmp_path, text)
    k8s, inline = KubernetesAccount.objects.get(name="k8s"), KubernetesAccount.objects.get(name="inline")
    before = (row(k8s), row(inline))
    events = AuditEvent.objects.filter(object_type="kubernetes_account").count()

    second = load(tmp_path, text)

    assert "created kubernetes/k8s" in first and "created kubernetes/inline" in first
    assert second.split() == ["unchanged", "kubernetes/k8s", "unchanged", "kubernetes/inline"]
    assert (row(k8s), row(inline)) == before, "the second load wrote nothing, not even a new token"
    assert AuditEvent.objects.filter(object_type="kubernetes_account").count() == events == 2
    assert (k8s.kubeconfig_file, k8s.context, k8s.namespaces, k8s.omit_kinds) == (path, "local", ["shop", "shop-test"],
                                                                                  ["Secret"])
    assert not k8s.has_kubeconfig and inline.has_kubeconfig and inline.kinds == ["deployment", "Service"]
    assert TOKEN not in inline.kubeconfig and decrypted(inline.kubeconfig).strip() == KUBECONFIG.strip()


def test_changed_contents_are_saved_and_audited_and_the_same_again_are_not():
    account, created = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG}, actor="ops")
    token = account.kubeconfig

    changed, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG + "\n# rotated\n"},
                                            actor="ops")
    again, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG + "\n# rotated\n"},
                                          actor="ops")

    assert created and changed.kubeconfig != token and again.kubeconfig == changed.kubeconfig
    assert list(AuditEvent.objects.filter(object_type="kubernetes_account").values_list("action", flat=True)
                .order_by("id")) == ["kubernetes_account.created", "kubernetes_account.changed"]


def test_a_file_with_bad_accounts_changes_nothing_and_names_each_problem_at_its_pointer(tmp_path):
    path = kubeconfig_file(tmp_path)
    text = f"""
kubernetes:
  - {{name: fine, kubeconfigFile: {path}}}
  - {{name: no-context, kubeconfigFile: {path}, context: staging}}
  - {{name: not-yaml, kubeconfigContents: "clusters: ["}}
  - {{name: both, kubeconfigContents: "{{}}", kubeconfigFile: {path}}}
  - {{name: listless, kubeconfigFile: {path}, namespaces: shop}}
  - {{name: nothing}}
  - {{name: relative, kubeconfigFile: kubeconfig, omitKinds: [Secret, "no kind"]}}
"""
    with pytest.raises(CommandError) as refused:
        load(tmp_path, text)

    message = str(refused.value)
    for pointer, says in (("/kubernetes/1/context", "has no context 'staging'; its contexts: local, other"),
                          ("/kubernetes/2/kubeconfigContents", "is not valid YAML (line 1, column 12)"),
                          ("/kubernetes/3/kubeconfigContents", "give one credential source, not kubeconfigContents "
                                                               "and kubeconfigFile"),
                          ("/kubernetes/3/kubeconfigFile", "give one credential source"),
                          ("/kubernetes/4/namespaces", "must be a list of names"),
                          ("/kubernetes/5", "needs one credential source: kubeconfigContents, kubeconfigFile or "
                                            "serviceAccount: true"),
                          ("/kubernetes/6/kubeconfigFile", "must be an absolute path"),
                          ("/kubernetes/6/omitKinds/1", "must be a kind")):
        assert f"#{pointer}: {says}" in message, message
    assert "/kubernetes/0" not in message
    assert not KubernetesAccount.objects.exists()


@pytest.mark.parametrize("kubeconfig, pointer, says", [
    ("- just\n- a list\n", "/kubeconfigContents", "is not a kubeconfig: a mapping with clusters, contexts and users"),
    ("clusters: []\ncontexts: []\n", "/kubeconfigContents", "has no current-context: name one of its contexts"),
    (KUBECONFIG.replace("server:", "serverless:"), "/kubeconfigContents", "cluster 'other' has no server"),
    (KUBECONFIG.replace("{token:", "{exec: {command: /bin/sh}, token:"), "/kubeconfigContents",
     "may hold only data, no worker file or command (users[0].user.exec): use kubeconfigFile"),
    (KUBECONFIG.replace("insecure-skip-tls-verify: true", "certificate-authority: /etc/ssl/ca.pem"),
     "/kubeconfigContents", "(clusters[0].cluster.certificate-authority, clusters[1].cluster.certificate-authority)"),
    ("a: " + "x" * 300_000, "/kubeconfigContents", "is over 256 KB"),
])
def test_a_kubeconfig_that_cannot_be_used_is_refused_saying_why(kubeconfig, pointer, says):
    problems = refused_pointers({"name": "k8s", "kubeconfigContents": kubeconfig})

    assert says in problems[pointer], problems
    assert TOKEN not in str(problems)
    assert not KubernetesAccount.objects.exists()


def test_a_document_is_refused_for_unknown_keys_and_bad_lists_and_both_lists_of_a_pair():
    problems = refused_pointers({"name": "k8s", "kubeconfigContents": KUBECONFIG, "providerVersion": "V2",
                                 "namespaces": ["Shop_1"], "kinds": "Deployment", "serviceAccount": "yes"})
    assert set(problems) == {"/providerVersion", "/namespaces/0", "/kinds", "/serviceAccount"}

    problems = refused_pointers({"name": "k8s", "kubeconfigContents": KUBECONFIG, "namespaces": ["shop"],
                                 "omitNamespaces": ["kube-system"]})
    assert problems == {"/omitNamespaces": "give namespaces or omitNamespaces, not both"}


def test_naming_another_credential_source_replaces_the_one_held(tmp_path):
    do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG, "context": "local"}, actor="ops")
    path = kubeconfig_file(tmp_path)

    moved, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigFile": path}, actor="ops")
    in_pod, _ = do_save_kubernetes_account({"name": "k8s", "serviceAccount": True, "context": ""}, actor="ops")

    assert (moved.has_kubeconfig, moved.kubeconfig_digest, moved.kubeconfig_file, moved.context) == (
        False, "", path, "local")
    assert (in_pod.kubeconfig_file, in_pod.in_cluster, in_pod.context) == ("", True, "")
    assert refused_pointers({"name": "k8s", "serviceAccount": False}) == {
        "": "needs one credential source: kubeconfigContents, kubeconfigFile or serviceAccount: true"}
    assert "/context" in refused_pointers({"name": "k8s", "context": "local"})


def test_a_kubeconfig_file_that_is_not_a_regular_file_is_refused_without_waiting_for_it(tmp_path):
    os.mkfifo(tmp_path / "fifo")

    problems = refused_pointers({"name": "k8s", "kubeconfigFile": str(tmp_path / "fifo")})

    assert problems == {"/kubeconfigFile": "is not a regular file"}


# --- Write-only contents ------------------------------------------------------------------------


def test_the_kubeconfig_goes_in_and_never_comes_out_of_the_api_the_admin_or_the_audit_log():
    root = User.objects.create_superuser("root")
    api = APIClient()
    api.force_login(root)

    created = api.post("/api/kubernetes-accounts/", {"name": "k8s", "kubeconfigContents": KUBECONFIG,
                                                     "namespaces": ["shop"]}, format="json")
    updated = api.put("/api/kubernetes-accounts/k8s/", {"context": "local", "omitKinds": ["Secret"]}, format="json")
    responses = [created, updated, api.get("/api/kubernetes-accounts/"), api.get("/api/kubernetes-accounts/k8s/")]
    admin = Client()
    admin.force_login(root)
    account = KubernetesAccount.objects.get(name="k8s")
    pages = [admin.get("/admin/deployments/kubernetesaccount/"),
             admin.get(f"/admin/deployments/kubernetesaccount/{account.pk}/change/")]

    assert created.status_code == 201, created.content
    assert created.json() == {**created.json(), "cloudProvider": "kubernetes", "hasKubeconfig": True,
                              "kubeconfigFile": "", "serviceAccount": False, "namespaces": ["shop"]}
    assert "kubeconfigContents" not in created.json()
    assert updated.status_code == 200 and updated.json()["context"] == "local"
    for response in responses + pages:
        assert response.status_code == 200 or response is created
        assert TOKEN.encode() not in response.content and account.kubeconfig.encode() not in response.content
    assert b"kubeconfig_contents" in pages[1].content  # the write-only field is there, empty
    assert [event.details for event in AuditEvent.objects.filter(object_type="kubernetes_account").order_by("id")] \
        == [{"fields": ["kubeconfigContents", "namespaces"]}, {"fields": ["context", "omitKinds"]}]


def test_the_admin_saves_through_the_service_and_keeps_the_contents_when_left_empty(tmp_path):
    admin = Client()
    admin.force_login(User.objects.create_superuser("root"))
    form = {"name": "k8s", "kubeconfig_contents": KUBECONFIG, "kubeconfig_file": "", "context": "local",
            "namespaces": '["shop"]', "omit_namespaces": "[]", "kinds": "[]", "omit_kinds": '["Secret"]'}

    assert admin.get("/admin/deployments/kubernetesaccount/add/").status_code == 200
    added = admin.post("/admin/deployments/kubernetesaccount/add/", form)
    account = KubernetesAccount.objects.get(name="k8s")
    token = account.kubeconfig
    kept = admin.post(f"/admin/deployments/kubernetesaccount/{account.pk}/change/",
                      {**form, "kubeconfig_contents": "", "namespaces": '["shop", "shop-test"]'})
    bad = admin.post(f"/admin/deployments/kubernetesaccount/{account.pk}/change/", {**form, "context": "nope"})

    assert added.status_code == kept.status_code == 302, added.content.decode()[-2000:]
    account.refresh_from_db()
    assert (account.kubeconfig, account.namespaces, account.omit_kinds) == (token, ["shop", "shop-test"], ["Secret"])
    assert bad.status_code == 200 and b"has no context &#x27;nope&#x27;" in bad.content
    assert AuditEvent.objects.filter(object_type="kubernetes_account", source="admin").count() == 2
    grants = admin.get(f"/admin/deployments/kubernetesaccount/{account.pk}/permissions/")
    assert grants.status_code == 200 and TOKEN.encode() not in grants.content


# --- Who may do what ----------------------------------------------------------------------------


def test_deploying_to_a_kubernetes_account_needs_its_deploy_permission_direct_or_through_a_team():
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG}, actor="ops")
    reader, deployer, teammate, outsider = (User.objects.create_user(name) for name in ("bob", "erin", "frank", "c"))
    team = Group.objects.create(name="deployers")
    teammate.groups.add(team)
    do_grant(account, reader, "read", actor="ops")
    do_grant(account, deployer, "deploy", actor="ops")
    do_grant(account, team, "deploy", actor="ops")

    with pytest.raises(PermissionRefused, match="You may not deploy in kubernetes account k8s"):
        check_deploy(reader, account)
    check_deploy(deployer, account)
    check_deploy(teammate, account)
    check_deploy("the command line", account)
    assert [can(user, DEPLOY, account) for user in (reader, deployer, teammate, outsider)] == [False, True, True,
                                                                                                False]
    assert list(KubernetesAccount.objects.restrict(outsider, "read")) == []
    assert list(KubernetesAccount.objects.restrict(deployer, DEPLOY)) == [account]


def test_a_stage_gets_the_account_only_when_the_identity_it_acts_as_may_deploy_to_it():
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG}, actor="ops")
    reader, deployer = User.objects.create_user("bob"), User.objects.create_user("erin")
    do_grant(account, reader, "read", actor="ops")
    do_grant(account, deployer, "deploy", actor="ops")

    def stage_run_as(user):
        return SimpleNamespace(execution=SimpleNamespace(run_as_name=user.username, started_by=user.username,
                                                         run_as_system=False, run_as_id=user.pk))

    assert kubernetes_account(stage_run_as(deployer), "k8s") == account
    with pytest.raises(StageRefused, match=r"^account: You may not deploy in kubernetes account k8s\.$"):
        kubernetes_account(stage_run_as(reader), "k8s")
    with pytest.raises(StageRefused, match=r"^account: there is no Kubernetes account 'nope'$"):
        kubernetes_account(stage_run_as(deployer), "nope")


def test_only_an_administrator_adds_an_account_and_only_managers_change_one(tmp_path):
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG}, actor="ops")
    reader, manager, outsider = (User.objects.create_user(name) for name in ("bob", "alice", "charlie"))
    do_grant(account, reader, "read", actor="ops")
    do_grant(account, manager, "manage", actor="ops")
    clients = {}
    for user in (reader, manager, outsider):
        clients[user.username] = APIClient()
        clients[user.username].force_login(user)
    change = {"namespaces": ["shop"]}

    assert clients["alice"].post("/api/kubernetes-accounts/", {"name": "new", "kubeconfigContents": KUBECONFIG},
                                 format="json").status_code == 403
    assert clients["charlie"].put("/api/kubernetes-accounts/k8s/", change, format="json").status_code == 404
    assert clients["bob"].put("/api/kubernetes-accounts/k8s/", change, format="json").status_code == 403
    assert clients["bob"].delete("/api/kubernetes-accounts/k8s/").status_code == 403
    assert clients["alice"].put("/api/kubernetes-accounts/k8s/", change, format="json").status_code == 200
    assert KubernetesAccount.objects.get(name="k8s").namespaces == ["shop"]


def test_a_manager_may_not_point_an_account_at_credentials_the_worker_holds(tmp_path):
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG}, actor="ops")
    manager = User.objects.create_user("alice")
    do_grant(account, manager, "manage", actor="ops")
    api = APIClient()
    api.force_login(manager)

    to_file = api.put("/api/kubernetes-accounts/k8s/", {"kubeconfigFile": kubeconfig_file(tmp_path)}, format="json")
    to_pod = api.put("/api/kubernetes-accounts/k8s/", {"serviceAccount": True}, format="json")

    assert to_file.status_code == to_pod.status_code == 403
    assert "Only an administrator may point an account at credentials the worker holds" in to_file.content.decode()
    account.refresh_from_db()
    assert account.has_kubeconfig and not account.kubeconfig_file and not account.in_cluster


# --- What an account may touch ------------------------------------------------------------------


def refusal(check, account, value) -> str | None:
    try:
        check(account, value, pointer="/manifests/0/metadata/namespace")
    except InvalidDocument as error:
        [problem] = error.problems
        assert problem.pointer == "/manifests/0/metadata/namespace"
        return problem.message
    return None


def test_an_account_touches_only_its_namespaces_and_never_its_omitted_ones():
    listed = KubernetesAccount(name="k8s", namespaces=["shop", "shop-test"])
    omitting = KubernetesAccount(name="k8s", omit_namespaces=["kube-system"])
    anything = KubernetesAccount(name="k8s")

    assert refusal(check_namespace, listed, "shop") is None
    assert refusal(check_namespace, listed, "kube-system") == (
        "account k8s may not touch namespace 'kube-system'; its namespaces: shop, shop-test")
    assert refusal(check_namespace, listed, "Shop") is not None  # namespaces are case-sensitive names
    assert refusal(check_namespace, omitting, "shop") is None
    assert refusal(check_namespace, omitting, "kube-system") == (
        "account k8s never touches namespace 'kube-system' (omitNamespaces)")
    assert refusal(check_namespace, anything, "anything") is None


def test_an_account_touches_only_its_kinds_and_never_its_omitted_ones_whatever_their_case():
    listed = KubernetesAccount(name="k8s", kinds=["deployment", "Service"])
    omitting = KubernetesAccount(name="k8s", omit_kinds=["Secret"])

    assert [refusal(check_kind, listed, kind) for kind in ("Deployment", "deployment", "service", "SERVICE")] == [
        None] * 4
    assert refusal(check_kind, listed, "ConfigMap") == (
        "account k8s may not touch kind 'ConfigMap'; its kinds: deployment, Service")
    assert refusal(check_kind, omitting, "secret") == "account k8s never touches kind 'secret' (omitKinds)"
    assert refusal(check_kind, omitting, "Deployment") is None


# --- API clients ----------------------------------------------------------------------------------


def test_a_client_from_contents_says_clearly_that_the_api_server_does_not_answer():
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": KUBECONFIG, "context": "local"},
                                            actor="ops")
    default_before = kubernetes_client.Configuration.get_default_copy()

    with api_client(account) as client, pytest.raises(KubernetesUnreachable) as unreachable:
        assert client.configuration.host == "https://127.0.0.1:1"
        assert client.configuration.api_key == {"BearerToken": f"Bearer {TOKEN}"}
        kubernetes_client.CoreV1Api(client).list_namespace()

    assert str(unreachable.value) == ("Kubernetes account 'k8s': the API server at https://127.0.0.1:1 did not "
                                      "answer: [Errno 111] Connection refused")
    default_after = kubernetes_client.Configuration.get_default_copy()
    assert (default_after.host, default_after.api_key) == (default_before.host, default_before.api_key)


def test_a_client_from_a_file_uses_its_context_and_reads_paths_relative_to_the_file(tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    text = KUBECONFIG.replace("insecure-skip-tls-verify: true}}\n- {name: other",
                              "certificate-authority: ca.pem}}\n- {name: other")
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigFile": kubeconfig_file(tmp_path, text),
                                             "context": "local"}, actor="ops")
    current, _ = do_save_kubernetes_account({"name": "current", "kubeconfigFile": kubeconfig_file(tmp_path, text)},
                                            actor="ops")

    with api_client(account) as local, api_client(current) as other:
        assert (local.configuration.host, local.configuration.ssl_ca_cert) == ("https://127.0.0.1:1",
                                                                               str(tmp_path / "ca.pem"))
        assert other.configuration.host == "https://127.0.0.1:2"


def test_inline_certificates_live_in_a_private_directory_only_while_the_client_is_open():
    text = KUBECONFIG.replace("insecure-skip-tls-verify: true", "certificate-authority-data: LS0tLS1CRUdJTi0tLS0tCg==")
    account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": text}, actor="ops")

    with api_client(account) as client:
        authority = client.configuration.ssl_ca_cert
        assert open(authority).read() == "-----BEGIN-----\n"
    with api_client(account) as again:
        assert open(again.configuration.ssl_ca_cert).read() == "-----BEGIN-----\n"

    assert "/cdp-kubeconfig-" in authority
    assert not os.path.exists(authority) and not os.path.exists(again.configuration.ssl_ca_cert)
    # Nor does the library remember the certificate's contents once the client is closed.
    assert not [name for name in kube_config._temp_files.values() if "/cdp-kubeconfig-" in name]


def test_a_client_whose_file_is_gone_or_whose_pod_has_no_service_account_says_so(tmp_path, monkeypatch):
    gone = KubernetesAccount.objects.create(name="gone", kubeconfig_file=str(tmp_path / "missing"))
    pod = KubernetesAccount.objects.create(name="pod", in_cluster=True)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    with pytest.raises(KubernetesUnreachable) as no_file, api_client(gone):
        pass
    with pytest.raises(KubernetesUnreachable) as no_pod, api_client(pod):
        pass

    assert str(no_file.value) == (f"Kubernetes account 'gone': its kubeconfig file {tmp_path / 'missing'} cannot "
                                  "be used: cannot be read: No such file or directory")
    assert str(no_pod.value) == ("Kubernetes account 'pod': the worker pod's service account cannot be used: "
                                 "Service host/port is not set.")


def test_a_client_in_the_pod_uses_its_service_account_and_leaves_the_default_configuration_alone(tmp_path,
                                                                                                  monkeypatch):
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "1")
    account, _ = do_save_kubernetes_account({"name": "pod", "serviceAccount": True}, actor="ops")

    with api_client(account) as client:
        assert (client.configuration.host, client.configuration.api_key) == (
            "https://127.0.0.1:1", {"BearerToken": "bearer pod-token"})

    assert "BearerToken" not in kubernetes_client.Configuration.get_default_copy().api_key


def test_a_request_to_an_api_server_that_never_answers_ends_within_the_bound(monkeypatch):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever reads or writes
        port = silent.getsockname()[1]
        text = KUBECONFIG.replace("https://127.0.0.1:1", f"http://127.0.0.1:{port}")
        account, _ = do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": text, "context": "local"},
                                                actor="ops")
        monkeypatch.setattr(kube, "REQUEST_TIMEOUT_SECONDS", (1.0, 0.5))
        started = time.monotonic()

        with api_client(account) as client, pytest.raises(KubernetesUnreachable) as unreachable:
            kubernetes_client.CoreV1Api(client).list_namespace()

    assert time.monotonic() - started < 5
    assert str(unreachable.value) == (f"Kubernetes account 'k8s': the API server at http://127.0.0.1:{port} did not "
                                      "answer: timed out")


# --- A real API server (tests/deployments/kubecluster.py) -------------------------------------------


def test_clients_from_contents_and_from_a_file_with_its_context_talk_to_a_real_api_server(kube_cluster):
    context = yaml.safe_load(kube_cluster.kubeconfig)["current-context"]
    inline, _ = do_save_kubernetes_account({"name": "inline", "kubeconfigContents": kube_cluster.kubeconfig},
                                           actor="ops")
    from_file, _ = do_save_kubernetes_account({"name": "file", "kubeconfigFile": str(kube_cluster.kubeconfig_path),
                                               "context": context}, actor="ops")

    for account in (inline, from_file):
        with api_client(account) as client:
            namespaces = {item.metadata.name for item in kubernetes_client.CoreV1Api(client).list_namespace().items}
        assert {"default", "kube-system"} <= namespaces, account.name


def test_a_token_the_api_server_refuses_is_its_answer_not_an_unreachable_cluster(kube_cluster):
    kubeconfig = yaml.safe_load(kube_cluster.kubeconfig)
    for user in kubeconfig["users"]:
        user["user"] = {"token": "not-a-token-it-knows"}
    account, _ = do_save_kubernetes_account({"name": "wrong", "kubeconfigContents": yaml.safe_dump(kubeconfig)},
                                            actor="ops")

    with api_client(account) as client, pytest.raises(ApiException) as refused:
        kubernetes_client.CoreV1Api(client).list_namespace()

    assert refused.value.status == 401
