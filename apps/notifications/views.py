"""Slack's endpoints (button clicks, slash commands), the Slack link page and the deliveries page.

The Slack endpoints take no session and no CSRF token: the request's
signature is its proof (``chatops.verify``); an unsigned, stale, replayed or
badly signed request is answered 401 with the reason and recorded.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.accounts.audit import Actor, client_ip
from apps.accounts.models import AuditSource
from apps.accounts.permissions import READ
from apps.notifications import chatops, commands
from apps.notifications.choices import ChatOutcome
from apps.notifications.filtersets import DeliveryFilterSet
from apps.notifications.models import Delivery

DELIVERIES_PER_PAGE = 50


def _verified(request, endpoint: str) -> chatops.Verified | JsonResponse:
    try:
        signature_hash = chatops.verify(request.body, request.headers.get("X-Slack-Request-Timestamp"),
                                        request.headers.get("X-Slack-Signature"))
    except chatops.Forged as error:
        chatops.record_request(endpoint, ChatOutcome.FORGED, str(error), ip_address=client_ip(request))
        return JsonResponse({"error": str(error)}, status=401)
    return chatops.Verified(signature_hash, client_ip(request))


@csrf_exempt
@require_POST
def slack_interactions(request):
    """A click on a judgment button (Slack's ``block_actions``), judged as the linked user."""
    verified = _verified(request, "interactions")
    if isinstance(verified, JsonResponse):
        return verified
    try:
        payload = json.loads(request.POST.get("payload") or "")
    except ValueError:
        payload = None
    try:
        done, text = chatops.handle_click(payload, verified)
    except IntegrityError:  # the same signed request twice at once: the other one is being served
        return JsonResponse({"error": chatops.REPLAYED}, status=401)
    return JsonResponse({"response_type": "ephemeral", "replace_original": False, "text": text, "ok": done})


@csrf_exempt
@require_POST
def slack_commands(request):
    """A slash command: ``/deploy APPLICATION PIPELINE key=value ...``, ``/cdp link|status|help``."""
    verified = _verified(request, "commands")
    if isinstance(verified, JsonResponse):
        return verified
    try:
        return JsonResponse(commands.handle_command(request.POST, verified))
    except IntegrityError:  # the same signed request twice at once: the other one is being served
        return JsonResponse({"error": chatops.REPLAYED}, status=401)


@login_required
def slack_link(request):
    """Where a person enters the code ``/cdp link`` gave them, and sees the Slack accounts linked to them."""
    if request.method == "POST":
        actor = Actor.from_request(request, source=AuditSource.WEB)
        try:
            link = chatops.do_redeem_link_code(request.user, request.POST.get("code", ""), actor=actor)
        except chatops.Refused as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Slack user {link.slack_user_id} is now linked to you.")
        return redirect("notifications:slack-link")
    links = request.user.slack_links.order_by("created_at")
    return render(request, "notifications/slack_link.html", {"links": links})


@login_required
def deliveries(request):
    """Every notification of the applications the user reads: target, event, status, attempts and error."""
    readable = Delivery.objects.restrict(request.user, READ).select_related("application").order_by("-id")
    filtered = DeliveryFilterSet(request.GET, queryset=readable)
    page = Paginator(filtered.qs, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "notifications/deliveries.html", {"page": page, "filter": filtered})
