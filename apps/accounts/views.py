"""The dashboard's account pages: the activity (audit) log and the user's own API tokens.

Signing in and out are Django's views with our template (``apps/accounts/urls.py``).
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.audit import Actor, record
from apps.accounts.filtersets import AuditEventFilterSet
from apps.accounts.models import ApiToken, AuditEvent, AuditSource
from apps.accounts.permissions import READ
from apps.accounts.services import do_create_token, do_revoke_token

EVENTS_PER_PAGE = 50


def readable_application_names(user):
    """The names of the applications the user may read, for the filter (the model is the audit log's, by name)."""
    applications = AuditEvent._meta.get_field("application").related_model.objects
    return applications.restrict(user, READ).order_by("name").values_list("name", flat=True)


@login_required
def activity(request):
    """The audit log, newest first, filtered by application, action, actor, source and time; paginated."""
    filterset = AuditEventFilterSet(request.GET or None, queryset=AuditEvent.objects.restrict(request.user, READ))
    page = Paginator(filterset.qs.order_by("-created_at", "-id"), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "page": page,
        "query": query.urlencode(),
        "applications": readable_application_names(request.user),
        "sources": AuditSource.choices,
    }
    return render(request, "accounts/activity.html", context)


class TokenForm(forms.Form):
    """A new API token: its name, unique among the user's tokens, and when it expires (never, if left empty)."""

    name = forms.CharField(max_length=100)
    expires_at = forms.DateTimeField(
        required=False, label="Expires", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if ApiToken.objects.filter(user=self.user, name=name).exists():
            raise forms.ValidationError("A token with this name exists already.")
        return name

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return expires_at


def issue_token(request, form: TokenForm) -> str | None:
    """Issue the token the form describes, audited; the token itself, or None if the name was just taken."""
    try:
        with transaction.atomic():
            row, token = do_create_token(request.user, form.cleaned_data["name"],
                                         expires_at=form.cleaned_data["expires_at"])
            record("token.created", Actor.from_request(request, source=AuditSource.WEB), object_type="token",
                   object_id=row.pk, details={"user": request.user.username, "name": row.name,
                                              "prefix": row.key_prefix})
    except IntegrityError:
        form.add_error("name", "A token with this name exists already.")
        return None
    return token


@login_required
def tokens(request):
    """The user's API tokens; a new one is shown once, on the page that issues it."""
    form = TokenForm(request.POST if request.method == "POST" else None, user=request.user)
    new_token = issue_token(request, form) if request.method == "POST" and form.is_valid() else None
    if new_token is not None:
        form = TokenForm(user=request.user)
    context = {"form": form, "new_token": new_token, "tokens": ApiToken.objects.filter(user=request.user)}
    response = render(request, "accounts/tokens.html", context)
    if new_token is not None:
        response["Cache-Control"] = "no-store"  # the token must not be kept in any cache
    return response


@login_required
@require_POST
def revoke_token(request, token_id: int):
    """Revoke one of the user's tokens (another user's answers 404)."""
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    with transaction.atomic():
        if token.revoked_at is None:
            record("token.revoked", Actor.from_request(request, source=AuditSource.WEB), object_type="token",
                   object_id=token.pk, details={"user": request.user.username, "name": token.name})
        do_revoke_token(token)
    messages.success(request, f"Revoked the token {token.name}.")
    return redirect("accounts:tokens")
