"""Who may do what, for every API endpoint and every kind of user: one table, asserted generically.

The personas, all about the application ``shop``:

- ``anonymous``: no credentials at all;
- ``charlie``: signed in, granted nothing (the outsider);
- ``bob`` reads, ``alice`` writes, ``erin`` executes;
- ``dave`` executes and is a member of ``release-managers``, the role the manual judgment stage names;
- ``ci-bot``: a service account owned by the group ``ci``, granted execute, calling with its bearer token;
- ``root``: a superuser.

A second application, ``secret``, has a pipeline and an execution only the superuser may see: no list shows
them to anyone else, and every endpoint that names one of them answers 404.

People sign in with a session (``force_login``), so every request goes through the real authenticators:
token first, then session. An anonymous request is therefore answered 401 with ``WWW-Authenticate: Bearer``,
the first authenticator's header (DRF answers 403 only when the first authenticator has no header to give).

The world is built once for the module, inside a transaction rolled back at the end; each test runs in a
savepoint of it, so one test's writes never reach another and the order of tests does not matter. No worker
runs: executions are created with do_start_execution and their rows' statuses are then set directly to the
state each action needs (a separate execution per action). The jobs they queue on commit are never sent,
since nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.test import APIClient

from apps.accounts.audit import Actor, record
from apps.accounts.models import AuditEvent, ServiceAccount
from apps.accounts.services import do_create_token, do_grant
from apps.canary.models import CanaryAnalysis
from apps.canary.presets import HTTP_PRESET
from apps.canary.services import do_save_account, do_save_config
from apps.deployments.models import ServerGroup, TrafficGuard
from apps.deployments.services.accounts import do_save_docker_account, do_save_registry_account
from apps.deployments.services.artifact_accounts import do_save_artifact_account
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.notifications.models import Delivery
from apps.notifications.services import do_create_subscription
from apps.pipelines.checks import child_start_refusal
from apps.pipelines.choices import Status
from apps.pipelines.models import Application, Execution, Pipeline, StageExecution
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.services import do_pause_execution, do_save_pipeline, do_start_execution
from apps.triggers.models import InboundEvent, TriggerMatch
from cdplatform.api.urls import urlpatterns as api_urlpatterns
from tests.scenarios import set_status

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "charlie", "bob", "alice", "erin", "dave", "ci-bot", "root")
PEOPLE = ("charlie", "bob", "alice", "erin", "dave")
JUDGES = "release-managers"
WAIT = {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 600}
JUDGMENT = {
    "refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
    "selectedStageRoles": [JUDGES],
}
STAGES = [WAIT, JUDGMENT]
# A kubeconfig of a cluster nobody listens at: the accounts API never connects.
KUBECONFIG = """
clusters: [{name: matrix, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: matrix, user: {token: matrix-token-1}}]
contexts: [{name: matrix, context: {cluster: matrix, user: matrix}}]
current-context: matrix
"""

# What each role may read, and which service accounts it sees: stated here, not asked of the code under test.
READABLE = {role: {"shop"} for role in ROLES} | {"anonymous": set(), "charlie": set(), "root": {"shop", "secret"}}
SERVICE_ACCOUNTS_SEEN = {role: set() for role in ROLES} | {"alice": {"ci-bot"}, "root": {"ci-bot", "vault-bot"}}
ACCOUNTS_SEEN = {role: set() for role in ROLES} | {"bob": {"shop"}, "alice": {"shop"}, "erin": {"shop"},
                                                  "root": {"shop", "vault"}}
# The permission flags an application shows the role that reads it.
FLAGS = {
    "bob": ["read"], "alice": ["read", "write"], "erin": ["read", "execute"], "dave": ["read", "execute"],
    "ci-bot": ["read", "execute"], "root": ["read", "write", "execute", "manage"],
}


# --- The world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An application's objects that endpoints act on: its pipeline, and an execution shaped for each action."""

    application: str
    pipeline: str
    pipeline_name: str
    executions: dict[str, str]
    # The Docker engine and registry accounts of the target (shop's: bob reads, erin deploys, alice manages).
    engine: str = ""
    registry: str = ""
    # An inbound trigger event that matched the target's pipeline (its TriggerMatch id).
    trigger_event: str = ""
    delivery: int = 0
    subscription: int = 0
    # The metrics account (bob reads, erin uses, alice manages; vault's granted to nobody), a canary config and a
    # canary analysis of the target application.
    metrics: str = ""
    canary_config: int = 0
    canary_analysis: int = 0
    # The Kubernetes account (bob reads, erin deploys, alice manages; vault's granted to nobody).
    kubernetes: str = ""
    # The artifact account (bob reads, erin uses, alice manages; vault's granted to nobody).
    artifacts: str = ""


def shaped_executions(pipeline: Pipeline) -> dict[str, str]:
    """One execution per steering action, each in a state where that action is legal; ids by action."""
    made = {name: do_start_execution(pipeline, user="setup") for name in
            ("judge", "cancel", "pause", "resume", "restart", "skip-wait", "evaluate")}
    # Waiting at the judgment, whose context names the roles, as the engine evaluates it from the definition.
    set_status(made["judge"], Status.RUNNING, **{"1": Status.SUCCEEDED, "2": Status.RUNNING})
    StageExecution.objects.filter(execution=made["judge"], ref_id="2").update(
        context={"selectedStageRoles": [JUDGES]})
    for name in ("cancel", "pause", "resume", "skip-wait"):
        set_status(made[name], Status.RUNNING, **{"1": Status.RUNNING})
    # Paused through the service function (no worker involved), so its pause is recorded as resume expects.
    do_pause_execution(made["resume"].id, user="setup")
    set_status(made["restart"], Status.TERMINAL, **{"1": Status.TERMINAL})
    return {name: str(execution.id) for name, execution in made.items()}


def build_world() -> SimpleNamespace:
    """The personas, their grants and tokens, and the objects of ``shop`` and ``secret``."""
    users = {name: User.objects.create_user(name) for name in PEOPLE}
    users["root"] = User.objects.create_superuser("root")
    deliver, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": STAGES}, user="setup")
    # A second revision, so that diff has two to compare and restore has an older one to bring back.
    deliver, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": STAGES,
                                   "description": "Ships the shop"}, user="setup")
    vault, _ = do_save_pipeline({"application": "secret", "name": "vault", "stages": STAGES}, user="setup")
    shop = deliver.application
    for application in (shop, vault.application):
        do_set_secret(application, "deploy-token", "tok-matrix-1", user="setup")

    judges, ci = Group.objects.create(name=JUDGES), Group.objects.create(name="ci")
    users["bot"] = User.objects.create_user("ci-bot")
    ServiceAccount.objects.create(user=users["bot"], owner=ci, description="Deploys from CI")
    ServiceAccount.objects.create(user=User.objects.create_user("vault-bot"),
                                  owner=Group.objects.create(name="vault-keepers"))
    users["alice"].groups.add(ci)
    users["dave"].groups.add(judges)
    for name, action in [("bob", "read"), ("alice", "write"), ("erin", "execute"), ("dave", "execute"),
                         ("bot", "execute")]:
        do_grant(shop, users[name], action, actor="setup")
    # The judges also read shop as a team: dave's rights come by two paths, and lists must still show rows once.
    do_grant(shop, judges, "read", actor="setup")
    record("service_account.created", "setup", object_type="service_account", object_id="ci-bot")
    build_accounts(users)
    build_server_groups(users)

    tokens = {name: do_create_token(user, "laptop")[0].pk for name, user in users.items() if name != "bot"}
    bot_token, bot_secret = do_create_token(users["bot"], "deploy")
    users["ci-bot"] = users.pop("bot")
    tokens["ci-bot"] = bot_token.pk
    shop_executions = shaped_executions(deliver)
    # Every action points at secret's one execution: a 404 comes before any state is looked at.
    secret_execution = str(do_start_execution(vault, user="setup").id)
    shop_event, secret_event = (trigger_event(pipeline) for pipeline in (deliver, vault))
    notified = {app.name: notification_rows(app, execution) for app, execution in (
        (shop, shop_executions["judge"]), (vault.application, secret_execution))}
    canary = {app.name: canary_rows(app, execution) for app, execution in (
        (shop, shop_executions["judge"]), (vault.application, secret_execution))}
    return SimpleNamespace(
        users=users,
        tokens=tokens,
        bot_token=bot_secret,
        shop=Target("shop", str(deliver.id), "deliver", shop_executions, "shop-engine", "shop-registry",
                    shop_event, *notified["shop"], "shop-metrics", *canary["shop"], kubernetes="shop-kubernetes",
                    artifacts="shop-artifacts"),
        secret=Target("secret", str(vault.id), "vault", dict.fromkeys(shop_executions, secret_execution),
                      "vault-engine", "vault-registry", secret_event, *notified["secret"], "vault-metrics",
                      *canary["secret"], kubernetes="vault-kubernetes", artifacts="vault-artifacts"),
    )


def trigger_event(pipeline: Pipeline) -> str:
    """An inbound webhook that matched the pipeline's trigger and was refused (as the receiver records one)."""
    event = InboundEvent.objects.create(source="webhook/matrix", outcome="refused", status_code=403,
                                        reason="the signature does not match")
    match = TriggerMatch.objects.create(event=event, application=pipeline.application, pipeline=pipeline,
                                        pipeline_name=pipeline.name, trigger_position=0, refusal=event.reason)
    return str(match.pk)


def build_accounts(users: dict) -> None:
    """shop's engine, registry and Kubernetes account (bob reads, erin deploys, alice manages), metrics and
    artifact account (erin uses) and vault's, granted to nobody."""
    for prefix in ("shop", "vault"):
        registry, _ = do_save_registry_account({"name": f"{prefix}-registry", "address": "127.0.0.1:5000",
                                                "username": "ci", "password": "registry-pass-1"}, actor="setup")
        engine, _ = do_save_docker_account({"name": f"{prefix}-engine", "host": "tcp://127.0.0.1:2375",
                                            "registries": [registry.name]}, actor="setup")
        metrics, _ = do_save_account({"name": f"{prefix}-metrics", "url": "http://127.0.0.1:9090",
                                      "bearerToken": "prom-token-1"}, actor="setup")
        kubernetes, _ = do_save_kubernetes_account({"name": f"{prefix}-kubernetes", "kubeconfigContents": KUBECONFIG,
                                                    "namespaces": [prefix]}, actor="setup")
        artifacts, _ = do_save_artifact_account({"name": f"{prefix}-artifacts", "type": "github/file",
                                                 "token": "ghp-matrix-1"}, actor="setup")
        if prefix == "shop":
            for account in (engine, registry, kubernetes):
                for name, action in [("bob", "read"), ("erin", "deploy"), ("alice", "manage")]:
                    do_grant(account, users[name], action, actor="setup")
            for name, action in [("bob", "read"), ("erin", "use"), ("alice", "manage")]:
                do_grant(metrics, users[name], action, actor="setup")
                do_grant(artifacts, users[name], action, actor="setup")


def canary_rows(application: Application, execution_id: str) -> tuple[int, int]:
    """A canary config of the application and an analysis of its execution's first stage: their ids."""
    config = do_save_config(application, HTTP_PRESET, actor="setup")
    stage = StageExecution.objects.get(execution_id=execution_id, ref_id="1")
    analysis = CanaryAnalysis.objects.create(stage=stage, application=application, config_name=config.name,
                                             config=config.document, account_name="prometheus")
    return config.pk, analysis.pk


def build_server_groups(users: dict) -> None:
    """Each application's one enabled server group, in a cluster with a traffic guard, on an engine of its own
    (shop's: erin deploys): a permitted disable is refused by the guard (409) before the engine (unreachable here)
    is asked anything."""
    for application in ("shop", "secret"):
        app = Application.objects.get(name=application)
        account, _ = do_save_docker_account({"name": f"{application}-deploys", "host": "tcp://127.0.0.1:2375"},
                                            actor="setup")
        if application == "shop":
            do_grant(account, users["erin"], "deploy", actor="setup")
        ServerGroup.objects.create(application=app, account=account, cluster=f"{application}-web",
                                   name=f"{application}-web-v000", version=0, image="web:1", desired=1, enabled=True,
                                   spec={"containerPort": 8080})
        TrafficGuard.objects.create(application=app, account=account, cluster=f"{application}-web")


def notification_rows(application: Application, execution_id: str) -> tuple[int, int]:
    """A delivery about the application's execution, and an application subscription: their ids."""
    delivery = Delivery.objects.create(
        key=f"matrix-{application.name}", event_id=1, moment="pipeline.complete", application=application,
        execution_id=execution_id, target_type="webhook", target={"type": "webhook"}, target_hint="https://x/…",
        source="pipeline")
    subscription = do_create_subscription(application, {"type": "email", "address": "ops@example.com",
                                                        "when": ["pipeline.failed"]}, user="setup")
    return delivery.pk, subscription.pk


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, built once and rolled back after the module's last test (each test has its own savepoint)."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


def client_as(world, role: str) -> APIClient:
    """A client for the role: no credentials, a session, or the service account's bearer token."""
    client = APIClient()
    if role == "ci-bot":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.bot_token}")
    elif role != "anonymous":
        client.force_login(world.users[role])
    return client


# --- The endpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, aimed at a target application's objects, with a body that is valid for it."""

    route: str
    method: str
    path: Callable[[Target], str]
    body: Callable[[Target], dict] | None = None
    prepare: Callable[[Target], object] | None = None
    # Whether the request names an object of the target application (and so is 404 to those who cannot read it).
    scoped: bool = True

    def call(self, client: APIClient, target: Target):
        if self.prepare is not None:
            self.prepare(target)
        body = self.body(target) if self.body is not None else None
        return getattr(client, self.method.lower())(self.path(target), body, format="json")


def pipeline_url(suffix: str = "") -> Callable[[Target], str]:
    return lambda target: f"/api/pipelines/{target.pipeline}/{suffix}"


def secret_url() -> Callable[[Target], str]:
    return lambda target: f"/api/applications/{target.application}/secrets/deploy-token/"


def execution_url(action: str) -> Callable[[Target], str]:
    return lambda target: f"/api/executions/{target.executions[action]}/{action}/"


def empty_the_application(target: Target) -> None:
    """An application can be deleted once it has no pipelines left."""
    Pipeline.objects.filter(application__name=target.application).delete()


def account_endpoints(kind: str, route: str, key: str, body: dict, granting: str = "deploy") -> dict:
    """The rows of one kind of account: list, detail, create, change, delete and its grants."""
    detail = lambda t: f"/api/{kind}/{getattr(t, key)}/"  # noqa: E731
    grants = lambda t: f"/api/{kind}/{getattr(t, key)}/permissions/"  # noqa: E731
    return {
        f"{kind}.list": Endpoint(f"{route}-list", "GET", lambda t: f"/api/{kind}/", scoped=False),
        f"{kind}.detail": Endpoint(f"{route}-detail", "GET", detail),
        f"{kind}.create": Endpoint(f"{route}-list", "POST", lambda t: f"/api/{kind}/",
                                   lambda t: {"name": "kiosk", **body}, scoped=False),
        f"{kind}.update": Endpoint(f"{route}-detail", "PUT", detail, lambda t: body),
        f"{kind}.delete": Endpoint(f"{route}-detail", "DELETE", detail),
        f"{kind}.permissions": Endpoint(f"{route}-permissions", "GET", grants),
        f"{kind}.grant": Endpoint(f"{route}-permissions", "POST", grants,
                                  lambda t: {"user": "charlie", "action": granting}),
        f"{kind}.revoke": Endpoint(f"{route}-permissions", "DELETE", grants,
                                   lambda t: {"user": "bob", "action": "read"}),
    }


ENDPOINTS = {
    "applications.list": Endpoint("application-list", "GET", lambda t: "/api/applications/", scoped=False),
    "applications.detail": Endpoint("application-detail", "GET", lambda t: f"/api/applications/{t.application}/"),
    "applications.create": Endpoint("application-list", "POST", lambda t: "/api/applications/",
                                    lambda t: {"name": "kiosk", "owner": "team-kiosk"}, scoped=False),
    "applications.update": Endpoint("application-detail", "PUT", lambda t: f"/api/applications/{t.application}/",
                                    lambda t: {"name": t.application, "owner": "team", "description": "Sells"}),
    "applications.delete": Endpoint("application-detail", "DELETE", lambda t: f"/api/applications/{t.application}/",
                                    prepare=empty_the_application),
    "permissions.list": Endpoint("application-permissions", "GET",
                                 lambda t: f"/api/applications/{t.application}/permissions/"),
    "permissions.grant": Endpoint("application-permissions", "POST",
                                  lambda t: f"/api/applications/{t.application}/permissions/",
                                  lambda t: {"user": "charlie", "action": "read"}),
    "permissions.revoke": Endpoint("application-permissions", "DELETE",
                                   lambda t: f"/api/applications/{t.application}/permissions/",
                                   lambda t: {"user": "bob", "action": "read"}),
    "secrets.list": Endpoint("application-secrets", "GET", lambda t: f"/api/applications/{t.application}/secrets/"),
    "secrets.set": Endpoint("application-secrets", "POST", lambda t: f"/api/applications/{t.application}/secrets/",
                            lambda t: {"name": "registry-token", "value": "tok-matrix-2"}),
    "secrets.detail": Endpoint("application-secret", "GET", secret_url()),
    "secrets.replace": Endpoint("application-secret", "PUT", secret_url(), lambda t: {"value": "tok-matrix-3"}),
    "secrets.delete": Endpoint("application-secret", "DELETE", secret_url()),
    "pipelines.list": Endpoint("pipeline-list", "GET", lambda t: "/api/pipelines/", scoped=False),
    "pipelines.detail": Endpoint("pipeline-detail", "GET", pipeline_url()),
    "pipelines.create": Endpoint("pipeline-list", "POST", lambda t: "/api/pipelines/",
                                 lambda t: {"application": t.application, "name": "hotfix", "stages": [WAIT]}),
    "pipelines.update": Endpoint("pipeline-detail", "PUT", pipeline_url(),
                                 lambda t: {"application": t.application, "name": t.pipeline_name, "id": t.pipeline,
                                            "stages": [WAIT]}),
    "pipelines.delete": Endpoint("pipeline-detail", "DELETE", pipeline_url()),
    "pipelines.validate": Endpoint("pipeline-validate", "POST", lambda t: "/api/pipelines/validate/",
                                   lambda t: {"application": t.application, "name": "draft", "stages": [WAIT]},
                                   scoped=False),
    "pipelines.revisions": Endpoint("pipeline-revisions", "GET", pipeline_url("revisions/")),
    "pipelines.revision": Endpoint("pipeline-revision", "GET", pipeline_url("revisions/1/")),
    "pipelines.diff": Endpoint("pipeline-diff", "GET", pipeline_url("diff/?from=1&to=2")),
    "pipelines.restore": Endpoint("pipeline-restore", "POST", pipeline_url("restore/"), lambda t: {"revision": 1}),
    "pipelines.export": Endpoint("pipeline-export", "GET", pipeline_url("export/")),
    "executions.list": Endpoint("execution-list", "GET", lambda t: "/api/executions/", scoped=False),
    "executions.detail": Endpoint("execution-detail", "GET", lambda t: f"/api/executions/{t.executions['judge']}/"),
    "executions.start": Endpoint("execution-list", "POST", lambda t: "/api/executions/",
                                 lambda t: {"application": t.application, "pipeline": t.pipeline}),
    "executions.cancel": Endpoint("execution-cancel", "POST", execution_url("cancel"), lambda t: {"reason": "x"}),
    "executions.pause": Endpoint("execution-pause", "POST", execution_url("pause")),
    "executions.resume": Endpoint("execution-resume", "POST", execution_url("resume")),
    "executions.restart": Endpoint("execution-restart", "POST", execution_url("restart"), lambda t: {"stage": "1"}),
    "executions.judge": Endpoint("execution-judge", "POST", execution_url("judge"),
                                 lambda t: {"stage": "2", "decision": "continue"}),
    "executions.skip-wait": Endpoint("execution-skip-wait", "POST", execution_url("skip-wait"),
                                     lambda t: {"stage": "1"}),
    "deliveries.list": Endpoint("notification-delivery-list", "GET", lambda t: "/api/notification-deliveries/",
                                scoped=False),
    "deliveries.detail": Endpoint("notification-delivery-detail", "GET",
                                  lambda t: f"/api/notification-deliveries/{t.delivery}/"),
    "subscriptions.list": Endpoint("application-notifications", "GET",
                                   lambda t: f"/api/applications/{t.application}/notifications/"),
    "subscriptions.create": Endpoint("application-notifications", "POST",
                                     lambda t: f"/api/applications/{t.application}/notifications/",
                                     lambda t: {"type": "slack", "address": "deploys", "when": ["pipeline.failed"]}),
    "subscriptions.delete": Endpoint("application-notification", "DELETE",
                                     lambda t: f"/api/applications/{t.application}/notifications/{t.subscription}/"),
    "executions.evaluate": Endpoint("execution-evaluate", "POST", execution_url("evaluate"),
                                    lambda t: {"expression": "${execution.application}"}),
    "audit-events.list": Endpoint("audit-event-list", "GET", lambda t: "/api/audit-events/", scoped=False),
    "tokens.list": Endpoint("token-list", "GET", lambda t: "/api/tokens/", scoped=False),
    "tokens.create": Endpoint("token-list", "POST", lambda t: "/api/tokens/", lambda t: {"name": "matrix"},
                              scoped=False),
    "service-accounts.list": Endpoint("service-account-list", "GET", lambda t: "/api/service-accounts/",
                                      scoped=False),
    "trigger-events.list": Endpoint("trigger-event-list", "GET", lambda t: "/api/trigger-events/", scoped=False),
    "trigger-events.detail": Endpoint("trigger-event-detail", "GET",
                                      lambda t: f"/api/trigger-events/{t.trigger_event}/"),
    "clusters.list": Endpoint("application-clusters", "GET", lambda t: f"/api/applications/{t.application}/clusters/"),
    "server-groups.action": Endpoint(
        "server-group-action", "POST",
        lambda t: f"/api/applications/{t.application}/server-groups/{t.application}-deploys/{t.application}-web-v000/"
                  "disable/"),
    "manifests.action": Endpoint(
        "manifest-action", "POST",
        lambda t: f"/api/applications/{t.application}/manifests/{t.application}-kubernetes/{t.application}/"
                  "deployment/web/scale/", lambda t: {"replicas": 2}),
    "traffic-guards.list": Endpoint("traffic-guards", "GET",
                                    lambda t: f"/api/applications/{t.application}/traffic-guards/"),
    "traffic-guards.add": Endpoint("traffic-guards", "POST",
                                   lambda t: f"/api/applications/{t.application}/traffic-guards/",
                                   lambda t: {"account": f"{t.application}-deploys", "stack": "api"}),
    "traffic-guards.remove": Endpoint(
        "traffic-guard", "DELETE", lambda t: f"/api/applications/{t.application}/traffic-guards/"
                                             f"{t.application}-deploys/{t.application}-web/"),
    **account_endpoints("docker-accounts", "docker-account", "engine", {"host": "unix:///run/docker.sock"}),
    **account_endpoints("registry-accounts", "registry-account", "registry",
                        {"address": "127.0.0.1:5001", "password": "registry-pass-2"}),
    **account_endpoints("kubernetes-accounts", "kubernetes-account", "kubernetes",
                        {"kubeconfigContents": KUBECONFIG, "namespaces": ["shop", "shop-test"]}),
    **account_endpoints("prometheus-accounts", "prometheus-account", "metrics", {"url": "http://127.0.0.1:9091"},
                        granting="use"),
    **account_endpoints("artifact-accounts", "artifact-account", "artifacts",
                        {"type": "github/file", "token": "ghp-matrix-2"}, granting="use"),
    "canary-configs.list": Endpoint("application-canary-configs", "GET",
                                    lambda t: f"/api/applications/{t.application}/canary-configs/"),
    "canary-configs.create": Endpoint("application-canary-configs", "POST",
                                      lambda t: f"/api/applications/{t.application}/canary-configs/",
                                      lambda t: {**HTTP_PRESET, "name": "matrix-canary"}),
    "canary-configs.detail": Endpoint("canary-config-detail", "GET",
                                      lambda t: f"/api/canary-configs/{t.canary_config}/"),
    "canary-configs.update": Endpoint("canary-config-detail", "PUT",
                                      lambda t: f"/api/canary-configs/{t.canary_config}/",
                                      lambda t: {**HTTP_PRESET, "description": "changed"}),
    "canary-configs.delete": Endpoint("canary-config-detail", "DELETE",
                                      lambda t: f"/api/canary-configs/{t.canary_config}/"),
    "canary-analyses.list": Endpoint("canary-analysis-list", "GET", lambda t: "/api/canary-analyses/", scoped=False),
    "canary-analyses.detail": Endpoint("canary-analysis-detail", "GET",
                                       lambda t: f"/api/canary-analyses/{t.canary_analysis}/"),
    "stage-types.list": Endpoint("stage-type-list", "GET", lambda t: "/api/stage-types/", scoped=False),
    "stage-types.detail": Endpoint("stage-type-detail", "GET", lambda t: "/api/stage-types/webhook/", scoped=False),
}

# Routes and methods of the API deliberately left out of the matrix, and why.
NOT_IN_MATRIX = {
    ("api-root", "GET"): "the router's index of links, the same for every signed-in user",
    ("application-detail", "PATCH"): "the same view and permission check as PUT",
    ("pipeline-detail", "PATCH"): "not offered: PipelineViewSet.http_method_names leaves it out (405)",
    ("token-detail", "DELETE"): "a user's own tokens, not an application's objects: tests/api/test_accounts_api.py",
    ("service-account-list", "POST"): "governed by group ownership: tests/api/test_accounts_api.py",
    ("service-account-detail", "GET"): "governed by group ownership: tests/api/test_accounts_api.py",
    ("service-account-detail", "DELETE"): "governed by group ownership: tests/api/test_accounts_api.py",
    ("service-account-tokens", "POST"): "governed by group ownership: tests/api/test_accounts_api.py",
}


# --- The table ---------------------------------------------------------------------------------

# One row per endpoint, one column per role, in the order of ROLES.
# Reads are 200 to whoever reads shop; writes 2xx to alice and root; executing 2xx to erin, dave, ci-bot and
# root (evaluating an expression against an execution is executing: it may fetch URLs), except judging,
# which needs the stage's role as well (dave; root is in every role). charlie gets 404
# for anything of shop and empty lists. Anyone signed in may create an application (and gets every right on
# it), validate a document and read the stage types; whoever reads an execution may evaluate expressions against
# it. A token cannot issue tokens (issue_token), so ci-bot's token request is 403.
# An application's secrets: their names to its readers; setting, replacing and deleting them to its writers.
# Granting and revoking needs manage, which only the owners hold (root here): not implied by write.
ROWS = {
    #                         anonymous charlie bob alice erin dave ci-bot root
    "applications.list":      (401, 200, 200, 200, 200, 200, 200, 200),
    "applications.detail":    (401, 404, 200, 200, 200, 200, 200, 200),
    "applications.create":    (401, 201, 201, 201, 201, 201, 201, 201),
    "applications.update":    (401, 404, 403, 200, 403, 403, 403, 200),
    "applications.delete":    (401, 404, 403, 204, 403, 403, 403, 204),
    "permissions.list":       (401, 404, 200, 200, 200, 200, 200, 200),
    "permissions.grant":      (401, 404, 403, 403, 403, 403, 403, 201),
    "permissions.revoke":     (401, 404, 403, 403, 403, 403, 403, 204),
    "secrets.list":           (401, 404, 200, 200, 200, 200, 200, 200),
    "secrets.set":            (401, 404, 403, 201, 403, 403, 403, 201),
    "secrets.detail":         (401, 404, 200, 200, 200, 200, 200, 200),
    "secrets.replace":        (401, 404, 403, 200, 403, 403, 403, 200),
    "secrets.delete":         (401, 404, 403, 204, 403, 403, 403, 204),
    "pipelines.list":         (401, 200, 200, 200, 200, 200, 200, 200),
    "pipelines.detail":       (401, 404, 200, 200, 200, 200, 200, 200),
    "pipelines.create":       (401, 404, 403, 201, 403, 403, 403, 201),
    "pipelines.update":       (401, 404, 403, 200, 403, 403, 403, 200),
    "pipelines.delete":       (401, 404, 403, 204, 403, 403, 403, 204),
    "pipelines.validate":     (401, 200, 200, 200, 200, 200, 200, 200),
    "pipelines.revisions":    (401, 404, 200, 200, 200, 200, 200, 200),
    "pipelines.revision":     (401, 404, 200, 200, 200, 200, 200, 200),
    "pipelines.diff":         (401, 404, 200, 200, 200, 200, 200, 200),
    "pipelines.restore":      (401, 404, 403, 200, 403, 403, 403, 200),
    "pipelines.export":       (401, 404, 200, 200, 200, 200, 200, 200),
    "executions.list":        (401, 200, 200, 200, 200, 200, 200, 200),
    "executions.detail":      (401, 404, 200, 200, 200, 200, 200, 200),
    "executions.start":       (401, 404, 403, 403, 201, 201, 201, 201),
    "executions.cancel":      (401, 404, 403, 403, 200, 200, 200, 200),
    "executions.pause":       (401, 404, 403, 403, 200, 200, 200, 200),
    "executions.resume":      (401, 404, 403, 403, 200, 200, 200, 200),
    "executions.restart":     (401, 404, 403, 403, 200, 200, 200, 200),
    "executions.judge":       (401, 404, 403, 403, 403, 200, 403, 200),
    "executions.skip-wait":   (401, 404, 403, 403, 200, 200, 200, 200),
    "deliveries.list":        (401, 200, 200, 200, 200, 200, 200, 200),
    "deliveries.detail":      (401, 404, 200, 200, 200, 200, 200, 200),
    "subscriptions.list":     (401, 404, 200, 200, 200, 200, 200, 200),
    "subscriptions.create":   (401, 404, 403, 201, 403, 403, 403, 201),
    "subscriptions.delete":   (401, 404, 403, 204, 403, 403, 403, 204),
    "executions.evaluate":    (401, 404, 403, 403, 200, 200, 200, 200),
    "audit-events.list":      (401, 200, 200, 200, 200, 200, 200, 200),
    "tokens.list":            (401, 200, 200, 200, 200, 200, 200, 200),
    "tokens.create":          (401, 201, 201, 201, 201, 201, 403, 201),
    "service-accounts.list":  (401, 200, 200, 200, 200, 200, 200, 200),
    # Inbound trigger events: to the readers of the application whose trigger they matched.
    "trigger-events.list":    (401, 200, 200, 200, 200, 200, 200, 200),
    "trigger-events.detail":  (401, 404, 200, 200, 200, 200, 200, 200),
    # Accounts are granted on their own (Fiat's accounts): bob reads shop's three, erin deploys to them, alice
    # manages them; dave and ci-bot hold nothing on them, so they are 404 to them. Only an administrator adds one.
    "clusters.list":                 (401, 404, 200, 200, 200, 200, 200, 200),
    # execute on the application and deploy on the account (only erin has both); the guard then refuses (409).
    "server-groups.action":          (401, 404, 403, 403, 409, 403, 403, 409),
    "manifests.action":              (401, 404, 403, 403, 503, 403, 403, 503),
    "traffic-guards.list":           (401, 404, 200, 200, 200, 200, 200, 200),
    "traffic-guards.add":            (401, 404, 403, 201, 403, 403, 403, 201),
    "traffic-guards.remove":         (401, 404, 403, 204, 403, 403, 403, 204),
    "docker-accounts.list":          (401, 200, 200, 200, 200, 200, 200, 200),
    "docker-accounts.detail":        (401, 404, 200, 200, 200, 404, 404, 200),
    "docker-accounts.create":        (401, 403, 403, 403, 403, 403, 403, 201),
    "docker-accounts.update":        (401, 404, 403, 200, 403, 404, 404, 200),
    "docker-accounts.delete":        (401, 404, 403, 204, 403, 404, 404, 204),
    "docker-accounts.permissions":   (401, 404, 200, 200, 200, 404, 404, 200),
    "docker-accounts.grant":         (401, 404, 403, 201, 403, 404, 404, 201),
    "docker-accounts.revoke":        (401, 404, 403, 204, 403, 404, 404, 204),
    "registry-accounts.list":        (401, 200, 200, 200, 200, 200, 200, 200),
    "registry-accounts.detail":      (401, 404, 200, 200, 200, 404, 404, 200),
    "registry-accounts.create":      (401, 403, 403, 403, 403, 403, 403, 201),
    "registry-accounts.update":      (401, 404, 403, 200, 403, 404, 404, 200),
    "registry-accounts.delete":      (401, 404, 403, 204, 403, 404, 404, 204),
    "registry-accounts.permissions": (401, 404, 200, 200, 200, 404, 404, 200),
    "registry-accounts.grant":       (401, 404, 403, 201, 403, 404, 404, 201),
    "registry-accounts.revoke":      (401, 404, 403, 204, 403, 404, 404, 204),
    "kubernetes-accounts.list":        (401, 200, 200, 200, 200, 200, 200, 200),
    "kubernetes-accounts.detail":      (401, 404, 200, 200, 200, 404, 404, 200),
    "kubernetes-accounts.create":      (401, 403, 403, 403, 403, 403, 403, 201),
    "kubernetes-accounts.update":      (401, 404, 403, 200, 403, 404, 404, 200),
    "kubernetes-accounts.delete":      (401, 404, 403, 204, 403, 404, 404, 204),
    "kubernetes-accounts.permissions": (401, 404, 200, 200, 200, 404, 404, 200),
    "kubernetes-accounts.grant":       (401, 404, 403, 201, 403, 404, 404, 201),
    "kubernetes-accounts.revoke":      (401, 404, 403, 204, 403, 404, 404, 204),
    # Metrics accounts as the other accounts (erin uses rather than deploys); canary configs and analyses as the
    # application's other objects: read to see, write to change.
    "prometheus-accounts.list":        (401, 200, 200, 200, 200, 200, 200, 200),
    "prometheus-accounts.detail":      (401, 404, 200, 200, 200, 404, 404, 200),
    "prometheus-accounts.create":      (401, 403, 403, 403, 403, 403, 403, 201),
    "prometheus-accounts.update":      (401, 404, 403, 200, 403, 404, 404, 200),
    "prometheus-accounts.delete":      (401, 404, 403, 204, 403, 404, 404, 204),
    "prometheus-accounts.permissions": (401, 404, 200, 200, 200, 404, 404, 200),
    "prometheus-accounts.grant":       (401, 404, 403, 201, 403, 404, 404, 201),
    "prometheus-accounts.revoke":      (401, 404, 403, 204, 403, 404, 404, 204),
    # Artifact accounts as metrics accounts: erin uses them, alice manages them.
    "artifact-accounts.list":        (401, 200, 200, 200, 200, 200, 200, 200),
    "artifact-accounts.detail":      (401, 404, 200, 200, 200, 404, 404, 200),
    "artifact-accounts.create":      (401, 403, 403, 403, 403, 403, 403, 201),
    "artifact-accounts.update":      (401, 404, 403, 200, 403, 404, 404, 200),
    "artifact-accounts.delete":      (401, 404, 403, 204, 403, 404, 404, 204),
    "artifact-accounts.permissions": (401, 404, 200, 200, 200, 404, 404, 200),
    "artifact-accounts.grant":       (401, 404, 403, 201, 403, 404, 404, 201),
    "artifact-accounts.revoke":      (401, 404, 403, 204, 403, 404, 404, 204),
    "canary-configs.list":     (401, 404, 200, 200, 200, 200, 200, 200),
    "canary-configs.create":   (401, 404, 403, 201, 403, 403, 403, 201),
    "canary-configs.detail":   (401, 404, 200, 200, 200, 200, 200, 200),
    "canary-configs.update":   (401, 404, 403, 200, 403, 403, 403, 200),
    "canary-configs.delete":   (401, 404, 403, 204, 403, 403, 403, 204),
    "canary-analyses.list":    (401, 200, 200, 200, 200, 200, 200, 200),
    "canary-analyses.detail":  (401, 404, 200, 200, 200, 200, 200, 200),
    "stage-types.list":       (401, 200, 200, 200, 200, 200, 200, 200),
    "stage-types.detail":     (401, 200, 200, 200, 200, 200, 200, 200),
}
EXPECTED = {(endpoint, role): code for endpoint, codes in ROWS.items() for role, code in zip(ROLES, codes, strict=True)}

# Cases where the code disagrees with the table: the test shows the bug and is expected to fail until it is fixed.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def cases() -> list:
    """The table as test cases, a known bug's case marked as expected to fail."""
    return [
        pytest.param(endpoint, role, status, id=f"{endpoint}-{role}", marks=[
            pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[endpoint, role])
        ] if (endpoint, role) in KNOWN_BUGS else [])
        for (endpoint, role), status in EXPECTED.items()
    ]


def api_routes() -> set[tuple[str, str]]:
    """Every (route name, method) the API serves, OPTIONS and HEAD aside."""
    routes = set()
    for pattern in api_urlpatterns:
        actions = getattr(pattern.callback, "actions", None)
        if actions is None:
            view = pattern.callback.view_class
            actions = {method: method for method in view.http_method_names if hasattr(view, method)}
        routes |= {(pattern.name, method.upper()) for method in actions if method not in ("options", "head")}
    return routes


def test_the_table_covers_every_route_of_the_api_and_every_role():
    covered = {(endpoint.route, endpoint.method) for endpoint in ENDPOINTS.values()}

    assert set(ROWS) == set(ENDPOINTS)
    assert covered | set(NOT_IN_MATRIX) == api_routes(), "a new endpoint needs a row in ROWS (or a reason to skip)"
    assert not covered & set(NOT_IN_MATRIX)
    assert len(EXPECTED) == len(ENDPOINTS) * len(ROLES)


@pytest.mark.parametrize("endpoint, role, status", cases())
def test_each_role_gets_the_status_the_table_states(world, endpoint, role, status):
    events = AuditEvent.objects.count()

    response = ENDPOINTS[endpoint].call(client_as(world, role), world.shop)

    body = response.content.decode()[:500]
    assert response.status_code == status, f"{endpoint} as {role}: {response.status_code} {body}"
    if status >= 400:
        assert response.json()["errors"], "every refusal has the one error shape"
        assert AuditEvent.objects.count() == events, "a refused request records nothing"
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


SCOPED = [name for name, endpoint in ENDPOINTS.items() if endpoint.scoped]


@pytest.mark.parametrize("role", [role for role in ROLES if role not in ("anonymous", "root")])
@pytest.mark.parametrize("endpoint", SCOPED)
def test_nobody_but_the_superuser_reaches_the_secret_application(world, endpoint, role):
    events = AuditEvent.objects.count()

    response = ENDPOINTS[endpoint].call(client_as(world, role), world.secret)

    assert response.status_code == 404, f"{endpoint} as {role}: {response.content.decode()[:500]}"
    assert AuditEvent.objects.count() == events


# --- Lists never leak --------------------------------------------------------------------------


def visible(world, role: str) -> dict[str, set]:
    """Per list endpoint, the keys of the items the role must see: exactly those, each once."""
    apps = READABLE[role]
    events = AuditEvent.objects.all() if role == "root" else AuditEvent.objects.filter(application__name__in=apps)
    return {
        "/api/applications/": set(Application.objects.filter(name__in=apps).values_list("name", flat=True)),
        "/api/pipelines/": {str(pk) for pk in Pipeline.objects.filter(application__name__in=apps)
                            .values_list("pk", flat=True)},
        "/api/executions/": {str(pk) for pk in Execution.objects.filter(application__name__in=apps)
                             .values_list("pk", flat=True)},
        "/api/audit-events/": set(events.values_list("pk", flat=True)),
        "/api/notification-deliveries/": set(Delivery.objects.filter(application__name__in=apps)
                                             .values_list("pk", flat=True)),
        "/api/tokens/": {world.tokens[role]},
        "/api/service-accounts/": SERVICE_ACCOUNTS_SEEN[role],
        # root also sees the zero-configuration engine account ``local``, and both server groups' engines.
        "/api/docker-accounts/": {f"{name}-engine" for name in ACCOUNTS_SEEN[role]} | (
            {"local", "shop-deploys", "secret-deploys"} if role == "root" else set()) | (
            {"shop-deploys"} if role == "erin" else set()),
        "/api/registry-accounts/": {f"{name}-registry" for name in ACCOUNTS_SEEN[role]},
        "/api/kubernetes-accounts/": {f"{name}-kubernetes" for name in ACCOUNTS_SEEN[role]},
        "/api/prometheus-accounts/": {f"{name}-metrics" for name in ACCOUNTS_SEEN[role]},
        "/api/artifact-accounts/": {f"{name}-artifacts" for name in ACCOUNTS_SEEN[role]},
        "/api/canary-analyses/": set(CanaryAnalysis.objects.filter(application__name__in=apps)
                                     .values_list("pk", flat=True)),
        "/api/trigger-events/": set(TriggerMatch.objects.filter(application__name__in=apps)
                                    .values_list("pk", flat=True)),
    }


def hidden(world, role: str) -> dict[str, set]:
    """Per list endpoint, the keys of items that exist but the role must not see (secret's, other people's)."""
    everything = visible(world, "root") | {"/api/tokens/": set(world.tokens.values())}
    mine = visible(world, role)
    return {path: everything[path] - mine[path] for path in LIST_KEYS}


LIST_KEYS = {
    "/api/applications/": "name", "/api/pipelines/": "id", "/api/executions/": "id", "/api/audit-events/": "id",
    "/api/tokens/": "id", "/api/service-accounts/": "username", "/api/docker-accounts/": "name",
    "/api/registry-accounts/": "name", "/api/kubernetes-accounts/": "name", "/api/trigger-events/": "id",
    "/api/notification-deliveries/": "id",
    "/api/prometheus-accounts/": "name", "/api/canary-analyses/": "id", "/api/artifact-accounts/": "name",
}


def every_page(client: APIClient, path: str, key: str) -> list:
    """The keys of all items of a list, following its cursor two items at a time."""
    keys, url = [], f"{path}?page_size=2"
    for _ in range(100):
        response = client.get(url)
        assert response.status_code == 200, response.content
        keys += [item[key] for item in response.json()["results"]]
        url = response.json()["next"]
        if url is None:
            return keys
    raise AssertionError(f"{path} did not end within 100 pages")


@pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
@pytest.mark.parametrize("path", list(LIST_KEYS))
def test_lists_show_exactly_what_the_role_may_see_each_item_once(world, path, role):
    expected, forbidden = visible(world, role)[path], hidden(world, role)[path]

    listed = every_page(client_as(world, role), path, LIST_KEYS[path])

    assert not set(listed) & forbidden, f"{path} shows {role} what {role} may not see"
    assert len(listed) == len(expected), f"{path} as {role} lists {len(listed)} items, not {len(expected)}"
    assert set(listed) == expected


@pytest.mark.parametrize("role", [role for role in ROLES if role not in ("anonymous", "root")])
def test_every_list_has_something_to_hide_from_each_role(world, role):
    hidden_now = hidden(world, role)

    assert all(hidden_now.values()), {path: keys for path, keys in hidden_now.items() if not keys}
    assert "secret" in hidden_now["/api/applications/"]
    assert AuditEvent.objects.filter(application__isnull=True, pk__in=hidden_now["/api/audit-events/"]).exists()


@pytest.mark.parametrize("role", list(FLAGS))
def test_an_application_shows_the_role_its_own_permissions(world, role):
    client = client_as(world, role)

    detail = client.get("/api/applications/shop/").json()
    [listed] = [item for item in client.get("/api/applications/").json()["results"] if item["name"] == "shop"]

    assert detail["permissions"] == listed["permissions"] == FLAGS[role]


# --- Whom an execution acts as: restart, resume, a deleted identity -----------------------------

# Who restarts or resumes shop's execution (all may: they execute in shop), and whether the execution may then
# start a child pipeline of ``secret``: it acts as the one who asked, so only root's may. The executions were
# started by an operator ("setup"), who may start anything: the restart or resume must not keep that.
CHILD_OF_SECRET = {"erin": False, "dave": False, "ci-bot": False, "root": True}


@pytest.mark.parametrize("action", ["restart", "resume"])
@pytest.mark.parametrize("role", list(CHILD_OF_SECRET))
def test_a_restarted_or_resumed_execution_acts_as_whoever_asked(world, action, role):
    body = {"stage": "1"} if action == "restart" else None

    response = client_as(world, role).post(execution_url(action)(world.shop), body, format="json")

    assert response.status_code == 200, response.content.decode()[:500]
    execution = Execution.objects.get(id=world.shop.executions[action])
    assert (execution.run_as, execution.run_as_system) == (world.users[role], False)
    assert response.json()["authentication"] == {"user": "setup", "runAs": role}
    assert AuditEvent.objects.filter(action=f"{'stage.restarted' if action == 'restart' else 'execution.resumed'}",
                                     object_id=str(execution.id)).get().actor == role
    vault, deliver = Pipeline.objects.get(name="vault"), Pipeline.objects.get(name="deliver")
    assert child_start_refusal(execution, deliver) is None
    refusal = child_start_refusal(execution, vault)
    assert (refusal is None) == CHILD_OF_SECRET[role], refusal


@pytest.mark.parametrize("gone", ["deleted", "deactivated"])
def test_an_execution_whose_identity_is_gone_may_start_nothing(world, gone):
    erin = User.objects.get(pk=world.users["erin"].pk)  # a copy: deleting it must not touch the world's
    execution = do_start_execution(Pipeline.objects.get(name="deliver"), user=Actor(username="erin", user=erin))
    if gone == "deleted":
        erin.delete()
    else:
        User.objects.filter(pk=erin.pk).update(is_active=False)
    execution.refresh_from_db()

    reason = "no longer exists" if gone == "deleted" else "is inactive"
    assert child_start_refusal(execution, Pipeline.objects.get(name="deliver")) == \
        f"erin who started this execution {reason}"
