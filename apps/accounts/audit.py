"""Recording who did what: one function, called by the service functions in the same transaction as the change."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.accounts.models import AuditEvent, AuditSource


def client_ip(request) -> str | None:
    """The client's address: the connection's, or with TRUSTED_PROXY_COUNT proxies the one they name.

    The one place the platform reads a client's address: the audit log, the
    sign-in lockout and the API's rate limits all count by it.
    """
    address = request.META.get("REMOTE_ADDR") or None
    forwarded = [item.strip() for item in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if item.strip()]
    if settings.TRUSTED_PROXY_COUNT and forwarded:
        address = forwarded[-min(settings.TRUSTED_PROXY_COUNT, len(forwarded))]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None  # e.g. a Unix socket's peer: nothing worth recording


@dataclass(frozen=True)
class Actor:
    """Who acts, and through what: a person on the web or API, a script, a trigger, the command line.

    ``user`` is the account whose permissions service functions check. An
    actor without one is an operator identity (the command line, the
    system): trusted, as a shell on the server is, and never checked.
    """

    username: str
    source: str = AuditSource.SYSTEM
    ip_address: str | None = None
    user: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_request(cls, request, source: str = AuditSource.API) -> Actor:
        """The user of a web or API request, and the client's address."""
        return cls(username=request.user.username, source=source, ip_address=client_ip(request), user=request.user)

    @classmethod
    def of(cls, user: Actor | str | None) -> Actor:
        """Service functions accept a plain user name (the system acting), a user account, or an Actor."""
        if isinstance(user, Actor):
            return user
        if user is not None and not isinstance(user, str):
            return cls(username=user.get_username(), user=user)
        return cls(username=user or "system")


def record(
    action: str,
    actor: Actor | str | None,
    *,
    application=None,
    object_type: str = "",
    object_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Write one audit event (call it inside the transaction that makes the change)."""
    actor = Actor.of(actor)
    return AuditEvent.objects.create(
        actor=actor.username,
        source=actor.source,
        ip_address=actor.ip_address,
        action=action,
        application=application,
        application_name=application.name if application is not None else "",
        object_type=object_type,
        object_id=str(object_id),
        details=details or {},
    )
