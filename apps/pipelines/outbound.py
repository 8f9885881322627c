"""The outbound-URL policy, and the one way stage types make HTTP calls to the outside world.

A pipeline author chooses the URLs a webhook calls, and the call is made from
inside the platform's network, so an unchecked URL would let anyone who can
save a pipeline reach whatever the workers can reach (server-side request
forgery): cloud metadata services, internal admin endpoints, the database.
Every outbound call therefore goes through :func:`request`, which refuses a URL
before any connection is made when

* its scheme is not in ``OUTBOUND_URL_ALLOWED_SCHEMES``;
* its host matches none of the regular expressions in
  ``OUTBOUND_URL_ALLOWED_HOSTS`` (each matched against the whole host name);
* its host is an IP address, or resolves to any address, that the policy
  refuses (:func:`address_refusal`): by default loopback, private,
  link-local, unique-local, NAT64, unspecified and every other address that
  is not public (:data:`BUILT_IN_DENIED`), including the IPv4 address an
  IPv6 one embeds, unless ``OUTBOUND_URL_ALLOWED_NETWORKS`` allows it; and
  whatever is in ``OUTBOUND_URL_DENIED_NETWORKS``, always. A host written as
  a number in another form (``2130706433``, ``0x7f000001``, ``127.1``) is
  read as the resolver reads it.

Because a name may resolve differently a moment later (DNS rebinding), the
address a connection actually reaches is checked again as soon as the socket
connects, before a byte of the request is sent. Redirects are followed only
for GET and HEAD, and each hop is checked like the first URL. (Through an
HTTP proxy configured in the environment, the proxy connects to the target:
the checks before connecting still apply, the one at connect time sees the
proxy's address.)

The caller's headers (a webhook's ``customHeaders``, which may carry
credentials) go only to one origin — scheme, host and port — the one the
pipeline's author wrote: a redirect to another origin is followed without
them (see :func:`request`).

The policy is read from ``django.conf.settings`` on every call, so a change
of settings takes effect at once.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Responses larger than this are cut: they end up in a stage's context, in the database.
MAX_BODY_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundError(Exception):
    """An outbound call that did not get a response; ``retryable`` when trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class OutboundRefused(OutboundError):
    """The URL policy refused a URL; nothing was sent to it."""

    def __init__(self, url: str, rule: str):
        super().__init__(f"refused to call {url}: {rule}")
        self.url = url
        self.rule = rule


@dataclass
class OutboundResponse:
    """A response as the caller needs it: the body is already read (and cut at ``MAX_BODY_BYTES``)."""

    status_code: int
    headers: CaseInsensitiveDict
    content: bytes
    url: str
    truncated: bool = False
    history: list[str] = field(default_factory=list)
    # The caller's headers were not sent to ``url``: it is not the origin they are for.
    headers_withheld: bool = False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


# --- The policy ----------------------------------------------------------------------------------

# Where no outbound call goes unless OUTBOUND_URL_ALLOWED_NETWORKS allows it: the platform's own
# host and network, cloud metadata services, and addresses that are not public. Each entry names
# what the network is, for the refusal's message. Beyond these, any address ``ipaddress`` does not
# count as global, and any multicast or reserved one, is refused too (documentation ranges, 2001::/23).
BUILT_IN_DENIED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), what)
    for cidr, what in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible"),
        ("64:ff9b::/96", "NAT64"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_OPT_IN = "refused unless OUTBOUND_URL_ALLOWED_NETWORKS allows it"


def _allowed_schemes() -> set[str]:
    return {scheme.strip().lower() for scheme in settings.OUTBOUND_URL_ALLOWED_SCHEMES if scheme.strip()}


def _allowed_host_patterns() -> list[str]:
    return [pattern.strip() for pattern in settings.OUTBOUND_URL_ALLOWED_HOSTS if pattern.strip()]


def _networks(cidrs: list[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip()]


# What the C resolver reads as an IPv4 address, and so what a connection reaches: one number
# (2130706433), hexadecimal (0x7f000001), octal (0177.0.0.1), fewer than four parts (127.1).
_NUMERIC_IPV4 = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


def literal_ip(host: str) -> IPAddress | None:
    """The address a host written as an IP address names, read as the resolver reads it; None for a name."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a packet to this IPv6 address may end up at (NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    embedded = []
    if any(address in network for network in _NAT64):
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)
    return embedded


def _holder(address: IPAddress, networks: list[IPNetwork]) -> IPNetwork | None:
    return next((network for network in networks if address.version == network.version and address in network), None)


def _built_in_refusal(address: IPAddress) -> str | None:
    for network, what in BUILT_IN_DENIED:
        if address.version == network.version and address in network:
            return f"{what} {network}"
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "not a public address"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why the policy refuses to connect to ``address``, naming the network and the setting; None when allowed.

    ``OUTBOUND_URL_DENIED_NETWORKS`` refuses whatever else allows; then
    ``OUTBOUND_URL_ALLOWED_NETWORKS`` allows what the built-in list
    (:data:`BUILT_IN_DENIED`) refuses. An IPv4-mapped IPv6 address is its
    IPv4 address; an IPv6 address that embeds an IPv4 one (NAT64, 6to4,
    Teredo) is refused when either is.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        refusal = address_refusal(address.ipv4_mapped)
        return None if refusal is None else f"is IPv4 {address.ipv4_mapped}, which {refusal}"
    # Each address a packet may reach, with how the refusal names it.
    candidates = [(address, "is"), *((ipv4, f"embeds IPv4 {ipv4}, which is") for ipv4 in _embedded_ipv4(address))]
    denied = _networks(settings.OUTBOUND_URL_DENIED_NETWORKS)
    allowed = _networks(settings.OUTBOUND_URL_ALLOWED_NETWORKS)
    for candidate, subject in candidates:
        network = _holder(candidate, denied)
        if network is not None:
            return f"{subject} in denied network {network} (OUTBOUND_URL_DENIED_NETWORKS)"
    for candidate, subject in candidates:
        refusal = None if _holder(candidate, allowed) else _built_in_refusal(candidate)
        if refusal is not None:
            return f"{subject} {refusal}, {_OPT_IN}"
    return None


def _resolve(host: str, port: int | None) -> list[IPAddress]:
    """Every address ``host`` resolves to; a name that does not resolve may resolve later (retryable)."""
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundError(f"cannot resolve host {host!r}: {error}", retryable=True) from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str) -> None:
    """Raise :class:`OutboundRefused` unless the policy lets the platform call ``url``.

    Resolves the host name to check its addresses; raises a retryable
    :class:`OutboundError` when it does not resolve.
    """
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise OutboundRefused(url, "it is not a valid URL") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in _allowed_schemes():
        allowed = ", ".join(sorted(_allowed_schemes())) or "none"
        raise OutboundRefused(
            url, f"scheme {scheme or '(none)'!r} is not allowed (OUTBOUND_URL_ALLOWED_SCHEMES: {allowed})"
        )
    host = (parts.host or "").strip("[]").lower()
    if not host:
        raise OutboundRefused(url, "it has no host")
    if not any(re.fullmatch(pattern, host) for pattern in _allowed_host_patterns()):
        raise OutboundRefused(url, f"host {host!r} matches no pattern in OUTBOUND_URL_ALLOWED_HOSTS")
    literal = literal_ip(host)
    addresses = [literal] if literal is not None else _resolve(host, parts.port)
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None:
            raise OutboundRefused(url, f"address {address} of host {host!r} {refusal}")


def check_url_syntax(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host, or None; no look-ups (for validation at save time)."""
    try:
        parts = parse_url(url.strip())
    except LocationParseError:
        return "must be a valid http or https URL"
    if (parts.scheme or "").lower() not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.host:
        return "must be an http or https URL with a host"
    return None


# --- Checking the address actually connected to --------------------------------------------------


def _check_peer(sock: socket.socket, target: str) -> None:
    """Close the socket and refuse when the policy refuses the address it connected to (the name resolved anew)."""
    address = literal_ip(str(sock.getpeername()[0]))
    refusal = address_refusal(address) if address is not None else "is not an IP address"
    if refusal is not None:
        sock.close()
        raise OutboundRefused(target, f"connected address {address} {refusal}")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, f"{self.host}:{self.port}")
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, f"{self.host}:{self.port}")
        return sock


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    """A transport adapter whose direct connections check the peer address against the denied networks."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- Making a call -------------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    json_body: object = None,
    send_body: bool = False,
    timeout: float,
) -> OutboundResponse:
    """Send one request through the policy; return the response, whatever its status.

    ``headers`` are sent only to ``origin`` (default: ``url``'s): the
    request itself, or any redirect hop, that goes to another scheme, host
    or port goes without them, and the response says so
    (``headers_withheld``). ``send_body`` sends ``json_body`` as JSON
    (``null`` included). ``timeout`` bounds connecting, each read, and
    reading the whole body. Raises :class:`OutboundRefused` when the policy
    refuses a URL (the first or a redirect's), :class:`OutboundError` when no
    response came (``retryable`` for timeouts and connection failures).
    """
    method = method.upper()
    headers = dict(headers or {})
    headers_origin = url_origin(origin or url)
    history: list[str] = []
    with _session() as session:
        while True:
            check_url(url)
            withheld = bool(headers) and (headers_origin is None or url_origin(url) != headers_origin)
            response = _send(session, method, url, {} if withheld else headers, json_body, send_body, timeout)
            response.headers_withheld = withheld
            location = response.headers.get("location")
            follow = method in ("GET", "HEAD") and response.status_code in REDIRECT_STATUSES and location
            if not follow or len(history) >= MAX_REDIRECTS:
                response.history = history
                return response
            history.append(url)
            url = urljoin(url, location)


def url_origin(url: str) -> tuple[str, str, int] | None:
    """A URL's origin: scheme, host (an IP address in its usual form) and port; None when it has none."""
    try:
        parts = parse_url(url.strip())
    except LocationParseError:
        return None
    scheme, host = (parts.scheme or "").lower(), (parts.host or "").strip("[]").lower().rstrip(".")
    if not scheme or not host:
        return None
    address = literal_ip(host)
    return scheme, host if address is None else str(address), parts.port or DEFAULT_PORTS.get(scheme, 0)


def _send(
    session: requests.Session,
    method: str,
    url: str,
    headers: dict[str, str],
    json_body: object,
    send_body: bool,
    timeout: float,
) -> OutboundResponse:
    body = None
    if send_body:
        body = json.dumps(json_body).encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers = {**headers, "Content-Type": "application/json"}
    try:
        prepared = session.prepare_request(requests.Request(method, url, headers=headers, data=body))
        # What goes on the wire is the prepared URL: check it too, should preparing have changed it.
        if prepared.url != url:
            check_url(prepared.url)
        response = session.send(prepared, timeout=timeout, allow_redirects=False, stream=True)
    except (requests.Timeout, requests.ConnectionError) as error:
        raise OutboundError(f"{type(error).__name__}: {error}", retryable=True) from None
    except (requests.RequestException, ValueError) as error:  # an invalid header or URL, among others
        raise OutboundError(f"{type(error).__name__}: {error}") from None
    try:
        content, truncated = _read_body(response, timeout)
    finally:
        response.close()
    return OutboundResponse(response.status_code, CaseInsensitiveDict(response.headers), content, url, truncated)


def _read_body(response: requests.Response, timeout: float) -> tuple[bytes, bool]:
    """Read at most MAX_BODY_BYTES, within ``timeout`` overall (a server may trickle bytes forever)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return b"".join(chunks)[:MAX_BODY_BYTES], True
            if time.monotonic() > deadline:
                raise OutboundError(f"reading the response of {response.url} took over {timeout} s", retryable=True)
    except requests.RequestException as error:
        raise OutboundError(f"reading the response of {response.url}: {error}", retryable=True) from None
    return b"".join(chunks), False
