"""A real Docker registry (Debian's ``docker-registry``) for the docker trigger tests, and pushing images to it.

The registry runs on a free 127.0.0.1 port with filesystem storage in a
temp dir; with ``notify`` set, its ``notifications.endpoints`` entry posts
every event to the platform's endpoint with the bearer token. Images are
pushed with the registry's HTTP API (two blobs, then a manifest by tag), as
``docker push`` does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from cdplatform.webprocess import free_port

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Registry:
    address: str
    process: subprocess.Popen
    log: Path

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def upload_blob(self, repository: str, content: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        started = requests.post(self.url(f"/v2/{repository}/blobs/uploads/"), timeout=10)
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        location = location if location.startswith("http") else self.url(location)
        joiner = "&" if "?" in location else "?"
        done = requests.put(f"{location}{joiner}digest={digest}", data=content,
                            headers={"Content-Type": "application/octet-stream"}, timeout=10)
        assert done.status_code == 201, done.text
        return digest

    def push(self, repository: str, tag: str, payload: bytes = b"") -> str:
        """Push a small image ``repository:tag``; returns its manifest's digest."""
        layer = payload or f"layer of {repository}:{tag} {time.time()}".encode()
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
            "sha256:" + hashlib.sha256(layer).hexdigest()]}, "config": {}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                       "digest": self.upload_blob(repository, config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                        "digest": self.upload_blob(repository, layer)}],
        }).encode()
        response = requests.put(self.url(f"/v2/{repository}/manifests/{tag}"), data=manifest,
                                headers={"Content-Type": MANIFEST_TYPE}, timeout=10)
        assert response.status_code == 201, response.text
        return response.headers["Docker-Content-Digest"]


def start_registry(workdir: Path, notify_url: str = "", token: str = "") -> Registry:
    """Start ``docker-registry serve`` on a free loopback port; wait until it answers."""
    port = free_port()
    notifications = ""
    if notify_url:
        notifications = f"""
notifications:
  endpoints:
    - name: platform
      url: {notify_url}
      headers:
        Authorization: [Bearer {token}]
      timeout: 2s
      threshold: 10
      backoff: 200ms
"""
    config = workdir / "registry.yml"
    config.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {workdir / 'storage'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{notifications}""")
    log = workdir / "registry.log"
    process = subprocess.Popen([shutil.which("docker-registry") or "docker-registry", "serve", str(config)],
                               stdout=log.open("ab"), stderr=subprocess.STDOUT)
    registry = Registry(f"127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(registry.url("/v2/"), timeout=1).status_code == 200:
                return registry
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"docker-registry did not start: {log.read_text()[-2000:]}")


def stop_registry(registry: Registry) -> None:
    registry.process.terminate()
    try:
        registry.process.wait(10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait(5)
