"""The webhook endpoints, at Spinnaker's paths (git pushes, generic webhooks, CI builds, registry notifications),
and the page of an application's triggers and the events they received.

Each is a plain view without session or CSRF (a sender proves itself with a
signature or a token, never a cookie), wrapped in ``receiving.receive`` for
the bounds and records every endpoint shares.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.permissions import READ
from apps.deployments.models import RegistryAccount
from apps.pipelines.models import Application
from apps.triggers.kinds import docker, git, jenkins, webhook
from apps.triggers.models import TriggerIndex, TriggerMatch
from apps.triggers.receiving import (
    Ignored,
    Inbound,
    Refused,
    authenticate,
    error,
    fire,
    fire_each,
    parse_json,
    receive,
)
from apps.triggers.services import candidates, trigger_secret
from apps.triggers.signatures import bearer_matches, token_matches


def _secret_refusal(row, prove) -> tuple[int, str] | None:
    """A trigger without a secret accepts any well-formed request; one with a secret needs its proof."""
    try:
        secret = trigger_secret(row)
    except Exception as failure:  # noqa: BLE001  (a secret deleted or undecryptable: this trigger refuses)
        return 403, f"the trigger's secret cannot be used: {failure}"
    return None if secret is None else prove(secret)


@csrf_exempt
def git_webhook(request, source: str):
    """``POST /webhooks/git/{github,gitlab,bitbucket,stash}``: a push, in the provider's own payload."""
    if source not in git.SOURCES:
        return error(404, f"no git source {source!r}: one of {', '.join(git.SOURCES)}")

    def handle(inbound: Inbound) -> JsonResponse:
        headers = request.headers
        inbound.delivery_id = git.delivery_id(source, headers)
        payload = parse_json(inbound.body)
        try:
            event, keys = git.PARSERS[source](headers, payload)
        except git.NotAPush as reason:
            raise Ignored(str(reason)) from None
        except ValueError as reason:
            raise Refused(400, str(reason)) from None
        rows = candidates("git", keys)
        accepted, refused = authenticate(rows, lambda row: _secret_refusal(
            row, lambda secret: git.signature_refusal(event.fields["source"], headers, inbound.body, secret)))
        return fire(inbound, event, accepted, refused)

    return receive(request, f"git/{source}", handle)


@csrf_exempt
def generic_webhook(request, source: str):
    """``POST /webhooks/webhook/{source}``: any JSON object; the triggers of that source decide."""
    if not webhook.SOURCE_PATTERN.fullmatch(source):
        return error(404, f"{source!r} is not a webhook source name")

    def handle(inbound: Inbound) -> JsonResponse:
        headers = request.headers
        inbound.delivery_id = headers.get("X-Delivery-Id", "")
        payload = parse_json(inbound.body)
        try:
            event = webhook.parse(source, payload)
        except ValueError as reason:
            pointer, _, message = str(reason).partition(": ")
            raise Refused(400, message, pointer) from None
        rows = candidates("webhook", [source])
        accepted, refused = authenticate(rows, lambda row: _secret_refusal(
            row, lambda secret: webhook.proof_refusal(headers, inbound.body, secret)))
        return fire(inbound, event, accepted, refused)

    return receive(request, f"webhook/{source}", handle)


def endpoint_token_refusal(request, token: str, setting: str) -> None:
    """Refuse (401/403) a request to an endpoint closed by a platform token: none set, none sent, a wrong one."""
    if not token:
        raise Refused(403, f"this endpoint is closed: set {setting} and send it as a bearer token")
    authorization = request.headers.get("Authorization", "")
    sent = request.GET.get("token")
    if not authorization and sent is None:
        raise Refused(401, f"send {setting} as Authorization: Bearer <token>")
    if not (bearer_matches(authorization, token) or (sent is not None and token_matches(sent, token))):
        raise Refused(403, f"the token does not match {setting}")


@csrf_exempt
def jenkins_webhook(request, master: str):
    """``POST /webhooks/jenkins/{master}``: a build phase, as the Jenkins Notification plugin posts it."""

    def handle(inbound: Inbound) -> JsonResponse:
        endpoint_token_refusal(request, settings.TRIGGER_CI_TOKEN, "TRIGGER_CI_TOKEN")
        payload = parse_json(inbound.body)
        try:
            event, keys = jenkins.parse(master, payload)
        except jenkins.NotFinished as reason:
            raise Ignored(str(reason)) from None
        except ValueError as reason:
            pointer, _, message = str(reason).partition(": ")
            raise Refused(400, message, pointer) from None
        inbound.delivery_id = f"{event.key}#{event.fields['buildNumber']}"
        return fire(inbound, event, candidates("jenkins", keys), [])

    return receive(request, f"jenkins/{master}", handle)


@csrf_exempt
def docker_notifications(request, account: str):
    """``POST /webhooks/docker/{account}``: a registry's notification envelope; tagged manifest pushes fire."""

    def handle(inbound: Inbound) -> JsonResponse:
        endpoint_token_refusal(request, settings.TRIGGER_REGISTRY_TOKEN, "TRIGGER_REGISTRY_TOKEN")
        registry = RegistryAccount.objects.filter(name=account).first()
        if registry is None:
            raise Refused(404, f"there is no registry account {account!r}")
        try:
            pushes, total = docker.manifest_pushes(parse_json(inbound.body))
        except ValueError as reason:
            pointer, _, message = str(reason).partition(": ")
            raise Refused(400, message, pointer) from None
        if not pushes:
            raise Ignored(f"none of the {total} event(s) is a tagged manifest push")
        events = [(event_id, docker.image_event(registry, repository, tag, digest))
                  for event_id, repository, tag, digest in pushes]
        return fire_each(inbound, events)

    return receive(request, f"docker/{account}", handle)


EVENTS_SHOWN = 100


@login_required
def application_triggers(request, name: str):
    """An application's triggers (when each last fired, its last refusal) and the latest events they matched."""
    application = get_object_or_404(Application.objects.restrict(request.user, READ), name=name)
    triggers = TriggerIndex.objects.filter(application=application).select_related("pipeline").order_by(
        "pipeline__name", "position")
    matches = TriggerMatch.objects.filter(application=application).select_related("event").order_by("-id")
    return render(request, "triggers/application.html", {
        "application": application, "triggers": list(triggers), "matches": list(matches[:EVENTS_SHOWN]),
    })
