"""Schema-driven fuzzing of the whole API: no request, valid or not, gets a server error, and the schema is true.

Schemathesis loads the OpenAPI schema the app serves at ``/api/schema/``
(drf-spectacular's) from the WSGI application, in-process, and makes each
operation a Hypothesis test (one pytest item per operation): requests that
match the schema, requests that break it on purpose, and the boundary cases of
its coverage phase. Each goes to the same WSGI application as a superuser with
an API token (or, for the two operations that issue tokens, which refuse a
token, with a signed-in session), against data seeded like the other API
tests': the ``shop`` application, its ``deliver`` pipeline with two revisions,
an execution left NOT_STARTED and one waiting at its manual judgment. Now and
then a path parameter, query parameter or body field is swapped for the name
or id of one of those objects, or for a value that once made a server error,
so the fuzzer gets past the 404s and 400s into the code behind them.

Every request runs in a savepoint that is rolled back: each case sees the same
data whatever the ones before it did (a DELETE does not starve the rest), a
database error cannot break the test's transaction, and on-commit work (the
engine's Redis jobs) goes with it, so neither workers nor Redis are needed.

No response may be a 5xx; every 4xx must have the API's one error shape; and
each status code, content type and body must be one the schema documents for
the operation. Generation is derandomized and bounded (see FUZZ_SETTINGS), so
CI runs the same cases every time; ``-m "not fuzz"`` leaves the fuzzing out.
The plain tests at the end pin the server errors fuzzing found, each fixed.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import schemathesis
from django.contrib.auth.models import Group, User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client, override_settings
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.models import ServiceAccount
from apps.accounts.services import do_create_token, do_grant
from apps.canary.models import CanaryAnalysis
from apps.canary.presets import HTTP_PRESET
from apps.canary.services import do_save_account, do_save_config
from apps.deployments.models import DockerAccount, ServerGroup, TrafficGuard
from apps.deployments.services.accounts import do_save_docker_account, do_save_registry_account
from apps.deployments.services.artifact_accounts import do_save_artifact_account
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.secrets.services import do_set_secret
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.triggers.models import InboundEvent, TriggerMatch
from cdplatform.wsgi import application

TEAM = "release-managers"
PIPELINE_ID = "0b5f9bd4-3d2f-4b84-9c1e-6a1b2c3d4e5f"
STAGES = [
    {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 60},
    {
        "refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
        "judgmentInputs": [{"value": "ship"}, {"value": "hold"}],
    },
]
PARAMETERS = [
    {"name": "env", "options": [{"value": "staging"}, {"value": "prod"}], "default": "staging"},
    {"name": "version", "default": "1.0"},
]

# Values the fuzzer may put in place of a generated one. "known_..." stands for an object each test creates
# (its id differs from test to test); the rest are names the seeded data has, or values that made server errors
# (text with a NUL, which PostgreSQL cannot store; times in offsets it refuses). Lone surrogates, the other text
# no database stores, are left to the plain tests below: Schemathesis cannot carry them through its own checks.
NUL = "nul\x00"
# A kubeconfig of a cluster nobody listens at (the accounts API never connects), and one with a worker command.
KUBECONFIG = """
clusters: [{name: fuzz, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: fuzz, user: {token: fuzz-token-1}}]
contexts: [{name: fuzz, context: {cluster: fuzz, user: fuzz}}, {name: other, context: {cluster: fuzz}}]
current-context: fuzz
"""
KUBECONFIG_WITH_EXEC = KUBECONFIG.replace("{token: fuzz-token-1}", "{exec: {command: /bin/true}}")
KNOWN_PATH = {
    "name": ["shop", "local", NUL], "username": ["deployer"], "number": ["1", "2"], "secret": ["deploy-token", NUL],
    "type": ["wait", "manualJudgment", NUL],
    "account": ["shop", NUL], "server_group": ["shop-web-v000", "shop-web-v001", NUL], "cluster": ["shop-web", NUL],
}
KNOWN_ID = {
    "/api/pipelines/": ["known_pipeline"],
    "/api/executions/": ["known_waiting", "known_judging"],
    "/api/tokens/": ["known_token"],
    "/api/trigger-events/": ["known_trigger_event"],
    "/api/canary-configs/": ["known_canary_config"],
    "/api/canary-analyses/": ["known_canary_analysis"],
}
KNOWN_QUERY = {
    "application": ["shop", NUL],
    "pipeline": ["known_pipeline"],
    "name": ["deliver", "shop"],
    "from": ["1", "2"],
    "to": ["1", "2"],
    "user": ["alice"],
    "group": [TEAM],
    "action": ["read", "write", "execute"],
    "created_after": ["2024-05-01T00:00:00+20:00", "0001-01-01T00:00:00+14:00"],
    "created_before": ["9999-12-31T23:59:59-14:00"],
    "outcome": ["started", "refused"],
}
KNOWN_FIELDS = {
    "application": ["shop"],
    "pipeline": ["deliver", "known_pipeline"],
    "name": ["deliver", "deploy-token", NUL],
    "description": [NUL],
    "value": ["tok-fuzz-1", NUL, "abc"],
    "stage": ["1", "2"],
    "decision": ["continue", "stop"],
    "input": ["ship"],
    "user": ["alice"],
    "group": [TEAM],
    "owner": [TEAM],
    "action": ["read", "write", "execute"],
    "revision": [1, 2],
    "parameters": [{"env": "prod"}, {"version": NUL}],
    "stages": [STAGES],
    "address": ["127.0.0.1:5000", NUL],
    "host": ["unix:///var/run/docker.sock", "", NUL],
    "registries": [["shop"], [NUL]],
    "password": ["registry-pass", NUL],
    "url": ["http://127.0.0.1:9090", "ftp://x", NUL],
    "bearerToken": ["prom-token", NUL],
    "kubeconfigContents": [KUBECONFIG, KUBECONFIG_WITH_EXEC, "clusters: [", "- a list", NUL],
    "kubeconfigFile": ["/nonexistent/kubeconfig", "relative/kubeconfig", NUL],
    "context": ["fuzz", "other", "missing", NUL],
    "serviceAccount": [True],
    "namespaces": [["shop", "shop-test"], [NUL], ["Not_A_Label"]],
    "omitNamespaces": [["kube-system"], [NUL]],
    "kinds": [["Deployment", "service"], [NUL]],
    "omitKinds": [["Secret"], ["not a kind"]],
    "metrics": [HTTP_PRESET["metrics"], [{"name": NUL, "query": {"type": "prometheus", "metricName": NUL}}]],
    "classifier": [HTTP_PRESET["classifier"], {"groupWeights": {NUL: 1}}],
    # Expressions that reach each part of the evaluator: a miss left as text, a Java type, a selection, a
    # helper about the execution, one refused, one over budget, a URL helper refused by the outbound policy.
    "expression": [
        "${trigger.user}", "${nope.deeper}", "${T(java.time.LocalDate).now().plusDays(1)}",
        "${execution.stages.?[status == 'RUNNING'].![name]}", "${#stage('Approve').hasSucceeded}",
        "${T(java.lang.System).exit(1)}", "${'a' * 100000000}", "${#jsonFromUrl('http://127.0.0.1:9/')}", NUL,
    ],
    "stageId": ["", "not-a-stage"],
    "capacity": [{"desired": 0}, {"desired": 2}, {"desired": 101}],
    "stack": ["web", "api", NUL], "detail": ["", "canary"],
    "type": ["github/file", "git/repo", "gitlab/file"],
    "token": ["ghp-fuzz-1", "", NUL],
    "tokenFile": ["/nonexistent/token", "relative/token", NUL],
    "usernamePasswordFile": ["/nonexistent/credentials", NUL],
    "username": ["ci", "", NUL],
}
# Tokens are issued only from a signed-in session, never with another token: these go with a session cookie.
SESSION_ONLY = {"POST /api/tokens/", "POST /api/service-accounts/{username}/tokens/"}

# Per operation: at most this many generated cases, plus the coverage phase's boundary cases (about 40 s for
# the module on 2 cores), derandomized so that CI runs the same cases every time. To dig deeper, with other
# cases for each seed: FUZZ_EXAMPLES=300 FUZZ_SEED=1 bin/test tests/api/test_schema_fuzz.py
# One operation: -k "fuzz and PUT and pipelines" (every operation's test has the same pytest node id).
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ_SEED = os.environ.get("FUZZ_SEED")
FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=not FUZZ_SEED,
    database=None,
    print_blob=False,
    # The seeded data is the test's own; each case runs in a savepoint rolled back after it (see the docstring).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)

# The schema is for the signed-in unless API_SCHEMA_PUBLIC; the fuzzer reads it as the public would then.
with override_settings(API_SCHEMA_PUBLIC=True):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


def _with_known(values, known: dict[str, list]) -> st.SearchStrategy:
    """``values`` as generated, or with some of the keys ``known`` names set to one of its values."""
    if not isinstance(values, dict):
        return st.just(values)
    keys = [key for key in values if key in known]
    if not keys:
        return st.just(values)
    chosen = st.fixed_dictionaries({}, optional={key: st.sampled_from(known[key]) for key in keys})
    return st.one_of(st.just(values), chosen.map(lambda replacements: {**values, **replacements}))


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    known = dict(KNOWN_PATH)
    for prefix, ids in KNOWN_ID.items():
        if context.operation.path.startswith(prefix):
            known["id"] = ids
    return _with_known(path_parameters, known)


@schema.hook
def flatmap_query(context, query):
    return _with_known(query, KNOWN_QUERY)


@schema.hook
def flatmap_body(context, body):
    return _with_known(body, KNOWN_FIELDS)


# --- Seeded data ---------------------------------------------------------------------------------


@pytest.fixture
def in_process(db):
    """Requests made straight to the WSGI app, inside the test's transaction.

    At each request's start and end Django closes a connection that is not in
    autocommit, as one in a test's transaction never is; Django's test client
    disconnects that handler the same way.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(in_process):
    """The objects the fuzzer's known values name, and a superuser's token and session."""
    root = User.objects.create_superuser("root")
    alice = User.objects.create_user("alice")
    team = Group.objects.create(name=TEAM)
    root.groups.add(team)
    ServiceAccount.objects.create(user=User.objects.create_user("deployer"), owner=team, description="CI")
    token_row, token = do_create_token(root, "fuzz")
    document = {"id": PIPELINE_ID, "application": "shop", "name": "deliver", "stages": STAGES,
                "parameterConfig": PARAMETERS}
    do_save_pipeline(document, user="root")
    pipeline, _ = do_save_pipeline({**document, "description": "Ships the shop"}, user="root")
    do_grant(pipeline.application, alice, "read", actor="setup")
    do_set_secret(pipeline.application, "deploy-token", "tok-fuzz-0", user="root")
    do_save_registry_account({"name": "shop", "address": "127.0.0.1:5000", "password": "pass-fuzz"}, actor="root")
    do_save_docker_account({"name": "shop", "host": "tcp://127.0.0.1:2375", "registries": ["shop"]}, actor="root")
    do_save_kubernetes_account({"name": "shop", "kubeconfigContents": KUBECONFIG, "namespaces": ["shop"]},
                               actor="root")
    # Two server groups of a guarded cluster on the (unreachable) engine: an action is refused by the guard or by
    # the engine not answering (503, documented), and never starts a container.
    engine = DockerAccount.objects.get(name="shop")
    for version in (0, 1):
        ServerGroup.objects.create(application=pipeline.application, account=engine, cluster="shop-web",
                                   name=f"shop-web-v{version:03d}", version=version, image="web:1", desired=1,
                                   enabled=version == 1, spec={"containerPort": 8080})
    TrafficGuard.objects.create(application=pipeline.application, account=engine, cluster="shop-web")
    waiting = do_start_execution(pipeline, user="root")
    do_save_account({"name": "shop", "url": "http://127.0.0.1:9090", "bearerToken": "prom-fuzz"}, actor="root")
    do_save_artifact_account({"name": "shop", "type": "github/file", "token": "ghp-fuzz"}, actor="root")
    canary_config = do_save_config(pipeline.application, HTTP_PRESET, actor="root")
    analysis = CanaryAnalysis.objects.create(stage=StageExecution.objects.get(execution=waiting, ref_id="1"),
                                             application=pipeline.application, config_name=canary_config.name)
    judging = do_start_execution(pipeline, parameters={"env": "prod"}, user="root")
    Execution.objects.filter(id=judging.id).update(status=Status.RUNNING)
    StageExecution.objects.filter(execution=judging, ref_id="1").update(status=Status.SUCCEEDED)
    StageExecution.objects.filter(execution=judging, ref_id="2").update(
        status=Status.RUNNING, context={"judgmentInputs": STAGES[1]["judgmentInputs"]}
    )
    event = InboundEvent.objects.create(source="webhook/fuzz", outcome="started", summary={"source": "fuzz"})
    matched = TriggerMatch.objects.create(event=event, application=pipeline.application, pipeline=pipeline,
                                          pipeline_name=pipeline.name, trigger_position=0, execution=waiting)
    session = Client()
    session.force_login(root)
    csrf = "fuzzcsrf" * 4  # a 32-character CSRF secret, sent as both the cookie and the header
    return {
        "objects": {"known_pipeline": str(pipeline.id), "known_waiting": str(waiting.id),
                    "known_judging": str(judging.id), "known_token": str(token_row.id),
                    "known_trigger_event": str(matched.id), "known_canary_config": str(canary_config.id),
                    "known_canary_analysis": str(analysis.id)},
        "bearer": {"Authorization": f"Bearer {token}"},
        "session": {"cookies": {"sessionid": session.cookies["sessionid"].value, "csrftoken": csrf},
                    "headers": {"X-CSRFToken": csrf}},
    }


# --- Checks --------------------------------------------------------------------------------------


def error_shape(ctx, response, case):
    """Every 4xx body is the API's one error shape: ``{"errors": [{"pointer": str, "message": str}, ...]}``."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"the {response.status_code} body is not JSON: {response.content[:200]!r}") from None
    errors = body.get("errors") if isinstance(body, dict) else None
    assert isinstance(errors, list) and errors and set(body) == {"errors"}, f"not the error shape: {body!r}"
    for error in errors:
        assert isinstance(error, dict) and set(error) == {"pointer", "message"}, f"not an error item: {error!r}"
        assert isinstance(error["pointer"], str) and isinstance(error["message"], str), f"not strings: {error!r}"
    return True


def no_server_error(ctx, response, case):
    """No 5xx, but the 503 of a server group action whose engine or cluster did not answer (the fuzz world's are
    unreachable on purpose, so that no case starts a container): documented, in the error shape."""
    unreachable = ("/server-groups/" in case.path and "did not answer" in response.text) or \
        "/manifests/" in case.path
    if response.status_code == 503 and unreachable:
        errors = json.loads(response.content)["errors"]
        assert errors and all(set(error) == {"pointer", "message"} for error in errors), errors
        return True
    return not_a_server_error(ctx, response, case)


# No 5xx; every 4xx in the one error shape; and the schema is true: each status code, content type and body of
# a response is one the schema documents for the operation.
CHECKS = [
    no_server_error, error_shape, status_code_conformance, content_type_conformance, response_schema_conformance
]


# --- The fuzz test -------------------------------------------------------------------------------


def _resolve(value, objects: dict[str, str]):
    """``value`` with each "known_..." string replaced by the id of the object it stands for."""
    if isinstance(value, str):
        return objects.get(value, value)
    if isinstance(value, dict):
        return {key: _resolve(item, objects) for key, item in value.items()}
    return value


@pytest.mark.fuzz
@schema.parametrize()
@FUZZ_SETTINGS
@(seed(int(FUZZ_SEED)) if FUZZ_SEED else lambda test: test)
def test_no_server_error(case, world):
    for container in ("path_parameters", "query", "body"):
        value = getattr(case, container)
        resolved = _resolve(value, world["objects"])
        if resolved != value:  # setting a container makes Schemathesis validate the case again
            setattr(case, container, resolved)
    headers = {name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"}
    cookies = None
    if f"{case.method.upper()} {case.path}" in SESSION_ONLY:
        cookies = world["session"]["cookies"]
        case.headers = {**headers, **world["session"]["headers"]}
    else:
        case.headers = {**headers, **world["bearer"]}
    with transaction.atomic():
        response = case.call(cookies=cookies)
        transaction.set_rollback(True)
    case.validate_response(response, checks=CHECKS)


# --- Server errors the fuzzer found --------------------------------------------------------------


@pytest.fixture
def root_client(db):
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root"))
    return client


@pytest.fixture
def deliver(db):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "parameterConfig": PARAMETERS})
    return pipeline


def post_json(client: APIClient, path: str, raw: str, method: str = "post"):
    """Send ``raw`` as the JSON body as it is (``\\u0000`` and ``\\ud800`` escapes included)."""
    return getattr(client, method)(path, data=raw, content_type="application/json")


@pytest.mark.parametrize("path", ["/api/executions/", "/api/audit-events/"])
def test_a_time_filter_with_any_utc_offset_is_no_server_error(root_client, deliver, path):
    """PostgreSQL refuses offsets past ±15:59: times are compared in UTC, and one out of range in UTC is a 400."""
    far_east = root_client.get(path, {"created_after": "2024-05-01T00:00:00+21:59"})
    too_early = root_client.get(path, {"created_before": "0001-01-01T00:00:00+14:00"})
    too_late = root_client.get(path, {"created_after": "9999-12-31T23:59:59-14:00"})

    assert far_east.status_code == 200
    assert too_early.status_code == 400
    assert too_early.json()["errors"][0]["pointer"] == "/created_before"
    assert too_late.status_code == 400
    assert too_late.json()["errors"][0]["pointer"] == "/created_after"


def test_a_time_filter_in_a_far_offset_means_the_same_moment(root_client, deliver):
    execution = do_start_execution(deliver)
    created = execution.created_at.astimezone(dt.timezone(dt.timedelta(hours=21, minutes=59)))

    since = root_client.get("/api/executions/", {"created_after": created.isoformat()})
    after = root_client.get("/api/executions/", {"created_after": (created + dt.timedelta(milliseconds=1)).isoformat()})

    assert [item["id"] for item in since.json()["results"]] == [str(execution.id)]
    assert after.json()["results"] == []


@pytest.mark.parametrize(
    ("raw", "pointer"),
    [
        ('{"application": "shop", "name": "de\\u0000liver"}', "/name"),
        ('{"application": "shop", "name": "ship", "description": "\\u0000"}', "/description"),
        ('{"application": "shop", "name": "ship", "x": {"a\\u0000": 1}}', "/x/a\x00"),
        ('{"application": "shop", "name": "ship", "x": ["\\ud800"]}', "/x/0"),
        ('{"application": "shop", "name": "ship", "k\\udfff": 1}', "/k\\udfff"),
    ],
)
def test_a_pipeline_document_with_text_no_database_stores_is_a_400(root_client, deliver, raw, pointer):
    """NUL characters (PostgreSQL stores none) and lone surrogates (not text at all) are refused where they are."""
    created = post_json(root_client, "/api/pipelines/", raw)
    replaced = post_json(root_client, f"/api/pipelines/{deliver.id}/", raw.replace('"ship"', '"deliver"'), "put")
    validated = post_json(root_client, "/api/pipelines/validate/", raw)

    assert created.status_code == 400
    assert pointer in [error["pointer"] for error in created.json()["errors"]]
    assert replaced.status_code == 400
    assert pointer in [error["pointer"] for error in replaced.json()["errors"]]
    assert validated.status_code == 200 and validated.json()["valid"] is False
    assert pointer in [error["pointer"] for error in validated.json()["errors"]]
    assert Pipeline.objects.count() == 1 and deliver.revisions.count() == 1


@pytest.mark.parametrize(
    ("parameters", "pointer"),
    [('{"version": "1.0\\u0000"}', "/parameters/version"), ('{"version": "\\ud800"}', "/parameters/version"),
     ('{"\\ud800": "x"}', "/parameters/\\ud800")],
)
def test_execution_parameters_with_text_no_database_stores_are_a_400(root_client, deliver, parameters, pointer):
    raw = f'{{"application": "shop", "pipeline": "deliver", "parameters": {parameters}}}'

    response = post_json(root_client, "/api/executions/", raw)

    assert response.status_code == 400
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
    assert not Execution.objects.exists()


def test_an_application_name_with_a_nul_has_no_permissions_to_show(root_client, deliver):
    """PostgreSQL refuses to compare text with a NUL: no application has such a name, so it is a 404."""
    assert root_client.get("/api/applications/sh%00op/permissions/").status_code == 404
    assert root_client.post("/api/applications/%00/permissions/", {}, format="json").status_code == 404
    assert root_client.delete("/api/applications/%00/permissions/").status_code == 404
