"""Separate hosts on one machine, for tests: network namespaces joined to the test's by veth links.

A :class:`NamespacedHost` is a network namespace (``ip netns add``) with its
own loopback and one veth link to the test's namespace on a /30 of
10.213.0.0/16: the test's side is ``10.213.N.1``, the namespace's
``10.213.N.2``. The namespace has no other link and no default route, so a
process started in it (:meth:`NamespacedHost.command`) reaches only what
listens on the test's side of its link; this machine's loopback, where
PostgreSQL and Redis listen, is not its loopback. A :class:`Forwarder` in the
test's process, listening on the test's side of a link, passes connections
on to such a loopback service, as the network between two machines would.
Nothing leaves the machine.

Creating namespaces needs root and iproute2's ``ip``: :func:`unavailable` says
what is missing. Namespaces are named after the pid of the test process
(``cdp-<pid>-<n>``), so those a killed run left behind are recognised and
removed by the next one (:func:`remove_stale`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.213"
IP_TIMEOUT_SECONDS = 10
NAME_PATTERN = re.compile(r"^cdp-(\d+)-(\d+)$")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run iproute2's ``ip`` with ``args``; raise with its message when ``check`` and it fails."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_SECONDS)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (no Linux, no ``ip``, not root), or None if they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed: apt-get install iproute2"
    if os.geteuid() != 0:
        return "creating network namespaces (`ip netns add`) needs root"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> None:
    """Delete the namespaces of test processes that no longer run (a run killed before its clean-up)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = NAME_PATTERN.match(name)
        if match and not _alive(int(match.group(1))):
            NamespacedHost(name, -1).destroy()


def free_subnet(taken: set[int]) -> int:
    """A third octet N for 10.213.N.0/30 that no address of this machine uses yet, nor ``taken``.

    The search starts at an octet of this process' own, so two runs side by side do not pick the same one.
    """
    used = set(taken)
    for line in ip("-o", "-4", "address", "show", check=False).stdout.splitlines():
        used.update(int(n) for n in re.findall(rf"\b{re.escape(SUBNET)}\.(\d+)\.\d+/", line))
    start = os.getpid() % 254
    for candidate in ((start + step) % 254 + 1 for step in range(254)):
        if candidate not in used:
            return candidate
    raise RuntimeError(f"no free /30 left in {SUBNET}.0.0/16")


@dataclass
class NamespacedHost:
    """A network namespace standing for another machine, linked to this one by a veth pair."""

    name: str
    subnet: int  # N of 10.213.N.0/30

    @property
    def gateway(self) -> str:
        """The test's side of the link: forwarders listen here."""
        return f"{SUBNET}.{self.subnet}.1"

    @property
    def address(self) -> str:
        """The namespace's side of the link: its processes' connections come from here."""
        return f"{SUBNET}.{self.subnet}.2"

    @property
    def _veth(self) -> str:
        # Interface names have at most 15 characters: "cdp" + pid (7 digits at most) + "h" + n.
        return self.name.replace("-", "", 1).replace("-", "h")

    def create(self) -> None:
        """Make the namespace, its loopback and its link (the test's side outside, the other inside)."""
        ip("netns", "add", self.name)
        inside = self._veth + "n"
        ip("link", "add", self._veth, "type", "veth", "peer", "name", inside, "netns", self.name)
        ip("address", "add", f"{self.gateway}/30", "dev", self._veth)
        ip("link", "set", self._veth, "up")
        ip("-n", self.name, "address", "add", f"{self.address}/30", "dev", inside)
        ip("-n", self.name, "link", "set", inside, "up")
        ip("-n", self.name, "link", "set", "lo", "up")

    def pids(self) -> list[int]:
        """The processes running in the namespace."""
        result = ip("netns", "pids", self.name, check=False)
        return [int(pid) for pid in result.stdout.split() if pid.isdigit()]

    def destroy(self) -> None:
        """Kill what still runs in the namespace (only this test starts processes there), then remove it."""
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, 9)
        ip("link", "delete", self._veth, check=False)  # gone already if the namespace went first
        ip("netns", "delete", self.name, check=False)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the pid is the command's own)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def inode(self) -> int:
        """The namespace's identity, as ``/proc/<pid>/ns/net`` of a process in it names it."""
        return Path(f"/run/netns/{self.name}").stat().st_ino


def netns_of(pid: int | str = "self") -> int:
    """The inode of the network namespace a process is in."""
    return Path(f"/proc/{pid}/ns/net").stat().st_ino


@dataclass
class Forwarder:
    """Accepts connections on ``listen`` (port 0: any) and passes each on to ``target``, both ways."""

    listen: str
    target: tuple[str, int]
    peers: set[str] = field(default_factory=set)  # addresses connections came from
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _sockets: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None

    def start(self) -> int:
        """Listen, serve in a thread of its own, and return the port."""
        self._listener = socket.create_server((self.listen, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"forward-{self.listen}", daemon=True).start()
        return self.port

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, (peer, _) = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.peers.add(peer)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink`` until either ends; then end both (neither service half-closes)."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def stop(self) -> None:
        """Stop listening and end every connection."""
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            self._close(sock)
