"""Connecting to the Docker engine of an account: the one place that turns an account row into a client.

``local`` (or any account with a blank host) is the engine of DOCKER_HOST
(with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them),
or the default socket. A ``tcp://`` account with TLS gets its PEMs written to
a private temporary directory for the life of the client: the docker library
reads certificates only from files.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import docker
from django.conf import settings
from docker.errors import DockerException

from apps.deployments.credentials import decrypted
from apps.deployments.models import DockerAccount

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineUnreachable(Exception):
    """The account's engine did not answer (down, no socket, refused): a retry may help."""


def engine_address(account: DockerAccount) -> str:
    """Where the account's engine is: its host, else DOCKER_HOST, else the default socket."""
    return account.host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


class _AccountTLS(docker.tls.TLSConfig):
    """TLS with the account's own CA and client certificate, whatever the environment says.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override a session's ``verify``, which would check
    the engine against the system's CAs instead of the account's; the client therefore ignores the environment
    (its proxies too: an engine account says where the engine is)."""

    def configure_client(self, client) -> None:
        super().configure_client(client)
        client.trust_env = False


def _tls_config(account: DockerAccount, directory: Path):
    files = {}
    for name, pem in (("ca.pem", account.ca_cert), ("cert.pem", account.client_cert),
                      ("key.pem", decrypted(account.client_key))):
        if pem:
            path = directory / name
            path.write_text(pem)
            path.chmod(0o600)
            files[name] = str(path)
    client_cert = (files["cert.pem"], files["key.pem"]) if "cert.pem" in files and "key.pem" in files else None
    return _AccountTLS(client_cert=client_cert, ca_cert=files.get("ca.pem"),
                                verify=files.get("ca.pem", True) if account.tls_verify else False)


@contextmanager
def engine_client(account: DockerAccount, *, timeout: float | None = None):
    """A docker client of the account's engine, API version negotiated; EngineUnreachable if it does not answer."""
    timeout = timeout or settings.DOCKER_API_TIMEOUT_SECONDS
    with tempfile.TemporaryDirectory(prefix="cdp-engine-") as directory:
        try:
            if not account.host:
                client = docker.from_env(version="auto", timeout=int(timeout))
            else:
                tls = _tls_config(account, Path(directory)) if account.tls else False
                client = docker.DockerClient(base_url=account.host, version="auto", timeout=int(timeout), tls=tls)
        except DockerException as error:
            raise EngineUnreachable(f"Docker engine of account {account.name!r} at {engine_address(account)} "
                                    f"did not answer: {error}") from None
        try:
            yield client
        finally:
            client.close()


def engine_reachable(account: DockerAccount) -> str | None:
    """None when the account's engine answers a ping; otherwise why not, in a sentence."""
    try:
        with engine_client(account, timeout=3) as client:
            client.ping()
    except (EngineUnreachable, DockerException, OSError) as error:
        return str(error)
    return None
