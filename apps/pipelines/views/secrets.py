"""An application's secrets page: names for its readers; setting, replacing and deleting for its writers.

No page shows a value: the form's value field is always empty, and a set
value goes straight to ``do_set_secret`` (which checks write and audits).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import WRITE, can
from apps.pipelines.models import Application, Secret
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.secrets.references import reference_text
from apps.pipelines.secrets.services import check_permission, do_delete_secret, do_set_secret
from apps.pipelines.views.common import readable, web_actor


class SecretForm(forms.Form):
    """A secret to set: a name the application has gets the new value."""

    name = forms.CharField(max_length=100, help_text="Letters, digits, '.', '_' and '-'; use it as "
                                                     "${#secret('name')} in a webhook stage.")
    value = forms.CharField(widget=forms.PasswordInput(render_value=False), strip=False,
                            help_text="Write-only: once saved it is never shown again.")


@login_required
def application_secrets(request, name: str):
    """The list of the application's secrets, and (for writers) the form that sets one."""
    application = readable(Application.objects.named(name), request.user)
    form = SecretForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        check_permission(web_actor(request), WRITE, application)
        if form.is_valid():
            try:
                _, created = do_set_secret(application, form.cleaned_data["name"], form.cleaned_data["value"],
                                           user=web_actor(request))
            except InvalidDocument as error:
                for problem in error.problems:
                    form.add_error(problem.pointer.strip("/") or None, problem.message)
            else:
                verb = "Created" if created else "Replaced the value of"
                messages.success(request, f"{verb} secret {form.cleaned_data['name']}.")
                return redirect("pipelines:secrets", name=application.name)
    secrets = [(secret, reference_text(secret.name)) for secret in application.secrets.order_by("name")]
    return render(request, "pipelines/secrets.html", {
        "application": application, "secrets": secrets, "form": form,
        "may_write": can(request.user, WRITE, application),
    })


@login_required
@require_POST
def delete_secret(request, name: str, secret: str):
    """Delete one secret (write); pipelines using it fail when they reach it."""
    application = readable(Application.objects.named(name), request.user)
    found = get_object_or_404(Secret.objects.select_related("application"), application=application, name=secret)
    do_delete_secret(found, user=web_actor(request))
    messages.success(request, f"Deleted secret {found.name}.")
    return redirect("pipelines:secrets", name=application.name)
