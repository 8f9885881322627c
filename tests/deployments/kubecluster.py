"""A real single-node Kubernetes cluster on this machine's Docker engine, for the Kubernetes provider's tests.

Kubernetes 1.20.2 built from Debian's own source package by ``.ci/kubernetes``
(cached in KUBERNETES_BIN_DIR) and Debian's ``etcd``: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and a kubelet that runs pods as
containers on the Docker engine (through the ``cdp-runc`` runtime that
``.ci/docker-runtime`` installs). Everything listens on 127.0.0.1; the node
registers as ``localhost`` so the API server reaches its kubelet there
(logs). Workloads are reached through 127.0.0.1 (host ports), never pod or
service addresses.

A kubelet removes the logs of pods it does not know, so only one cluster
runs on the machine at a time (a machine-wide lock). With
``CDP_TEST_KUBECONFIG`` set, the tests use that already running cluster
instead (start one with ``python -m tests.deployments.kubecluster``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

VERSION = "1.20.2"
BIN_DIR = Path(os.environ.get("KUBERNETES_BIN_DIR") or f"/var/cache/cdplatform/kubernetes-{VERSION}/bin")
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
LOCK_FILE = Path("/tmp/cdplatform-kubelet.lock")
LOCK_WAIT_SECONDS = 900
READY_SECONDS = 120
PAUSE_IMAGE = "k8s.gcr.io/pause:3.2"
DOCKER_SOCKET = "unix:///var/run/docker.sock"


class ClusterUnavailable(Exception):
    """What this machine lacks to run the cluster, or why it did not come up (with the logs' last lines)."""


@dataclass
class Cluster:
    """A running cluster: its admin kubeconfig (a file and its text) and, when this process started it, its parts."""

    kubeconfig_path: Path
    directory: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> str:
        return self.kubeconfig_path.read_text()

    def api(self):
        """A ``kubernetes.client.ApiClient`` for the admin."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig_path), client_configuration=configuration)
        return client.ApiClient(configuration)


def missing_parts() -> list[str]:
    """What the machine lacks to start a cluster (empty: nothing)."""
    missing = [f"{BIN_DIR}/{name} (build it with .ci/kubernetes)" for name in BINARIES
               if not os.access(BIN_DIR / name, os.X_OK)]
    if shutil.which("etcd") is None:
        missing.append("etcd (apt-get install etcd-server)")
    if shutil.which("docker") is None:
        missing.append("docker (apt-get install docker.io)")
    return missing


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = directory / "sa.key", directory / "sa.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _kubeconfig(server: str, token: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
    })


def _log_tails(cluster: Cluster, lines: int = 15) -> str:
    if cluster.directory is None:
        return ""
    tails = []
    for log in sorted((cluster.directory / "logs").glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"--- {log.name}\n" + "\n".join(text))
    return "\n".join(tails)


def _ensure_pause_image() -> None:
    """The pod sandbox image cannot be pulled here: a busybox that sleeps, tagged as the kubelet expects."""
    if subprocess.run(["docker", "image", "inspect", PAUSE_IMAGE], capture_output=True).returncode == 0:
        return
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(busybox, Path(context) / "busybox")
        (Path(context) / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox", "sleep", "2147483647"]\n')
        subprocess.run(["docker", "build", "-q", "-t", PAUSE_IMAGE, context], check=True, capture_output=True)


def _wait(what: str, cluster: Cluster, check, seconds: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise ClusterUnavailable(f"{name} exited ({process.returncode}) while waiting for {what}\n"
                                         + _log_tails(cluster))
        try:
            if check():
                return
        except Exception as error:  # noqa: BLE001  (not up yet: keep the last reason for the message)
            last = error
        time.sleep(0.5)
    raise ClusterUnavailable(f"{what} not ready after {seconds:.0f} s ({last})\n" + _log_tails(cluster))


def _node_ready(cluster: Cluster) -> bool:
    from kubernetes import client

    with cluster.api() as api:
        core = client.CoreV1Api(api)
        node = core.read_node("localhost")
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        taints = [t for t in node.spec.taints or [] if t.key.startswith("node.kubernetes.io/not-ready")]
        if ready and taints:  # the node lifecycle controller removes it soon; do not wait a sync period for it
            core.patch_node("localhost", {"spec": {"taints": [t.to_dict() for t in node.spec.taints
                                                              if t not in taints]}})
            return False
        # The default namespace's service account exists: pods can be created.
        return ready and bool(core.list_namespaced_service_account("default").items)


def start(directory: Path) -> Cluster:
    """Start the cluster's parts with their state under ``directory``; the cluster once its node is Ready."""
    missing = missing_parts()
    if missing:
        raise ClusterUnavailable("the Kubernetes test cluster needs " + ", ".join(missing))
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    (directory / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
    sa_key, sa_pub = _service_account_keys(directory)
    etcd_port, etcd_peer, api_port = _free_port(), _free_port(), _free_port()
    kubeconfig = directory / "admin.kubeconfig"
    kubeconfig.write_text(_kubeconfig(f"https://127.0.0.1:{api_port}", token))
    cluster = Cluster(kubeconfig_path=kubeconfig, directory=directory)

    def run(name: str, *command: str) -> None:
        log = open(directory / "logs" / f"{name}.log", "wb")  # noqa: SIM115  (kept open for the process' life)
        cluster.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL, start_new_session=True)

    try:
        run("etcd", shutil.which("etcd") or "etcd", "--data-dir", str(directory / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}")
        run("kube-apiserver", str(BIN_DIR / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--secure-port={api_port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--cert-dir={directory / 'apiserver-certs'}", f"--token-auth-file={directory / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}", "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC", "--kubelet-preferred-address-types=Hostname",
            "--enable-priority-and-fairness=false")
        _wait("the API server", cluster, lambda: _api_answers(cluster), seconds=60)
        run("kube-controller-manager", str(BIN_DIR / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
            "--leader-elect=false", f"--service-account-private-key-file={sa_key}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service", "--bind-address=127.0.0.1",
            "--port=0", f"--secure-port={_free_port()}", "--use-service-account-credentials=false",
            "--node-monitor-grace-period=20s", "--concurrent-gc-syncs=5")
        run("kube-scheduler", str(BIN_DIR / "kube-scheduler"), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--port=0", f"--secure-port={_free_port()}")
        _ensure_pause_image()
        kubelet_dir = directory / "kubelet"
        run("kubelet", str(BIN_DIR / "kubelet"), f"--kubeconfig={kubeconfig}", "--container-runtime=docker",
            f"--docker-endpoint={DOCKER_SOCKET}", "--cgroup-driver=cgroupfs", "--fail-swap-on=false",
            "--cgroups-per-qos=false", "--enforce-node-allocatable=", "--eviction-hard=",
            "--image-gc-high-threshold=100", "--image-gc-low-threshold=99", "--address=127.0.0.1",
            f"--port={_free_port()}", "--healthz-port=0", "--read-only-port=0", f"--root-dir={kubelet_dir}",
            f"--cert-dir={kubelet_dir / 'pki'}", f"--pod-infra-container-image={PAUSE_IMAGE}",
            "--hostname-override=localhost", "--sync-frequency=10s", "--node-status-update-frequency=2s",
            "--serialize-image-pulls=false", "--register-node=true")
        _wait("the node", cluster, lambda: _node_ready(cluster))
    except BaseException:
        stop(cluster)
        raise
    return cluster


def _api_answers(cluster: Cluster) -> bool:
    from kubernetes import client

    with cluster.api() as api:
        client.CoreV1Api(api).list_namespace(limit=1)
    return True


def stop(cluster: Cluster) -> None:
    """Stop the parts this process started (kubelet first) and remove the pods' containers."""
    for name in ("kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        process = cluster.processes.get(name)
        if process is None or process.poll() is not None:
            continue
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if cluster.processes.get("kubelet") is not None:
        # dockershim's containers (sandboxes and pods) carry this label; only one cluster runs at a time.
        listed = subprocess.run(["docker", "ps", "-aq", "--filter", "label=io.kubernetes.docker.type"],
                                capture_output=True, text=True)
        ids = listed.stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        kubelet_dir = cluster.directory / "kubelet" if cluster.directory else None
        if kubelet_dir is not None and kubelet_dir.exists():
            # Volumes the kubelet mounted (service account tokens) are unmounted before the tree goes.
            for mount in sorted((line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                                 if line.split()[1].startswith(str(kubelet_dir))), reverse=True):
                subprocess.run(["umount", "-l", mount], capture_output=True)


@contextlib.contextmanager
def machine_lock(seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """The machine-wide lock of the one kubelet; ClusterUnavailable when another holds it for ``seconds``."""
    with open(LOCK_FILE, "a") as lock:
        deadline = time.monotonic() + seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterUnavailable(
                        f"another Kubernetes test cluster held {LOCK_FILE} for {seconds:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """The cluster named by CDP_TEST_KUBECONFIG, or one started (and stopped afterwards) under the machine's lock."""
    given = os.environ.get("CDP_TEST_KUBECONFIG")
    if given:
        yield Cluster(kubeconfig_path=Path(given))
        return
    with machine_lock(), tempfile.TemporaryDirectory(prefix="cdp-kube-") as directory:
        cluster = start(Path(directory))
        try:
            yield cluster
        finally:
            stop(cluster)


def main() -> None:
    """Run a cluster until interrupted and print its kubeconfig's path (for CDP_TEST_KUBECONFIG)."""
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the API server's certificate is its own

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with running_cluster() as cluster:
        print(f"CDP_TEST_KUBECONFIG={cluster.kubeconfig_path}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    try:
        main()
    except ClusterUnavailable as error:
        sys.exit(f"error: {error}")
