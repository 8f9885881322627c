"""The canary configs pages of an application: listed to its readers, added, edited and deleted by its writers.

A config is edited as Kayenta's JSON, in a text box; saving goes through ``do_save_config``, the
API's service, so the page refuses what the API refuses, each problem named by its JSON pointer.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import WRITE, can
from apps.canary.models import CanaryConfig
from apps.canary.presets import HTTP_PRESET, PRESETS, preset
from apps.canary.services import MAX_CONFIG_BYTES, check_write_configs, do_delete_config, do_save_config
from apps.pipelines.models import Application
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.views.common import readable, web_actor


def _pretty(document) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def _parsed(text: str):
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise InvalidDocument([Problem("", f"is over {MAX_CONFIG_BYTES} bytes")])
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidDocument([Problem("", f"is not valid JSON: {error}")]) from None


def _save(request, application, config: CanaryConfig | None):
    """Save the posted document; the saved config, or the problems to show with the text as posted."""
    text = request.POST.get("document", "")
    try:
        saved = do_save_config(application, _parsed(text), actor=web_actor(request), config=config)
    except InvalidDocument as error:
        return None, error.problems, text
    return saved, [], text


@login_required
def application_configs(request, name: str):
    """The application's canary configs, and (for writers) a box to add one, filled with a preset if asked."""
    application = readable(Application.objects.named(name), request.user)
    problems, text = [], _pretty(preset(request.GET.get("preset", "")) or HTTP_PRESET)
    if request.method == "POST":
        check_write_configs(web_actor(request), application)
        saved, problems, text = _save(request, application, None)
        if saved is not None:
            messages.success(request, f"Added canary config {saved.name}.")
            return redirect("canary:config", name=application.name, config_id=saved.pk)
    return render(request, "canary/configs.html", {
        "application": application, "configs": CanaryConfig.objects.filter(application=application),
        "may_write": can(request.user, WRITE, application), "problems": problems, "text": text,
        "presets": sorted(PRESETS),
    }, status=400 if problems else 200)


@login_required
def edit_config(request, name: str, config_id: int):
    """One config as JSON: read by readers, saved by writers (the same checks as the API)."""
    application = readable(Application.objects.named(name), request.user)
    config = get_object_or_404(CanaryConfig, application=application, pk=config_id)
    problems, text = [], _pretty(config.document)
    if request.method == "POST":
        check_write_configs(web_actor(request), application)
        saved, problems, text = _save(request, application, config)
        if saved is not None:
            messages.success(request, f"Saved canary config {saved.name}.")
            return redirect("canary:config", name=application.name, config_id=saved.pk)
    return render(request, "canary/config.html", {
        "application": application, "config": config, "may_write": can(request.user, WRITE, application),
        "problems": problems, "text": text,
    }, status=400 if problems else 200)


@login_required
@require_POST
def delete_config(request, name: str, config_id: int):
    """Delete one config (write); stages naming it fail when they start."""
    application = readable(Application.objects.named(name), request.user)
    config = get_object_or_404(CanaryConfig.objects.select_related("application"), application=application,
                               pk=config_id)
    do_delete_config(config, actor=web_actor(request))
    messages.success(request, f"Deleted canary config {config.name}.")
    return redirect("canary:configs", name=application.name)
