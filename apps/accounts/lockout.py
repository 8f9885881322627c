"""Sign-in lockout (django-axes, configured in settings): the lockout page and the audit trail.

The client's address is ``apps.accounts.audit.client_ip``, the one the audit log and the API's rate limits use.

A failed sign-in is audited as ``login.failed``; the failure that reaches
LOGIN_FAILURE_LIMIT for a user name or an address as ``login.locked_out``;
attempts refused while locked are not recorded one by one (an attacker would
fill the log). An administrator unlocks from the admin's "Sign-in attempts"
page (audited as ``login.unlocked``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render

from apps.accounts.audit import Actor, client_ip, record
from apps.accounts.models import AuditSource


def lockout_period() -> str:
    """LOGIN_LOCKOUT_SECONDS in words: "15 minutes"."""
    seconds = settings.LOGIN_LOCKOUT_SECONDS
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def lockout_message() -> str:
    return (f"Too many failed sign-in attempts: signing in is refused for {lockout_period()}, even with the "
            "right password. An administrator can unlock it sooner.")


def lockout_response(request, original_response=None, credentials=None):
    """The sign-in page, answered 429 with the reason and Retry-After, instead of the page the attempt got."""
    username = request.POST.get("username", "")[:150] if request.method == "POST" else ""
    form = AuthenticationForm(request, initial={"username": username})
    response = render(request, "registration/login.html", {"form": form, "lockout": lockout_message()}, status=429)
    response["Retry-After"] = str(settings.LOGIN_LOCKOUT_SECONDS)
    return response


def _actor(request, username: str) -> Actor:
    source = AuditSource.ADMIN if request.path.startswith("/admin/") else AuditSource.WEB
    return Actor(username=username[:150], source=source, ip_address=client_ip(request))


def audit_failed_login(sender, credentials, request=None, **kwargs):
    """Record a failed sign-in, and the lockout it caused; connected after axes' receiver, which counts it.

    Axes sets ``axes_failures_since_start`` on a failure it counted, and
    leaves it None on an attempt it refused because of a lockout in force.
    """
    if request is None or getattr(request, "axes_failures_since_start", None) is None:
        return
    username = str(credentials.get("username") or "")
    actor = _actor(request, username)
    record("login.failed", actor, object_type="user", object_id=username[:64],
           details={"failures": request.axes_failures_since_start})
    if getattr(request, "axes_locked_out", False):
        record("login.locked_out", actor, object_type="user", object_id=username[:64],
               details={"failure_limit": settings.LOGIN_FAILURE_LIMIT,
                        "lockout_seconds": settings.LOGIN_LOCKOUT_SECONDS})
