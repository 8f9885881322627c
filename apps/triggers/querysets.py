"""Querysets with ``restrict(user, action)``: triggers and what they matched are governed by their application."""

from apps.accounts.permissions import RestrictedQuerySet


class TriggerIndexQuerySet(RestrictedQuerySet):
    """Indexed triggers, restricted through their application."""


class TriggerMatchQuerySet(RestrictedQuerySet):
    """The triggers inbound events matched, restricted through the trigger's application."""
