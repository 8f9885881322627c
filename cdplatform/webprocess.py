"""Starting the ASGI web process and probing it: shared by runplatform, bench_live and the browser test."""

import socket
import sys
import urllib.error
import urllib.request

# Loopback only, so a proxy set in the environment must not be used.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def web_command(host: str, port: int) -> list[str]:
    """The command line of the web process: uvicorn serving cdplatform.asgi (no lifespan: Channels has none).

    Without permessage-deflate: a live event is a few hundred bytes, and compressing it once per socket
    cost the web process more than encoding it (and every browser the same to inflate it).
    """
    return [
        sys.executable, "-m", "uvicorn", "cdplatform.asgi:application",
        "--host", host, "--port", str(port), "--lifespan", "off", "--ws-per-message-deflate", "false",
    ]  # fmt: skip


def free_port() -> int:
    """A loopback port nobody listens on now (for a server about to be started)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_status(url: str) -> int:
    """The HTTP status of a GET (after redirects); 0 when nothing answers."""
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0
