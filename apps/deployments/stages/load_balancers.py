"""The ``upsertLoadBalancer`` stage: create or change load balancers (nginx on LOAD_BALANCER_BIND_ADDRESS)."""

from __future__ import annotations

from apps.deployments.models import account_name_validator
from apps.deployments.services import server_groups as groups
from apps.deployments.stages.common import ProviderStage, docker_account
from apps.deployments.stages.deploy import guarded
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, TaskResult, register


def listener_problems(listeners, pointer: str) -> list[Problem]:
    if not isinstance(listeners, list) or not 1 <= len(listeners) <= 10:
        return [Problem(pointer, "must be a list of 1 to 10 listeners")]
    problems = []
    for index, listener in enumerate(listeners):
        port = listener.get("externalPort") if isinstance(listener, dict) else None
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            problems.append(Problem(f"{pointer}/{index}/externalPort", "must be a port number"))
        elif isinstance(listener, dict) and listener.get("externalProtocol", "HTTP").upper() != "HTTP":
            problems.append(Problem(f"{pointer}/{index}/externalProtocol", "only HTTP is supported"))
    return problems


def balancer_problems(balancer, pointer: str) -> list[Problem]:
    if not isinstance(balancer, dict):
        return [Problem(pointer, "must be an object")]
    problems = []
    name = balancer.get("name")
    try:
        account_name_validator(name if isinstance(name, str) else "")
    except Exception:  # a ValidationError: the message is the validator's
        problems.append(Problem(f"{pointer}/name", "is required: lowercase letters, digits and hyphens"))
    if not balancer.get("account"):
        problems.append(Problem(f"{pointer}/account", "is required: a Docker engine account"))
    return problems + listener_problems(balancer.get("listeners"), f"{pointer}/listeners")


@register
class UpsertLoadBalancerStage(ProviderStage):
    type_name = "upsertLoadBalancer"
    items = "loadBalancers"
    label = "Create or change load balancers"
    performs_io = True
    fields = (StageField("loadBalancers", "list", "Load balancers", required=True, help=(
        "[{cloudProvider: docker, account, name, listeners: [{externalProtocol, externalPort, internalProtocol, "
        "internalPort}], healthCheck: {path, intervalSec, timeoutSec, healthyThreshold, unhealthyThreshold}}]")),)

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        balancers = stage.get("loadBalancers")
        if not isinstance(balancers, list) or not 1 <= len(balancers) <= 10:
            return [Problem(f"{pointer}/loadBalancers", "must be a list of 1 to 10 load balancers")]
        return [problem for index, balancer in enumerate(balancers)
                for problem in balancer_problems(balancer, f"{pointer}/loadBalancers/{index}")]

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        made = []
        for balancer in stage.context["loadBalancers"]:
            account = docker_account(stage, balancer.get("account"))
            row = groups.do_upsert_load_balancer(
                account=account, application=stage.execution.application, name=balancer["name"],
                listeners=balancer["listeners"], health_check=balancer.get("healthCheck") or {})
            made.append({"name": row.name, "account": account.name, "targets": row.targets,
                         "ports": [listener["externalPort"] for listener in row.listeners]})
        return TaskResult.succeeded(outputs={"loadBalancers": made})
