"""The ``clusterSize`` precondition of ``checkPreconditions`` (Orca's): the number of live server groups of a
cluster compared with ``expected``.

``context: {credentials, regions, cluster, comparison, expected}`` —
``credentials`` is the engine account (read on it is needed), ``regions`` is
accepted for Spinnaker's shape (an engine has none), ``comparison`` one of
``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (default ``==``), ``expected``
a whole number (default 1). The account's engine must answer: a cluster is
not counted on an engine that is down.
"""

from __future__ import annotations

import operator

from apps.accounts.permissions import READ, PermissionRefused
from apps.deployments.models import LOCAL_ACCOUNT, DockerAccount
from apps.deployments.providers.engines import engine_reachable
from apps.deployments.services.accounts import local_docker_account
from apps.deployments.services.server_groups import live_groups
from apps.deployments.stages.common import is_expression
from apps.pipelines.checks import check_permission, execution_actor
from apps.pipelines.problems import Problem
from apps.pipelines.stages.check_preconditions import PreconditionType, register_precondition

COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
               ">=": operator.ge}


def cluster_size_problems(context, where: str) -> list[Problem]:
    if not isinstance(context, dict):
        return [Problem(where, "must be an object: {credentials, cluster, comparison, expected}")]
    problems = [Problem(f"{where}/{key}", "is required for a clusterSize precondition")
                for key in ("credentials", "cluster") if context.get(key) in (None, "")]
    problems += [Problem(f"{where}/{key}", "must be a string of at most 200 characters")
                 for key in ("credentials", "cluster") if context.get(key) not in (None, "")
                 and (not isinstance(context[key], str) or len(context[key]) > 200 or "\x00" in context[key])]
    comparison = context.get("comparison", "==")
    if not is_expression(comparison) and comparison not in COMPARISONS:
        problems.append(Problem(f"{where}/comparison", f"must be one of {', '.join(COMPARISONS)}"))
    expected = context.get("expected", 1)
    if not is_expression(expected) and (isinstance(expected, bool) or not isinstance(expected, int)
                                        or not 0 <= expected <= 1000):
        problems.append(Problem(f"{where}/expected", "must be a whole number from 0 to 1000"))
    regions = context.get("regions")
    if regions is not None and not is_expression(regions) and not isinstance(regions, list):
        problems.append(Problem(f"{where}/regions", "must be a list"))
    return problems


def check_cluster_size(context: dict, stage) -> tuple[bool, str]:
    """Whether the cluster has ``comparison expected`` live server groups; LookupError when it cannot count."""
    problems = cluster_size_problems(context, "context")
    if problems:
        raise LookupError(f"clusterSize: {problems[0]}")
    name = context["credentials"]
    account = local_docker_account() if name == LOCAL_ACCOUNT else DockerAccount.objects.filter(name=name).first()
    if account is None:
        raise LookupError(f"clusterSize: there is no Docker engine account {name!r}")
    try:
        check_permission(execution_actor(stage.execution), READ, account, field="credentials")
    except PermissionRefused as refused:
        raise LookupError(f"clusterSize: credentials: {refused.message}") from None
    unreachable = engine_reachable(account)
    if unreachable:
        raise LookupError(f"clusterSize: {unreachable}")
    comparison, expected = context.get("comparison", "=="), int(context.get("expected", 1))
    size = live_groups(account, context["cluster"]).count()
    passed = COMPARISONS[comparison](size, expected)
    return passed, f"cluster {context['cluster']} has {size} server group(s), expected {comparison} {expected}"


register_precondition("clusterSize", PreconditionType(problems=cluster_size_problems, check=check_cluster_size))
