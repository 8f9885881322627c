"""RQ entry points of notifications (named by dotted path in ``delivery.py``)."""

from __future__ import annotations

from apps.notifications import delivery


def send_delivery(delivery_id: int) -> str:
    """Send one notification (see ``delivery.send_delivery``)."""
    return delivery.send_delivery(delivery_id)
