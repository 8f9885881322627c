"""Changing an application's subscriptions (write on the application), audited; the address is kept encrypted."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.audit import Actor, record
from apps.accounts.permissions import WRITE
from apps.notifications.models import Subscription
from apps.notifications.validation import notification_problems
from apps.pipelines.checks import check_permission
from apps.pipelines.models import Application
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.secrets import crypto


def address_hint(kind: str, address: str) -> str:
    """What people may see of an address: a channel or mailboxes in full, a URL's origin only (it is a credential)."""
    if kind in ("slack", "email"):
        return address[:80]
    scheme, _, rest = address.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/…"[:80]


def do_create_subscription(application: Application, data: dict, *, user: Actor | str) -> Subscription:
    """Subscribe the application (every pipeline of it) to notifications; InvalidDocument names each problem."""
    check_permission(user, WRITE, application)
    problems = notification_problems(data, "")
    if problems:
        raise InvalidDocument(problems)
    address = data["address"].strip()
    with transaction.atomic():
        subscription = Subscription.objects.create(
            application=application, type=data["type"], address_ciphertext=crypto.encrypt(address),
            address_hint=address_hint(data["type"], address), when=list(data["when"]),
            message=data.get("message") or {}, created_by=Actor.of(user).username,
        )
        record("notification.subscribed", user, application=application, object_type="subscription",
               object_id=subscription.pk, details={"type": subscription.type, "when": subscription.when})
    return subscription


def do_delete_subscription(subscription: Subscription, *, user: Actor | str) -> None:
    """Remove an application's subscription (write), audited."""
    check_permission(user, WRITE, subscription.application)
    with transaction.atomic():
        record("notification.unsubscribed", user, application=subscription.application, object_type="subscription",
               object_id=subscription.pk, details={"type": subscription.type})
        subscription.delete()
