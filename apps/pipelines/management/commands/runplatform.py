"""``manage.py runplatform``: run the whole platform in one terminal.

Starts, as child processes, the embedded Redis (when no ``REDIS_URL`` is
configured), the ASGI web process (uvicorn) and one or more RQ workers, and
passes their output through with each line prefixed by the child's name.
With ``--seed-demo`` it first runs ``manage.py seed_demo`` once Redis is up:
seeding enqueues the demo execution, so it needs the Redis the workers will
then read from.

Ctrl-C or SIGTERM stops them all: the web process and the workers first, Redis
last. If any child exits on its own, the others are stopped and the command
exits non-zero, naming it.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cdplatform import embedded_redis
from cdplatform.webprocess import web_command

POLL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 10.0


@dataclass
class Child:
    """A child process with the name its output is prefixed with."""

    name: str
    process: subprocess.Popen
    threads: list[threading.Thread] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Run the platform: the embedded Redis (when REDIS_URL is unset), the web process and RQ workers. "
        "Ctrl-C stops everything."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address the web process listens on (default 127.0.0.1)."
        )
        parser.add_argument("--port", type=int, default=8000, help="Port the web process listens on (default 8000).")
        parser.add_argument("--workers", type=int, default=1, help="Number of RQ worker processes (default 1).")
        parser.add_argument(
            "--seed-demo",
            action="store_true",
            help="Run `manage.py seed_demo` once Redis is up, before the web process and workers start.",
        )

    def handle(self, *args, host: str, port: int, workers: int, seed_demo: bool, **options):
        if workers < 0:
            raise CommandError("--workers must be 0 or more")
        if not 0 < port < 65536:
            raise CommandError("--port must be between 1 and 65535")

        self._output_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._force = threading.Event()
        self._width = max(len(name) for name in ["redis", "seed", "web", f"worker-{workers}"])
        self._web_and_workers: list[Child] = []
        self._redis: Child | None = None
        self._redis_log_stop = threading.Event()

        previous_handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        failed: Child | None = None
        try:
            try:
                self._start_redis()
                if seed_demo:
                    failed = self._run_to_completion("seed", [sys.executable, self._manage_py(), "seed_demo"])
                if failed is None and not self._stop_requested.is_set():
                    self._start_web_and_workers(host, port, workers)
                    self.stdout.write(
                        self.style.SUCCESS(f"The platform is starting: open {self._url(host, port)} (Ctrl-C stops it)")
                    )
                    failed = self._wait_for_stop_or_failure()
            except OSError as exc:
                raise CommandError(f"Could not start a process: {exc}") from exc
        finally:
            self._stop_all()
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)

        if failed is not None:
            raise CommandError(f"{failed.name} {self._describe_exit(failed)} unexpectedly; stopped the others.")
        self.stdout.write("All processes stopped.")

    # --- Starting -----------------------------------------------------------

    def _start_redis(self) -> None:
        """Start the embedded Redis when no REDIS_URL is configured (or reuse one already on its port)."""
        if not settings.EMBEDDED_REDIS:
            self._say("redis", f"using REDIS_URL={settings.REDIS_URL} (no embedded Redis)")
            return
        port = settings.EMBEDDED_REDIS_PORT
        workdir = Path(settings.VAR_DIR) / "redis"
        try:
            process = embedded_redis.start_embedded_redis(port, workdir)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        if process is None:
            self._say("redis", f"reusing the Redis already answering on 127.0.0.1:{port}")
            return
        follower = threading.Thread(
            target=self._follow_log,
            args=("redis", embedded_redis.log_file(workdir), self._redis_log_stop),
            name="redis-log",
            daemon=True,
        )
        follower.start()
        self._redis = Child("redis", process, [follower])

    def _start_web_and_workers(self, host: str, port: int, workers: int) -> None:
        """Start the ASGI web process and ``workers`` RQ workers (queues and worker class come from settings)."""
        self._start("web", web_command(host, port))
        for number in range(1, workers + 1):
            self._start(f"worker-{number}", [sys.executable, self._manage_py(), "rqworker", "--with-scheduler"])

    @staticmethod
    def _manage_py() -> str:
        """Return the path of the project's manage.py."""
        return str(Path(settings.BASE_DIR) / "manage.py")

    def _run_to_completion(self, name: str, command: list[str]) -> Child | None:
        """Run a one-off child to the end; return it if it failed, None if it succeeded or a stop was requested."""
        child = self._start(name, command, keep=False)
        while child.process.poll() is None:
            if self._stop_requested.wait(POLL_SECONDS):
                self._stop_group([child])
                break
        for thread in child.threads:
            thread.join(timeout=2)
        if self._stop_requested.is_set() or child.process.returncode == 0:
            return None
        return child

    def _start(self, name: str, command: list[str], keep: bool = True) -> Child:
        """Start a child in its own process group, with its output pumped through with a prefix.

        With ``keep`` (the default) the child is one of the long-running
        processes watched and stopped with the web process and the workers.
        """
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            # Ctrl-C in the terminal reaches only this command, which stops
            # the children itself, in order.
            process_group=0,
        )
        pump = threading.Thread(target=self._pump, args=(name, process.stdout), name=f"{name}-output", daemon=True)
        pump.start()
        child = Child(name, process, [pump])
        if keep:
            self._web_and_workers.append(child)
        return child

    # --- Output -------------------------------------------------------------

    def _say(self, name: str, line: str) -> None:
        """Write one line of a child's output, prefixed with its name."""
        with self._output_lock:
            try:
                self.stdout.write(f"{name:<{self._width}} | {line.rstrip()}")
                self.stdout.flush()
            except (BrokenPipeError, ValueError):
                pass

    def _pump(self, name: str, stream: IO[str]) -> None:
        """Copy a child's output, line by line, until it closes its end of the pipe."""
        with stream:
            for line in stream:
                self._say(name, line)

    def _follow_log(self, name: str, path: Path, stop: threading.Event) -> None:
        """Copy lines appended to ``path`` until ``stop`` is set, then copy what is left."""
        partial = ""
        try:
            with path.open(encoding="utf-8", errors="replace") as log:
                while True:
                    stopping = stop.is_set()
                    chunk = log.read()
                    if chunk:
                        *lines, partial = (partial + chunk).split("\n")
                        for line in lines:
                            self._say(name, line)
                    elif stopping:
                        break
                    else:
                        time.sleep(POLL_SECONDS)
        except OSError as exc:
            self._say(name, f"cannot read {path}: {exc}")
        if partial:
            self._say(name, partial)

    # --- Running and stopping -----------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        """First SIGINT/SIGTERM: stop in order. A second one: kill whatever is still running."""
        if self._stop_requested.is_set():
            self._force.set()
        self._stop_requested.set()

    def _wait_for_stop_or_failure(self) -> Child | None:
        """Block until a stop is requested (returns None) or a child exits (returns that child)."""
        children = [*self._web_and_workers, *([self._redis] if self._redis else [])]
        while not self._stop_requested.wait(POLL_SECONDS):
            for child in children:
                if child.process.poll() is not None:
                    return child
        self.stdout.write("Stopping (press Ctrl-C again to kill)...")
        return None

    def _stop_all(self) -> None:
        """Stop the web process and the workers, then Redis; kill what does not stop in time."""
        web_and_workers, self._web_and_workers = self._web_and_workers, []
        self._stop_group(web_and_workers)
        for child in web_and_workers:
            for thread in child.threads:
                thread.join(timeout=2)
        redis, self._redis = self._redis, None
        if redis is not None:
            self._stop_group([redis])
            self._redis_log_stop.set()
            for thread in redis.threads:
                thread.join(timeout=2)

    def _stop_group(self, children: list[Child]) -> None:
        """Send SIGTERM to every child still running, wait for all of them, kill the ones that linger."""
        for child in children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while any(child.process.poll() is None for child in children):
            if self._force.is_set() or time.monotonic() >= deadline:
                for child in children:
                    if child.process.poll() is None:
                        self._say(child.name, "did not stop in time; killing it")
                        child.process.kill()
                for child in children:
                    child.process.wait()
                break
            time.sleep(0.05)

    @staticmethod
    def _describe_exit(child: Child) -> str:
        """Return how a child ended: its exit code, or the signal that killed it."""
        code = child.process.returncode
        if code >= 0:
            return f"exited with code {code}"
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"

    @staticmethod
    def _url(host: str, port: int) -> str:
        """Return the URL to open in a browser for a web process listening on ``host:port``."""
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"
