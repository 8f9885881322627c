"""A ``tcp://`` engine account with TLS: the platform verifies the engine's certificate against the account's CA
and shows its own client certificate, as ``dockerd --tlsverify`` requires, and deploys through it."""

from __future__ import annotations

import certifi
import pytest

from apps.deployments.providers.engines import engine_reachable
from apps.deployments.services.accounts import do_save_docker_account
from apps.deployments.services.server_groups import do_create_server_group, do_destroy, refresh
from apps.pipelines.models import Application
from tests.deployments.tls_engine import TLSEngine, ca_pem, issue, make_ca

pytestmark = pytest.mark.django_db


@pytest.fixture
def tls_engine(docker_client, tmp_path):
    """The engine behind TLS that asks for client certificates of its CA; (the listener, the CA)."""
    ca = make_ca()
    listener = TLSEngine(tmp_path, ca, issue(ca, "engine", server=True))
    yield listener, ca
    listener.close()


def tls_account(name: str, address: str, ca: str, client=None, **fields):
    document = {"name": name, "host": address, "tls": True, "tlsVerify": True, "caCert": ca, **fields}
    if client is not None:
        document.update({"clientCert": client.cert, "clientKey": client.key})
    return do_save_docker_account(document, actor="ops")[0]


def test_a_server_group_is_deployed_and_destroyed_through_an_engine_that_requires_client_certificates(
        tls_engine, engine, web_images, monkeypatch):
    listener, ca = tls_engine
    # As on many machines: the system's CAs named for requests. The account's CA must still be the one used.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    account = tls_account("secure", listener.address, ca_pem(ca), issue(ca, "cdplatform", server=False))

    assert engine_reachable(account) is None
    group = do_create_server_group(account=account, application=Application.objects.create(name="shop"),
                                   cluster="shop-secure", image=web_images["v1"], desired=1,
                                   spec={"containerPort": 8080}, load_balancers=[], created_by="ops")
    [instance] = refresh(group)
    assert instance.host_port is not None
    do_destroy(group)
    assert refresh(group) == []
    assert listener.refused == []


def test_an_engine_whose_certificate_another_ca_signed_or_a_client_without_a_certificate_is_refused(tls_engine):
    listener, ca = tls_engine
    stranger = make_ca("someone-else")

    unverified = engine_reachable(tls_account("spoofed", listener.address, ca_pem(stranger),
                                              issue(ca, "cdplatform", server=False)))
    anonymous = engine_reachable(tls_account("anonymous", listener.address, ca_pem(ca)))
    unsigned = engine_reachable(tls_account("unsigned", listener.address, ca_pem(ca),
                                            issue(stranger, "cdplatform", server=False)))

    assert unverified is not None and "CERTIFICATE_VERIFY_FAILED" in unverified
    assert anonymous is not None and unsigned is not None
    assert len(listener.refused) >= 2  # the engine side refused both clients it could not verify
