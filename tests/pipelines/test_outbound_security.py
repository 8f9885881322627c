"""What a pipeline author cannot do through a webhook: reach the platform's own network, send the
stage's custom headers to a host they did not name, or have a call repeated without the receiver
being able to tell.

Every request goes to hook servers on 127.0.0.1, which the tests allow explicitly
(``tests/hookserver.py``); the addresses the policy refuses are never connected to.
"""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest
from django.db import connection
from django.test import override_settings

from apps.pipelines import outbound
from apps.pipelines.choices import Status
from apps.pipelines.models import StageExecution
from apps.pipelines.services import do_restart_stage, do_start_execution
from apps.pipelines.stages.webhook import idempotency_key
from tests.conftest import wait_for_execution
from tests.hookserver import Reply, serving
from tests.pipelines.test_webhook import FAST, error_of, hook, run, save

# --- Item: the default policy refuses the platform's own network --------------------------------

# Each reached something inside the network under the old default (and "localhost" the platform's own API).
INSIDE = [
    "http://127.0.0.1:8000/api/",
    "http://localhost:8000/api/",
    "http://0.0.0.0:8000/api/",
    "http://2130706433:8000/api/",  # 127.0.0.1 as one number
    "http://127.1:8000/api/",  # 127.0.0.1 with the middle parts left out
    "http://0x7f000001:8000/api/",  # 127.0.0.1 in hexadecimal
    "http://0177.0.0.1:8000/api/",  # 127.0.0.1 in octal
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://172.31.255.255/",
    "http://192.168.1.10/",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud's metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS's IPv6 metadata
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 to 169.254.169.254
    "http://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64
    "http://[::1]:8000/",
    "http://[::]:8000/",
    "http://[::ffff:127.0.0.1]:8000/",  # IPv4-mapped
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[fe80::1]/",
    "http://[fc00::1]/",
]


@pytest.mark.parametrize("url", INSIDE)
def test_the_default_policy_refuses_every_address_inside_the_network(url, settings):
    assert settings.OUTBOUND_URL_ALLOWED_NETWORKS == []  # the default: nothing opted in

    with pytest.raises(outbound.OutboundRefused, match="OUTBOUND_URL_ALLOWED_NETWORKS"):
        outbound.check_url(url)


def test_odd_forms_of_an_address_are_read_as_the_connection_would_read_them():
    assert {str(outbound.literal_ip(host)) for host in ("2130706433", "127.1", "0x7f000001", "0177.0.0.1")} == {
        "127.0.0.1"
    }
    assert outbound.literal_ip("0") == outbound.literal_ip("0.0.0.0")
    assert outbound.literal_ip("hooks.example.com") is None
    assert outbound.literal_ip("1.2.3.4 x") is None  # the resolver would read 1.2.3.4; the host is a name


def test_public_addresses_stay_allowed():
    assert outbound.address_refusal(outbound.literal_ip("8.8.8.8")) is None
    assert outbound.address_refusal(outbound.literal_ip("2606:4700::1111")) is None
    # NAT64 to a public address is refused too, until an operator opts in to the NAT64 network.
    assert "NAT64 64:ff9b::/96" in outbound.address_refusal(outbound.literal_ip("64:ff9b::808:808"))


def test_an_operator_opts_in_to_a_network_and_a_denied_network_still_wins():
    with override_settings(OUTBOUND_URL_ALLOWED_NETWORKS=["10.20.0.0/16", "64:ff9b::/96"]):
        outbound.check_url("http://10.20.1.2/")
        outbound.check_url("http://[64:ff9b::808:808]/")  # NAT64 to a public address
        with pytest.raises(outbound.OutboundRefused, match="embeds IPv4 169.254.169.254, which is link-local"):
            outbound.check_url("http://[64:ff9b::a9fe:a9fe]/")  # NAT64 allowed, what it leads to is not
        with pytest.raises(outbound.OutboundRefused, match="private 10.0.0.0/8"):
            outbound.check_url("http://10.21.0.1/")
        with override_settings(OUTBOUND_URL_DENIED_NETWORKS=["10.20.5.0/24"]):
            with pytest.raises(outbound.OutboundRefused, match="OUTBOUND_URL_DENIED_NETWORKS"):
                outbound.check_url("http://10.20.5.9/")
    with override_settings(OUTBOUND_URL_DENIED_NETWORKS=["8.8.8.0/24"]):
        with pytest.raises(outbound.OutboundRefused, match="denied network 8.8.8.0/24"):
            outbound.check_url("http://8.8.8.8/")


def test_a_webhook_to_the_platforms_own_host_is_refused_by_default(workers, hook_server):
    # The platform's own API, as a pipeline author would aim at it: loopback, in its odd forms too.
    workers.start(1, **FAST, OUTBOUND_URL_ALLOWED_NETWORKS="")
    hook_server.script("/api/applications/", Reply(200, {"secret": "internal"}))
    port = hook_server.httpd.server_address[1]
    urls = [f"http://{host}:{port}/api/applications/" for host in ("127.0.0.1", "localhost", "2130706433", "127.1")]

    executions = [run([hook(url, method="GET")]) for url in urls]

    for url, (execution, by_ref) in zip(urls, executions, strict=True):
        assert execution.status == Status.TERMINAL
        error = error_of(by_ref["1"])
        assert url in error and "loopback" in error and "OUTBOUND_URL_ALLOWED_NETWORKS" in error
    assert hook_server.calls() == []


def test_a_redirect_from_an_allowed_host_into_the_network_is_refused(hook_server):
    # The hook server's own address is allowed (127.0.0.1/32); another loopback address is not.
    port = hook_server.httpd.server_address[1]
    hook_server.script("/go", Reply(302, None, {"Location": f"http://0x7f000002:{port}/admin/login/"}))

    with pytest.raises(outbound.OutboundRefused, match="127.0.0.2 .* is loopback 127.0.0.0/8"):
        outbound.request("GET", hook_server.url("/go"), timeout=5)

    assert [call.path for call in hook_server.calls()] == ["/go"]


def test_the_connected_address_is_checked_with_the_default_policy(hook_server, monkeypatch):
    # As if the name had resolved to a public address when checked, then to loopback (DNS rebinding).
    monkeypatch.setattr(outbound, "check_url", lambda url: None)
    hook_server.script("/hook", Reply(200, {}))

    with override_settings(OUTBOUND_URL_ALLOWED_NETWORKS=[]):
        with pytest.raises(outbound.OutboundRefused, match="connected address 127.0.0.1 is loopback"):
            outbound.request("POST", hook_server.url("/hook"), json_body={}, send_body=True, timeout=5)

    assert hook_server.calls() == []


# --- Item: custom headers go only to the origin the author wrote --------------------------------


@pytest.fixture
def other_server():
    """A second hook server: same address, another port, so another origin."""
    with serving() as server:
        yield server


SECRET = {"X-Token": "s3cret", "Authorization": "Bearer abc", "X-Api-Key": "k"}


@pytest.mark.parametrize("resolution", ["webhookResponse", "locationHeader"])
def test_a_status_url_on_another_origin_is_polled_without_the_custom_headers(
    workers, hook_server, other_server, resolution
):
    workers.start(1, **FAST)
    elsewhere = other_server.url("/status/1")
    hook_server.script("/deploy", Reply(202, {"statusUrl": elsewhere}, {"Location": elsewhere}))
    other_server.script("/status/1", Reply(200, {"state": "RUNNING"}), Reply(200, {"state": "DONE"}))
    stage = hook(
        hook_server.url("/deploy"),
        customHeaders=SECRET,
        waitForCompletion=True,
        statusUrlResolution=resolution,
        statusUrlJsonPath="$.statusUrl",
        statusJsonPath="$.state",
        successStatuses="DONE",
    )

    execution, by_ref = run([stage])

    assert execution.status == Status.SUCCEEDED
    [call] = hook_server.calls("/deploy")
    assert {call.headers[name.lower()] for name in SECRET} == set(SECRET.values())
    polls = other_server.calls("/status/1")
    assert len(polls) == 2
    for poll in polls:
        assert not {name.lower() for name in SECRET} & set(poll.headers)
    assert by_ref["1"].outputs["webhook"]["monitor"]["customHeadersWithheld"] is True


def test_a_status_url_on_the_same_origin_is_polled_with_the_custom_headers(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/deploy", Reply(202, {"statusUrl": hook_server.url("/status/1")}))
    hook_server.script("/status/1", Reply(200, {"state": "DONE"}))
    stage = hook(
        hook_server.url("/deploy"),
        customHeaders=SECRET,
        waitForCompletion=True,
        statusUrlResolution="webhookResponse",
        statusUrlJsonPath="$.statusUrl",
        statusJsonPath="$.state",
        successStatuses="DONE",
    )

    execution, _ = run([stage])

    assert execution.status == Status.SUCCEEDED
    [poll] = hook_server.calls("/status/1")
    assert poll.headers["x-token"] == "s3cret" and poll.headers["authorization"] == "Bearer abc"


def test_a_failed_poll_without_the_headers_says_why(workers, hook_server, other_server):
    workers.start(1, **FAST)
    hook_server.script("/deploy", Reply(202, {}, {"Location": other_server.url("/status/1")}))
    other_server.script("/status/1", Reply(401, {"error": "no token"}))
    stage = hook(
        hook_server.url("/deploy"),
        customHeaders=SECRET,
        waitForCompletion=True,
        statusUrlResolution="locationHeader",
        statusJsonPath="$.state",
    )

    execution, by_ref = run([stage])

    assert execution.status == Status.TERMINAL
    error = error_of(by_ref["1"])
    assert "returned 401" in error and "without customHeaders" in error


def test_a_redirect_to_another_origin_drops_every_custom_header(hook_server, other_server):
    hook_server.script("/go", Reply(302, None, {"Location": other_server.url("/landing")}))
    other_server.script("/landing", Reply(302, None, {"Location": hook_server.url("/back")}))
    hook_server.script("/back", Reply(200, {"ok": True}))

    response = outbound.request("GET", hook_server.url("/go"), headers=SECRET, timeout=5)

    assert response.status_code == 200
    [first] = hook_server.calls("/go")
    assert first.headers["x-api-key"] == "k"
    [landing] = other_server.calls("/landing")
    assert not {name.lower() for name in SECRET} & set(landing.headers)
    # Back on the origin the author wrote: the headers are for it.
    [back] = hook_server.calls("/back")
    assert back.headers["x-token"] == "s3cret"
    assert response.headers_withheld is False


def test_a_redirect_on_the_same_host_but_another_port_or_scheme_is_another_origin(hook_server, other_server):
    assert outbound.url_origin(hook_server.url("/")) != outbound.url_origin(other_server.url("/"))
    assert outbound.url_origin("http://hooks.example.com/") != outbound.url_origin("https://hooks.example.com/")
    assert outbound.url_origin("https://Hooks.Example.com:443/a") == outbound.url_origin("https://hooks.example.com/b")
    assert outbound.url_origin("http://127.1/") == outbound.url_origin("http://127.0.0.1:80/")


# --- Item: a repeated call carries the same idempotency key -------------------------------------


def test_every_try_of_a_call_carries_the_same_idempotency_key_and_a_restart_a_new_one(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/flaky", Reply(503), Reply(200, {"ok": True}))

    execution, by_ref = run([hook(hook_server.url("/flaky"))])

    assert execution.status == Status.SUCCEEDED
    keys = [call.headers["idempotency-key"] for call in hook_server.calls("/flaky")]
    stage = by_ref["1"]
    assert keys == [idempotency_key(stage)] * 2
    assert keys[0].startswith(f"{execution.id}:{stage.id}:")

    do_restart_stage(execution.id, "1", user="alice")
    wait_for_execution(execution.id, timeout=20)

    restarted = StageExecution.objects.get(id=stage.id)
    third = hook_server.calls("/flaky")[2]
    assert third.headers["idempotency-key"] == idempotency_key(restarted) != keys[0]


def test_an_idempotency_key_in_the_custom_headers_is_the_authors(workers, hook_server):
    workers.start(1, **FAST)
    hook_server.script("/hook", Reply(200, {}))

    run([hook(hook_server.url("/hook"), customHeaders={"idempotency-key": "mine-1"})])

    [call] = hook_server.calls("/hook")
    assert call.headers["idempotency-key"] == "mine-1"


class DatabaseOutage:
    """Closes every connection to the test database but the test's own, and refuses new ones for a while:
    what a worker sees while PostgreSQL restarts. Done from the ``postgres`` database."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.spared = cursor.fetchone()[0]
        params = connection.get_connection_params()
        params["dbname"] = "postgres"
        self.params = {key: value for key, value in params.items() if key != "cursor_factory"}
        self.ended = threading.Event()

    def _run(self, *statements) -> None:
        admin = psycopg2.connect(**self.params)
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                for statement, args in statements:
                    cursor.execute(statement, args)
        finally:
            admin.close()

    def begin(self) -> None:
        self._run(
            (f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false', None),
            (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                (self.name, self.spared),
            ),
        )
        threading.Timer(self.seconds, self.end).start()

    def end(self) -> None:
        if not self.ended.is_set():
            self._run((f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true', None))
            self.ended.set()


def test_a_call_whose_recording_meets_a_database_outage_is_recorded_not_repeated(postgresql, workers, hook_server):
    # The sweeper re-runs a lost step after a lease: 10 s here, so a repeated call would come within the test.
    workers.start(1, **FAST, ENGINE_STAGE_LEASE_SECONDS="10", ENGINE_SWEEP_INTERVAL_SECONDS="1")
    outage = DatabaseOutage(seconds=3)
    called_at = []

    def go_away():
        """The call gets through; the database goes away before the worker records the response."""
        if not called_at:
            called_at.append(time.time())
            outage.begin()

    hook_server.script("/deploy", Reply(200, {"id": "d-1"}, before=go_away))
    try:
        execution = do_start_execution(save([hook(hook_server.url("/deploy"))]), user="alice")
        # Without recording retries the stage would end only after the sweeper re-ran it, calling again.
        execution = wait_for_execution(execution.id, timeout=30)
    finally:
        outage.end()

    calls = hook_server.calls("/deploy")
    assert len(calls) == 1, [c.headers.get("idempotency-key") for c in calls]
    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    assert execution.status == Status.SUCCEEDED
    assert stage.outputs["webhook"]["body"] == {"id": "d-1"}
    assert calls[0].headers["idempotency-key"] == idempotency_key(stage)
    # Recorded once the database was back (3 s), not a lease (10 s) later.
    assert stage.end_time.timestamp() - called_at[0] < 8
