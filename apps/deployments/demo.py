"""The demo pipeline on the local engine: ``seed_demo``'s deploy waits become a real bake and a red/black deploy.

When the ``local`` account's engine answers, busybox (static) and nginx are
there and the demo's source directory lies under BAKE_LOCAL_ROOTS (``bin/run``
puts it there), the demo pipeline bakes a busybox web image from
``var/demo-app`` (its page says the release) on the engine, without pushing
it anywhere, puts it behind the load balancer ``demo-test`` on
DEMO_LOAD_BALANCER_PORT and deploys it red/black as the cluster
``demo-test``. Otherwise the pipeline stays as ``deliver.yml`` has it and the
reason is printed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from apps.deployments.providers import nginx
from apps.deployments.providers.docker import ProviderError
from apps.deployments.providers.engines import engine_reachable
from apps.deployments.services.accounts import local_docker_account

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
ARG RELEASE=unknown
RUN echo "$RELEASE" > /www/index.html
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
DEPLOY_STAGE = "2"  # "Deploy to test (eu)" of deliver.yml
SMOKE_STAGE = "4"  # "Smoke tests": also checks that the cluster deployed has a server group


def source_dir() -> Path:
    return Path(settings.VAR_DIR) / "demo-app"


def busybox() -> str | None:
    return next((path for path in BUSYBOX_PATHS if Path(path).is_file()), None)


def why_not() -> str | None:
    """None when the demo can deploy to the local engine; otherwise why it cannot, in a sentence."""
    unreachable = engine_reachable(local_docker_account())
    if unreachable:
        return f"no Docker engine is reachable ({unreachable})"
    if busybox() is None:
        return "the demo image needs a static busybox (apt-get install busybox-static)"
    try:
        nginx.nginx_binary()
    except ProviderError as error:
        return f"the demo's load balancer needs {error}"
    roots = [Path(root).resolve() for root in settings.BAKE_LOCAL_ROOTS]
    resolved = source_dir().resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        return f"its source {resolved} is not under BAKE_LOCAL_ROOTS ({', '.join(settings.BAKE_LOCAL_ROOTS) or 'none'})"
    return None


def write_source() -> Path:
    """The demo image's build context: a Dockerfile, busybox, a health page (the index page is the release)."""
    directory = source_dir()
    (directory / "www").mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    target = directory / "busybox"
    if not target.exists():
        shutil.copy(busybox() or BUSYBOX_PATHS[0], target)
    (directory / "www" / "health").write_text("ok\n")
    return directory


def docker_stages(document: dict, source: Path) -> list[dict]:
    """deliver.yml's stages with "Deploy to test (eu)" a bake and a red/black deploy behind a load balancer."""
    port = settings.DEMO_LOAD_BALANCER_PORT
    stages = []
    for stage in document["stages"]:
        if stage["refId"] == SMOKE_STAGE:
            stage = {**stage, "preconditions": [*stage.get("preconditions", []), {
                "type": "clusterSize", "failPipeline": True, "context": {
                    "credentials": "local", "cluster": "demo-test", "comparison": ">=", "expected": 1}}]}
        if stage["refId"] != DEPLOY_STAGE:
            stages.append(stage)
            continue
        stages += [
            {"refId": "bake", "name": "Bake demo image", "type": "bake", "requisiteStageRefIds": ["1"],
             "cloudProvider": "docker", "context": str(source), "imageName": "demo/web",
             "tags": ["${parameters.version}"], "buildArgs": {"RELEASE": "${release}"}},
            {"refId": "lb", "name": "Load balancer", "type": "upsertLoadBalancer", "requisiteStageRefIds": ["1"],
             "loadBalancers": [{"cloudProvider": "docker", "account": "local", "name": "demo-test",
                                "listeners": [{"externalProtocol": "HTTP", "externalPort": port,
                                               "internalProtocol": "HTTP", "internalPort": 8080}],
                                "healthCheck": {"path": "/health", "intervalSec": 1, "timeoutSec": 1}}]},
            {**{key: value for key, value in stage.items() if key != "waitTime"},
             "type": "deploy", "requisiteStageRefIds": ["bake", "lb"],
             "clusters": [{"cloudProvider": "docker", "account": "local", "application": document["application"],
                           "stack": "test", "strategy": "redblack", "capacity": {"desired": 2},
                           "containerPort": 8080, "healthCheck": {"path": "/health"},
                           "loadBalancers": ["demo-test"], "maxRemainingAsgs": 2,
                           "rollback": {"onFailure": True}}]},
        ]
    return stages


def docker_demo(document: dict) -> tuple[dict, str]:
    """The demo hook: the document with a real bake and deploy, or unchanged with the reason."""
    reason = why_not()
    if reason:
        return document, f"Demo deploys are waits: {reason}."
    source = write_source()
    port = settings.DEMO_LOAD_BALANCER_PORT
    return ({**document, "stages": docker_stages(document, source)},
            f"Demo bakes and deploys red/black to the local Docker engine; it serves on "
            f"http://{settings.LOAD_BALANCER_BIND_ADDRESS}:{port}/")
