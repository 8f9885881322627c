"""A stand-in for the canary analysis (``kayentaCanary``), for testing the canary strategy's own steps alone.

Imported by the workers first (``workers.start(preload=...)``, in place of the canary
app's) and in the test process by the ``stand_in_analysis`` fixture, which
puts the canary app's back afterwards. It checks what the strategy must give an
analysis — its scopes name the live, enabled baseline and canary server
groups, each in its load balancer's targets — and then passes or fails as
its ``canaryConfig.standIn`` says (``pass`` or ``fail``). The real analysis
is tested with Prometheus in test_canary_end_to_end.py.
"""

from apps.deployments.models import LoadBalancer, ServerGroup
from apps.pipelines.problems import Problem
from apps.pipelines.stages import StageType, TaskResult, register, unregister


class StandInAnalysis(StageType):
    type_name = "kayentaCanary"
    label = "Canary analysis (stand-in)"

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        if (stage.get("canaryConfig") or {}).get("standIn") not in ("pass", "fail"):
            return [Problem(f"{pointer}/canaryConfig/standIn", "must be pass or fail")]
        return []

    def run(self, stage, scope, runtime) -> TaskResult:
        config = stage.context["canaryConfig"]
        [pair] = config["scopes"]
        seen = {}
        for role in ("controlScope", "experimentScope"):
            group = ServerGroup.objects.filter(name=pair[role], destroyed_at=None, enabled=True).first()
            if group is None:
                return TaskResult.failed(f"{role} {pair[role]!r} is not a live enabled server group")
            ports = {f"127.0.0.1:{port}" for port in group.instances.filter(ended_at=None, health="UP")
                     .values_list("host_port", flat=True)}
            targets = {target.split()[0] for balancer in LoadBalancer.objects.filter(name__in=group.load_balancers)
                       for target in balancer.targets}
            if not ports or not ports <= targets:
                return TaskResult.failed(f"{role} {pair[role]!r} is not in its load balancers")
            seen[role] = group.image
        outputs = {"canaryScores": [100.0 if config["standIn"] == "pass" else 0.0], "scopesSeen": seen}
        if config["standIn"] == "fail":
            return TaskResult.failed("score 0 is below marginal", context=outputs)
        return TaskResult.succeeded(outputs=outputs)


unregister(StandInAnalysis.type_name)
register(StandInAnalysis)
