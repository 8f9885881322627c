"""Talking to the cluster of a Kubernetes account: the one place that turns an account row into an API client,
and decides which namespaces and kinds the account may touch.

:func:`api_client` yields a ``kubernetes.client.ApiClient`` of its own Configuration, built from the account's
one credential source: its kubeconfig contents (decrypted here and only here), its kubeconfig file on the
worker, or the service account of the pod the worker runs in. The library's global default configuration is
never read or written, so accounts used side by side never see each other's credentials. Certificates and keys
a kubeconfig holds inline are written (by the library) to a private temporary directory, removed when the
client closes. Every request has a bounded connect and read time (``REQUEST_TIMEOUT_SECONDS``, unless the
caller passes its own ``_request_timeout``, as a watch does); a connection that fails raises
:class:`KubernetesUnreachable`, naming the account and the server.

:func:`check_namespace` and :func:`check_kind` refuse with :class:`apps.pipelines.problems.InvalidDocument`, a
problem at the given JSON pointer into the stage (``/manifests/0/metadata/namespace``): a stage's checks add
its ``problems`` to theirs, and a stage's task fails with ``str(error)``, which reads ``pointer: message``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import urllib3
from kubernetes import client as kubernetes_client
from kubernetes import config as kubernetes_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from apps.deployments.credentials import decrypted
from apps.deployments.models import KubernetesAccount
from apps.deployments.providers.kubernetes.kubeconfig import (
    KubeconfigInvalid,
    check_context,
    parse_kubeconfig,
    read_kubeconfig_file,
    worker_references,
)
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.secrets.crypto import SecretsUnavailable

# (connect, read) seconds for one request to the API server.
REQUEST_TIMEOUT_SECONDS = (5.0, 30.0)
# Connection attempts retried after the first (urllib3 retries reads only for idempotent methods).
CONNECT_RETRIES = 1


class KubernetesUnreachable(Exception):
    """The account's cluster cannot be reached: its credentials do not load, or its API server does not answer
    (down, refused, TLS failure, timeout). A retry may help."""


class AccountApiClient(kubernetes_client.ApiClient):
    """An ApiClient whose requests are bounded in time and whose connection failures name the account."""

    def __init__(self, configuration: kubernetes_client.Configuration, *, account_name: str):
        super().__init__(configuration=configuration)
        self.account_name = account_name

    def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        try:
            return super().call_api(method, url, header_params=header_params, body=body, post_params=post_params,
                                    _request_timeout=_request_timeout or REQUEST_TIMEOUT_SECONDS)
        except urllib3.exceptions.HTTPError as error:  # refused, reset, timed out, retries exhausted
            raise KubernetesUnreachable(self._unreachable(_reason(error))) from None
        except ApiException as error:
            if error.status == 0:  # the library's way of saying the TLS handshake failed
                raise KubernetesUnreachable(self._unreachable(str(error.reason or "TLS failed"))) from None
            raise

    def _unreachable(self, reason: str) -> str:
        return (f"Kubernetes account {self.account_name!r}: the API server at {self.configuration.host} "
                f"did not answer: {reason}")


def _reason(error: urllib3.exceptions.HTTPError) -> str:
    cause = getattr(error, "reason", None) or error
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        # "...: Failed to establish a new connection: [Errno 111] Connection refused" -> the last part
        return str(cause).rsplit(": ", 1)[-1]
    if isinstance(cause, urllib3.exceptions.TimeoutError):
        return "timed out"
    return str(cause)


def _configuration(account: KubernetesAccount, directory: str) -> kubernetes_client.Configuration:
    configuration = kubernetes_client.Configuration()
    if account.in_cluster:
        kubernetes_config.load_incluster_config(client_configuration=configuration)
    elif account.kubeconfig:
        document = parse_kubeconfig(decrypted(account.kubeconfig))
        references = worker_references(document)
        if references:
            raise KubeconfigInvalid(f"reads the worker's files or runs a command on it ({', '.join(references)})")
        _load(document, account.context, base_path=directory, directory=directory, configuration=configuration)
    else:
        document = parse_kubeconfig(read_kubeconfig_file(account.kubeconfig_file))
        # Relative paths in a kubeconfig file are relative to the file, as kubectl reads them.
        _load(document, account.context, base_path=str(Path(account.kubeconfig_file).parent), directory=directory,
              configuration=configuration)
    configuration.retries = CONNECT_RETRIES
    return configuration


def _load(document: dict, context: str, *, base_path: str, directory: str,
          configuration: kubernetes_client.Configuration) -> None:
    # No config_persister: the library would otherwise write refreshed tokens back into an operator's file.
    loader = kube_config.KubeConfigLoader(config_dict=document, active_context=check_context(document, context),
                                          config_base_path=base_path, temp_file_path=directory)
    loader.load_and_set(configuration)


def _source(account: KubernetesAccount) -> str:
    if account.in_cluster:
        return "the worker pod's service account"
    return "its kubeconfig" if account.kubeconfig else f"its kubeconfig file {account.kubeconfig_file}"


def _forget_files_in(directory: str) -> None:
    # The library remembers the files it wrote, by their contents, for the life of the process; forget the ones
    # in our directory (gone now) so no certificate or key is kept in memory after the client closes.
    remembered = getattr(kube_config, "_temp_files", None)
    if isinstance(remembered, dict):
        for content, name in list(remembered.items()):
            if Path(name).parent == Path(directory):
                remembered.pop(content, None)


@contextmanager
def api_client(account: KubernetesAccount) -> Iterator[kubernetes_client.ApiClient]:
    """An API client of the account's cluster, closed on exit; KubernetesUnreachable when its credentials do not
    load, or (on a request) when the API server does not answer."""
    with tempfile.TemporaryDirectory(prefix="cdp-kubeconfig-") as directory:
        try:
            try:
                configuration = _configuration(account, directory)
            except (ValueError, ConfigException, SecretsUnavailable, OSError) as error:  # ValueError: bad base64, too
                raise KubernetesUnreachable(f"Kubernetes account {account.name!r}: {_source(account)} cannot be "
                                            f"used: {error}") from None
            client = AccountApiClient(configuration, account_name=account.name)
            try:
                yield client
            finally:
                client.close()
        finally:
            _forget_files_in(directory)


# --- What the account may touch -----------------------------------------------------------------


def check_namespace(account: KubernetesAccount, namespace: str, *, pointer: str) -> None:
    """Refuse (InvalidDocument at ``pointer``) a namespace the account may not touch: one not among its
    ``namespaces`` when it names some, or one among its ``omitNamespaces``."""
    if account.namespaces and namespace not in account.namespaces:
        raise InvalidDocument([Problem(pointer, f"account {account.name} may not touch namespace {namespace!r}; "
                                                f"its namespaces: {', '.join(account.namespaces)}")])
    if namespace in account.omit_namespaces:
        raise InvalidDocument([Problem(pointer, f"account {account.name} never touches namespace {namespace!r} "
                                                "(omitNamespaces)")])


def _folded(kinds: list[str]) -> set[str]:
    return {kind.casefold() for kind in kinds}


def check_kind(account: KubernetesAccount, kind: str, *, pointer: str) -> None:
    """Refuse (InvalidDocument at ``pointer``) a kind the account may not touch: one not among its ``kinds`` when
    it names some, or one among its ``omitKinds``. Kinds compare without case, as Spinnaker's do
    (``deployment`` is ``Deployment``)."""
    if account.kinds and kind.casefold() not in _folded(account.kinds):
        raise InvalidDocument([Problem(pointer, f"account {account.name} may not touch kind {kind!r}; "
                                                f"its kinds: {', '.join(account.kinds)}")])
    if kind.casefold() in _folded(account.omit_kinds):
        raise InvalidDocument([Problem(pointer, f"account {account.name} never touches kind {kind!r} "
                                                "(omitKinds)")])
