"""An application's traffic guards (Spinnaker's ``trafficGuards: [{account, location, stack, detail}]``).

A guard names a cluster of the application on an engine account; the guard
itself is enforced in :func:`server_groups.check_traffic_guard`, whoever
acts. Adding or removing one is changing the application: it needs
``write`` on it, and is audited.
"""

from __future__ import annotations

import re

from django.db import transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import WRITE
from apps.deployments.models import DockerAccount, TrafficGuard
from apps.deployments.services.server_groups import cluster_name
from apps.pipelines.checks import check_permission
from apps.pipelines.problems import ActionRefused, InvalidDocument, Problem

NAME_PART = re.compile(r"^[A-Za-z0-9_.]{0,100}$")


def guard_cluster(application, document: dict) -> tuple[str, str]:
    """(account name, cluster) of a guard given as Spinnaker's {account, stack, detail} or {account, cluster};
    InvalidDocument naming the field otherwise."""
    problems = []
    for key in ("account", "stack", "detail", "location", "cluster"):
        value = document.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 200 or "\x00" in value):
            problems.append(Problem(f"/{key}", "must be a string of at most 200 characters"))
    if problems:
        raise InvalidDocument(problems)
    if not document.get("account"):
        raise InvalidDocument([Problem("/account", "is required")])
    stack, detail = document.get("stack") or "", document.get("detail") or ""
    for key, value in (("stack", stack), ("detail", detail)):
        if not NAME_PART.match(value) or "-" in value:
            raise InvalidDocument([Problem(f"/{key}", "may hold letters, digits, '_' and '.' only")])
    cluster = document.get("cluster") or cluster_name(application.name, stack, detail)
    if cluster != application.name and not cluster.startswith(f"{application.name}-"):
        raise InvalidDocument([Problem("/cluster", f"must be a cluster of {application.name}")])
    return document["account"], cluster


def do_add_traffic_guard(application, document: dict, *, actor: Actor | str) -> TrafficGuard:
    """Guard the cluster ``document`` names (write on the application); the guard, new or already there."""
    check_permission(actor, WRITE, application, field="application")
    account_name, cluster = guard_cluster(application, document)
    account = DockerAccount.objects.filter(name=account_name).first()
    if account is None:
        raise InvalidDocument([Problem("/account", f"there is no Docker engine account {account_name!r}")])
    with transaction.atomic():
        guard = TrafficGuard.objects.filter(account=account, cluster=cluster).select_related("application").first()
        if guard is not None and guard.application_id != application.pk:
            raise ActionRefused(f"cluster {cluster} on {account.name} is guarded by application "
                                f"{guard.application.name}")
        if guard is None:
            guard = TrafficGuard.objects.create(application=application, account=account, cluster=cluster)
            record("traffic_guard.added", actor, application=application, object_type="traffic_guard",
                   object_id=f"{account.name}/{cluster}")
    return guard


def do_remove_traffic_guard(guard: TrafficGuard, *, actor: Actor | str) -> None:
    """Remove a guard (write on its application), audited."""
    check_permission(actor, WRITE, guard.application, field="application")
    with transaction.atomic():
        record("traffic_guard.removed", actor, application=guard.application, object_type="traffic_guard",
               object_id=f"{guard.account.name}/{guard.cluster}")
        guard.delete()


def guards_of(application) -> list[dict]:
    """The application's guards in Spinnaker's shape, with the cluster each names."""
    rows = TrafficGuard.objects.filter(application=application).select_related("account").order_by(
        "account__name", "cluster")
    result = []
    for guard in rows:
        rest = guard.cluster[len(application.name) + 1:] if guard.cluster != application.name else ""
        stack, _, detail = rest.partition("-")
        result.append({"account": guard.account.name, "location": "", "stack": stack, "detail": detail,
                       "cluster": guard.cluster})
    return result
