"""An application's traffic guards (Spinnaker's ``trafficGuards: [{account, location, stack, detail}]``).

A guard names a cluster of the application on a Docker engine account, or on a Kubernetes account in one
namespace (``location``; the cluster is then the workloads' moniker cluster). It is enforced whoever acts: in
:func:`server_groups.check_traffic_guard` for Docker, in :func:`kubernetes_clusters.check_traffic_guard` for
Kubernetes. Adding or removing one is changing the application: it needs ``write`` on it, and is audited.
"""

from __future__ import annotations

import re

from django.db import transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import WRITE
from apps.deployments.models import DockerAccount, KubernetesAccount, TrafficGuard
from apps.deployments.providers.kubernetes.client import check_namespace
from apps.deployments.services.kubernetes_accounts import NAMESPACE_PATTERN
from apps.deployments.services.server_groups import cluster_name
from apps.pipelines.checks import check_permission
from apps.pipelines.problems import ActionRefused, InvalidDocument, Problem

NAME_PART = re.compile(r"^[A-Za-z0-9_.]{0,100}$")
CLOUD_PROVIDERS = ("docker", "kubernetes")


def _string_problems(document: dict) -> None:
    problems = []
    for key in ("account", "stack", "detail", "location", "cluster", "cloudProvider"):
        value = document.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 200 or "\x00" in value):
            problems.append(Problem(f"/{key}", "must be a string of at most 200 characters"))
    if problems:
        raise InvalidDocument(problems)
    if not document.get("account"):
        raise InvalidDocument([Problem("/account", "is required")])


def guard_cluster(application, document: dict, *, kubernetes: bool = False) -> tuple[str, str]:
    """(account name, cluster) of a guard given as Spinnaker's {account, stack, detail} or {account, cluster};
    InvalidDocument naming the field otherwise. A Kubernetes guard's ``cluster`` is a moniker cluster, which
    need not start with the application's name (``replicaSet web``)."""
    _string_problems(document)
    stack, detail = document.get("stack") or "", document.get("detail") or ""
    for key, value in (("stack", stack), ("detail", detail)):
        if not NAME_PART.match(value) or "-" in value:
            raise InvalidDocument([Problem(f"/{key}", "may hold letters, digits, '_' and '.' only")])
    cluster = (document.get("cluster") or "").strip() or cluster_name(application.name, stack, detail)
    if not kubernetes and cluster != application.name and not cluster.startswith(f"{application.name}-"):
        raise InvalidDocument([Problem("/cluster", f"must be a cluster of {application.name}")])
    return document["account"], cluster


def guarded_account(document: dict) -> DockerAccount | KubernetesAccount:
    """The Docker engine or Kubernetes account a guard names (``cloudProvider`` settles a name both kinds use);
    InvalidDocument at /account (or /cloudProvider) otherwise."""
    name, provider = document.get("account") or "", document.get("cloudProvider") or ""
    if provider and provider not in CLOUD_PROVIDERS:
        raise InvalidDocument([Problem("/cloudProvider", f"must be one of {', '.join(CLOUD_PROVIDERS)}")])
    docker = DockerAccount.objects.filter(name=name).first() if provider != "kubernetes" else None
    kubernetes = KubernetesAccount.objects.filter(name=name).first() if provider != "docker" else None
    if docker is not None and kubernetes is not None:
        raise InvalidDocument([Problem("/account", f"{name!r} is both a Docker engine and a Kubernetes account; "
                                                   "say which with cloudProvider (docker or kubernetes)")])
    account = docker or kubernetes
    if account is None:
        kinds = {"docker": "Docker engine", "kubernetes": "Kubernetes"}.get(provider, "Docker engine or Kubernetes")
        raise InvalidDocument([Problem("/account", f"there is no {kinds} account {name!r}")])
    return account


def guard_location(account: KubernetesAccount, document: dict) -> str:
    """The namespace a Kubernetes guard names, one the account may touch; InvalidDocument at /location."""
    location = (document.get("location") or "").strip()
    if not location:
        raise InvalidDocument([Problem("/location", "is required for a Kubernetes account: the namespace")])
    if not NAMESPACE_PATTERN.match(location):
        raise InvalidDocument([Problem("/location", "must be a namespace: lowercase letters, digits and hyphens, "
                                                    "at most 63")])
    check_namespace(account, location, pointer="/location")
    return location


def do_add_traffic_guard(application, document: dict, *, actor: Actor | str) -> TrafficGuard:
    """Guard the cluster ``document`` names (write on the application); the guard, new or already there."""
    check_permission(actor, WRITE, application, field="application")
    _string_problems(document)
    account = guarded_account(document)
    kubernetes = isinstance(account, KubernetesAccount)
    _, cluster = guard_cluster(application, document, kubernetes=kubernetes)
    where: dict = {"account": account, "location": ""}
    if isinstance(account, KubernetesAccount):
        where = {"kubernetes_account": account, "location": guard_location(account, document)}
    with transaction.atomic():
        guard = TrafficGuard.objects.filter(cluster=cluster, **where).select_related("application").first()
        if guard is not None and guard.application_id != application.pk:
            place = f"{account.name}/{where['location']}" if kubernetes else account.name
            raise ActionRefused(f"cluster {cluster} on {place} is guarded by application {guard.application.name}")
        if guard is None:
            guard = TrafficGuard.objects.create(application=application, cluster=cluster, **where)
            record("traffic_guard.added", actor, application=application, object_type="traffic_guard",
                   object_id=str(guard), details=_details(guard))
    return guard


def _details(guard: TrafficGuard) -> dict:
    if guard.kubernetes_account_id is not None:
        return {"cloudProvider": "kubernetes", "account": guard.account_name, "location": guard.location,
                "cluster": guard.cluster}
    return {"cloudProvider": "docker", "account": guard.account_name, "cluster": guard.cluster}


def do_remove_traffic_guard(guard: TrafficGuard, *, actor: Actor | str) -> None:
    """Remove a guard (write on its application), audited."""
    check_permission(actor, WRITE, guard.application, field="application")
    with transaction.atomic():
        record("traffic_guard.removed", actor, application=guard.application, object_type="traffic_guard",
               object_id=str(guard), details=_details(guard))
        guard.delete()


def guard_to_remove(application, account: str, cluster: str, location: str = "") -> TrafficGuard | None:
    """The application's guard of ``cluster`` on the account named ``account`` (in namespace ``location`` for a
    Kubernetes account), or None. InvalidDocument at /location when a Kubernetes account guards that cluster
    in several namespaces and ``location`` does not say which."""
    if "\x00" in account + cluster + location:
        return None
    rows = TrafficGuard.objects.select_related("account", "kubernetes_account", "application").filter(
        application=application, cluster=cluster)
    docker = rows.filter(account__name=account).first() if not location else None
    if docker is not None:
        return docker
    kubernetes = rows.filter(kubernetes_account__name=account)
    if location:
        return kubernetes.filter(location=location).first()
    found = list(kubernetes[:2])
    if len(found) > 1:
        raise InvalidDocument([Problem("/location", f"cluster {cluster} on {account} is guarded in several "
                                                    "namespaces: name one")])
    return found[0] if found else None


def guards_of(application) -> list[dict]:
    """The application's guards in Spinnaker's shape (``location``: a Kubernetes guard's namespace, blank for a
    Docker one), with the cluster each names."""
    rows = sorted(TrafficGuard.objects.filter(application=application).select_related("account",
                                                                                      "kubernetes_account"),
                  key=lambda guard: (guard.account_name, guard.location, guard.cluster))
    result = []
    for guard in rows:
        stack = detail = ""
        if guard.cluster.startswith(f"{application.name}-"):
            stack, _, detail = guard.cluster[len(application.name) + 1:].partition("-")
        result.append({"account": guard.account_name, "location": guard.location, "stack": stack,
                       "detail": detail, "cluster": guard.cluster})
    return result
