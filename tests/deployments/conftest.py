"""Real components for the deployments' tests: the Docker engine, a registry, a git repository of a busybox web image.

Everything a test makes on the engine carries ``io.cdplatform.owner=<this
run's label>`` (DOCKER_OWNER_LABEL, given to the test process and to the
workers), and the ``engine`` fixture removes every container and image with
that label when the test ends, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, DockerException, NotFound
from kubernetes import client as kubernetes_client

from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from tests.conftest import missing_service

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
ARG VERSION=unknown
RUN echo "$VERSION" > /www/version
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def docker_client():
    """A client of the machine's Docker engine (DOCKER_HOST or the default socket), or a skip naming it."""
    try:
        client = docker.from_env(version="auto", timeout=30)
        client.ping()
    except DockerException as error:
        missing_service(f"a Docker engine (DOCKER_HOST or /var/run/docker.sock): {error}")
    yield client
    client.close()


def remove_labelled(client, owner: str) -> None:
    selector = {"label": f"io.cdplatform.owner={owner}"}
    for container in client.containers.list(all=True, filters=selector):
        try:
            container.remove(force=True)
        except NotFound:
            pass  # gone meanwhile (auto-removed, or removed by the worker or the kubelet): gone is the goal
        except APIError as error:
            if error.status_code != 409:  # 409: someone else's removal is already in progress
                raise
    for image in client.images.list(filters=selector):
        try:
            client.images.remove(image.id, force=True)
        except DockerException:
            pass


@pytest.fixture
def engine(docker_client, settings, monkeypatch):
    """The engine for one test: an owner label of its own, everything with that label removed afterwards."""
    owner = f"cdp-test-{uuid.uuid4().hex[:10]}"
    settings.DOCKER_OWNER_LABEL = owner
    settings.DOCKER_HEALTH_INTERVAL_SECONDS = 0.2
    monkeypatch.setenv("DOCKER_OWNER_LABEL", owner)
    yield owner
    remove_labelled(docker_client, owner)


@pytest.fixture(scope="session")
def registry_address(tmp_path_factory):
    """A real docker-registry on 127.0.0.1 (a loopback registry the engine trusts without TLS)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        missing_service("docker-registry (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {root}/data}}\n"
                      f"  delete: {{enabled: true}}\nhttp: {{addr: {address}}}\n")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                missing_service(f"docker-registry did not start on {address}")
            time.sleep(0.1)
    yield address
    process.terminate()
    process.wait(10)


def write_web_source(directory: Path, body: str) -> None:
    """A busybox web server's build context: the Dockerfile, busybox, a page and a CGI script."""
    (directory / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    shutil.copy(BUSYBOX, directory / "busybox")
    (directory / "www" / "index.html").write_text(body)
    (directory / "www" / "health").write_text("ok\n")


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                               "PATH": "/usr/bin:/bin", "HOME": str(directory)}).stdout.strip()


@pytest.fixture
def web_repository(tmp_path, settings):
    """A git repository of a busybox web image whose page says "v1", under BAKE_LOCAL_ROOTS; its path."""
    if not Path(BUSYBOX).exists():
        missing_service("busybox (apt-get install busybox-static)")
    repository = tmp_path / "web"
    repository.mkdir()
    write_web_source(repository, "v1\n")
    git(repository, "init", "-q", "-b", "main")
    git(repository, "add", ".")
    git(repository, "commit", "-q", "-m", "v1")
    settings.BAKE_LOCAL_ROOTS = [str(tmp_path)]
    return repository


WEB_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


@pytest.fixture
def web_images(engine, docker_client, tmp_path):
    """Two busybox web images on the engine whose pages say "v1" and "v2" (and one whose /health never answers),
    labelled for removal; their names by version."""
    if not Path(BUSYBOX).exists():
        missing_service("busybox (apt-get install busybox-static)")
    names = {}
    for version in ("v1", "v2", "broken"):
        context = tmp_path / f"image-{version}"
        context.mkdir()
        write_web_source(context, f"{version}\n")
        if version == "broken":
            (context / "www" / "health").unlink()
        (context / "Dockerfile").write_text(WEB_DOCKERFILE)
        name = f"cdp-test/web:{version}-{engine}"
        docker_client.images.build(path=str(context), tag=name, labels={"io.cdplatform.owner": engine}, rm=True)
        names[version] = name
    return names


@pytest.fixture
def load_balancer_dir(tmp_path, settings):
    """Where the test's load balancers (nginx processes) live; every one still running is stopped afterwards."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing_service("nginx (apt-get install nginx-light)")
    directory = tmp_path / "load-balancers"
    directory.mkdir()
    settings.LOAD_BALANCER_STATE_DIR = str(directory)
    yield directory
    for pid_file in directory.glob("*/nginx.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


@pytest.fixture
def canary_images(engine, docker_client, tmp_path):
    """The canary tests' busybox CGI images (tests/deployments/canary_images.py) on the engine; names by version."""
    from tests.deployments.canary_images import build_canary_images

    if not Path(BUSYBOX).exists():
        missing_service("busybox (apt-get install busybox-static)")
    context = tmp_path / "canary-image"
    context.mkdir()
    return build_canary_images(docker_client, context, BUSYBOX, engine)


@pytest.fixture
def prometheus(engine, docker_client, tmp_path):
    """A real Prometheus on a free 127.0.0.1 port scraping this test's containers every second
    (tests/deployments/prometheus.py); stopped afterwards."""
    from tests.deployments.prometheus import start_prometheus

    running = start_prometheus(tmp_path / "prometheus", engine, free_port())
    yield running
    running.stop()


@pytest.fixture(scope="session")
def kube_cluster():
    """A real single-node Kubernetes cluster (tests/deployments/kubecluster.py), or a skip naming what is missing."""
    from tests.deployments import kubecluster

    stack = contextlib.ExitStack()
    try:
        cluster = stack.enter_context(kubecluster.running_cluster())
    except kubecluster.ClusterUnavailable as error:
        missing_service(str(error))
    with stack:
        yield cluster


@pytest.fixture
def kube_namespace(kube_cluster):
    """A namespace of the test's own (its default service account ready), deleted with what is in it afterwards."""
    from kubernetes import client

    name = f"cdp-test-{uuid.uuid4().hex[:10]}"
    with kube_cluster.api() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name}})
        deadline = time.monotonic() + 30
        while not core.list_namespaced_service_account(name).items:
            assert time.monotonic() < deadline, f"namespace {name} got no default service account"
            time.sleep(0.2)
    yield name
    with kube_cluster.api() as api:
        client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background", grace_period_seconds=0)


@pytest.fixture
def kube_worker_settings() -> dict[str, str]:
    """Settings the ``kube`` fixture's worker starts with (a module overrides this fixture to add some)."""
    return {}


@pytest.fixture
def kube(workers, engine, web_images, kube_cluster, kube_namespace, kube_worker_settings):
    """A worker, the Kubernetes account ``dev`` on the test cluster, the test's namespace and the images."""
    workers.start(1, DOCKER_OWNER_LABEL=engine, **kube_worker_settings)
    do_save_kubernetes_account({"name": "dev", "kubeconfigContents": kube_cluster.kubeconfig}, actor="ops")
    with kube_cluster.api() as api:
        yield {"namespace": kube_namespace, "images": web_images, "apps": kubernetes_client.AppsV1Api(api),
               "core": kubernetes_client.CoreV1Api(api), "kubeconfig": kube_cluster.kubeconfig}
    workers.stop()
