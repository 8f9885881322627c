"""E-mail through Django's mail (SMTP settings EMAIL_HOST, EMAIL_PORT, ...): one plain-text message per notification."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from apps.notifications.transports import Transport, TransportError, register


def recipients(address: str) -> list[str]:
    """The addresses of a subscription (comma-separated); TransportError when one is not an address."""
    found = [item.strip() for item in address.split(",") if item.strip()]
    for item in found:
        try:
            validate_email(item)
        except ValidationError:
            raise TransportError(f"{item!r} is not an e-mail address", retryable=False) from None
    if not found:
        raise TransportError("no e-mail address", retryable=False)
    return found


@register
class EmailTransport(Transport):
    type_name = "email"

    def send(self, delivery, summary, address: str) -> None:
        message = EmailMessage(
            subject=summary.title[:200], body=summary.text, from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients(address), headers={"Message-ID": f"<{delivery.key[:32]}@cdp>"},
        )
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as error:
            raise TransportError(f"the mail server refused the recipients: {error}", retryable=False) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            raise TransportError(f"{type(error).__name__}: {error}", retryable=True) from None
