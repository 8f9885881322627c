"""Load balancers as real nginx processes the platform configures and reloads gracefully.

Each load balancer has a directory under LOAD_BALANCER_STATE_DIR with its
``nginx.conf``, pid file, error log and temp paths. Applying a load balancer
writes its config (the instances it sends to) and starts nginx, or, when it
runs, sends it ``-s reload``: nginx starts new workers with the new config
and lets the old ones finish their requests, so moving traffic refuses no
connection. Removing a target and then its container must leave the old
workers time to finish (LOAD_BALANCER_DRAIN_SECONDS, waited by the stages).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from django.conf import settings

from apps.deployments.providers.docker import ProviderError

NGINX_TIMEOUT_SECONDS = 10


def state_dir(account_name: str, name: str) -> Path:
    return Path(settings.LOAD_BALANCER_STATE_DIR) / f"{account_name}--{name}"


def nginx_binary() -> str:
    found = shutil.which(settings.LOAD_BALANCER_NGINX) or shutil.which("/usr/sbin/nginx")
    if not found:
        raise ProviderError(f"nginx ({settings.LOAD_BALANCER_NGINX}) is not installed: apt-get install nginx-light")
    return found


def config_text(directory: Path, listeners: list[dict], targets: list[str]) -> str:
    """nginx.conf of a load balancer: one server per listener, all sending to the targets (503 with none)."""
    upstream = "".join(f"        server {target} max_fails=1 fail_timeout=2s;\n" for target in targets)
    location = ("proxy_pass http://targets; proxy_next_upstream error timeout http_502 http_503; "
                "proxy_next_upstream_tries 3; proxy_connect_timeout 2s; proxy_set_header Host $host;"
                if targets else "return 503 'no enabled server group';")
    servers = "".join(
        f"    server {{\n        listen {settings.LOAD_BALANCER_BIND_ADDRESS}:{int(listener['externalPort'])};\n"
        f"        location / {{ {location} }}\n    }}\n" for listener in listeners)
    temp = "".join(f"    {kind}_temp_path {directory}/tmp/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log warn;\nworker_processes 1;\n"
            f"events {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n{temp}"
            + (f"    upstream targets {{\n{upstream}    }}\n" if targets else "") + servers + "}\n")


def _running_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / "nginx.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _nginx(directory: Path, *args: str) -> None:
    command = [nginx_binary(), "-p", str(directory), "-c", str(directory / "nginx.conf"), *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=NGINX_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ProviderError(f"nginx failed: {error}") from None
    if result.returncode != 0:
        raise ProviderError(f"nginx {' '.join(args) or 'start'} failed: {result.stderr.strip()[-2000:]}")


def apply(account_name: str, name: str, listeners: list[dict], targets: list[str]) -> None:
    """Write the load balancer's config and start nginx, or reload the running one; ProviderError on failure."""
    directory = state_dir(account_name, name)
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    staged = directory / "nginx.conf.new"
    staged.write_text(config_text(directory, listeners, targets))
    staged.replace(directory / "nginx.conf")
    if _running_pid(directory) is None:
        _nginx(directory)
    else:
        _nginx(directory, "-s", "reload")


def stop(account_name: str, name: str) -> None:
    """Stop the load balancer's nginx (its in-flight requests finish first) and forget its directory."""
    directory = state_dir(account_name, name)
    if _running_pid(directory) is not None:
        _nginx(directory, "-s", "quit")
    shutil.rmtree(directory, ignore_errors=True)


def running(account_name: str, name: str) -> bool:
    return _running_pid(state_dir(account_name, name)) is not None
