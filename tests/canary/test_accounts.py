"""Prometheus metrics accounts: administrators add them, credentials never come out, queries pass the URL policy."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.canary.models import PrometheusAccount
from apps.canary.prometheus import MAX_POINTS, QueryFailed, account_named, query_range
from apps.deployments.credentials import decrypted
from apps.deployments.services.account_files import load_accounts
from apps.pipelines.problems import InvalidDocument
from tests.scenarios import client_for, pointers

pytestmark = pytest.mark.django_db
URL = "/api/prometheus-accounts/"


@pytest.fixture
def fake_prometheus():
    """A loopback HTTP server answering /api/v1/query_range as Prometheus does, recording each request."""
    seen: list[dict] = []
    answer = {"body": {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[100, "0.5"], [101, "NaN"], [102, "1"]]}]}}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({"path": urlsplit(self.path).path, "query": parse_qs(urlsplit(self.path).query),
                         "authorization": self.headers.get("Authorization")})
            body = json.dumps(answer["body"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, answer
    server.shutdown()


def test_an_administrator_adds_an_account_whose_credentials_never_come_out(people):
    root, alice = client_for(people["root"]), client_for(people["alice"])

    refused = alice.post(URL, {"name": "metrics", "url": "http://127.0.0.1:9090"}, format="json")
    created = root.post(URL, {"name": "metrics", "url": "http://127.0.0.1:9090", "bearerToken": "tok-prom-1"},
                        format="json")
    detail = root.get(f"{URL}metrics/")

    assert refused.status_code == 403 and created.status_code == 201
    assert detail.json()["hasCredentials"] is True and b"tok-prom-1" not in detail.content + created.content
    assert decrypted(PrometheusAccount.objects.get().bearer_token) == "tok-prom-1"
    bad = root.post(URL, {"name": "Bad Name", "url": "ftp://x"}, format="json")
    assert bad.status_code == 400 and set(pointers(bad)) == {"/name", "/url"}


def test_an_accounts_file_lists_prometheus_accounts_beside_engines():
    report = load_accounts("prometheus:\n  - {name: metrics, url: 'http://127.0.0.1:9090', username: u, password: p}\n",
                           actor="test")
    assert report.created == ["prometheus/metrics"]
    with pytest.raises(InvalidDocument) as refused:
        load_accounts("prometheus:\n  - {name: metrics, url: 42}\n", actor="test")
    assert [problem.pointer for problem in refused.value.problems] == ["/prometheus/0/url"]


def test_prometheus_url_gives_the_default_account_and_a_stored_one_takes_its_place(settings):
    settings.PROMETHEUS_URL = "http://127.0.0.1:9999"
    assert account_named("prometheus").url == "http://127.0.0.1:9999" and account_named("").pk is None
    PrometheusAccount.objects.create(name="prometheus", url="http://127.0.0.1:9000")
    assert account_named(None).url == "http://127.0.0.1:9000"
    settings.PROMETHEUS_URL = ""
    assert account_named("other") is None


def test_a_query_is_refused_by_the_url_policy_before_anything_is_sent(settings, fake_prometheus):
    url, seen, _ = fake_prometheus
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = []
    with pytest.raises(QueryFailed, match="loopback"):
        query_range(PrometheusAccount(name="p", url=url), "up", start=100, end=102, step=1)
    assert seen == []


def test_a_query_sends_its_credentials_and_reads_one_series(settings, fake_prometheus):
    url, seen, answer = fake_prometheus
    settings.OUTBOUND_URL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    account, _ = PrometheusAccount.objects.get_or_create(name="p", url=url)
    from apps.canary.services import do_save_account

    do_save_account({"name": "p", "username": "reader", "password": "s3cret"}, actor="test")
    account.refresh_from_db()

    series = query_range(account, 'sum(up{server_group="a"})', start=100, end=100 + 10 * MAX_POINTS, step=1)

    assert series.timestamps == [100, 101, 102] and series.values[0] == 0.5 and series.values[2] == 1
    assert seen[0]["path"] == "/api/v1/query_range" and seen[0]["query"]["step"] == ["10"]
    assert seen[0]["authorization"] == "Basic " + base64.b64encode(b"reader:s3cret").decode()
    answer["body"]["data"]["result"] *= 2
    with pytest.raises(QueryFailed, match="gives 2 series"):
        query_range(account, "up", start=100, end=102, step=1)
    answer["body"] = {"status": "error", "error": "parse error"}
    with pytest.raises(QueryFailed, match="parse error"):
        query_range(account, "up(", start=100, end=102, step=1)
