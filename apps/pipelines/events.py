"""The one emitter of live execution changes, called only after a transaction commits.

Each event carries the execution's ``event_sequence`` (bumped in the same
transaction as the change), so a browser that reconnects can tell which
events it missed and re-read the state.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def execution_group(execution_id) -> str:
    return f"execution.{execution_id}"


def application_group(application_name: str) -> str:
    return f"application.{application_name}"


def publish_execution_change(execution_id, application_name: str, status: str, sequence: int) -> None:
    """Tell subscribers of the execution and of its application that the execution changed.

    A failure to publish never fails the engine step that made the change:
    the database already holds the truth and pages re-read it on reconnect.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    message = {
        "type": "execution.changed",
        "executionId": str(execution_id),
        "application": application_name,
        "status": status,
        "sequence": sequence,
    }
    try:
        send = async_to_sync(_send_to_groups)
        send(layer, [execution_group(execution_id), application_group(application_name)], message)
    except Exception:  # noqa: BLE001  (live updates are best effort; see docstring)
        logger.warning("could not publish change of execution %s", execution_id, exc_info=True)


async def _send_to_groups(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group, message)
