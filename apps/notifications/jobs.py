"""RQ entry points of notifications (named by dotted path in ``delivery.py`` and ``chatops.py``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from apps.notifications import delivery
from apps.notifications.messages import summarize
from apps.notifications.models import SlackMessage
from apps.notifications.transports import TransportError, slack_api
from apps.notifications.transports.slack import Busy, sync_message
from apps.pipelines.models import Execution

logger = logging.getLogger(__name__)


def send_delivery(delivery_id: int) -> str:
    """Send one notification (see ``delivery.send_delivery``)."""
    return delivery.send_delivery(delivery_id)


def answer_privately(channel: str, slack_user_id: str, text: str) -> None:
    """Tell one Slack user something only they see (why their click was refused), with chat.postEphemeral."""
    try:
        client = slack_api.client()
        slack_api.call(client.chat_postEphemeral, channel=channel, user=slack_user_id, text=text[:3000])
    except TransportError as error:
        logger.warning("could not answer Slack user %s: %s", slack_user_id, error)


def refresh_messages(execution_id: str) -> None:
    """Update every Slack message of an execution to show it as it stands (after a judgment from Slack)."""
    execution = Execution.objects.select_related("application").filter(id=execution_id).first()
    if execution is None:
        return
    for row in SlackMessage.objects.filter(execution_id=execution_id).exclude(ts=""):
        try:
            sync_message(execution_id, row.channel, summarize(execution, "manualJudgment", {}))
        except Busy:
            delivery.notification_queue().enqueue_in(timedelta(seconds=1), "apps.notifications.jobs.refresh_messages",
                                      execution_id, result_ttl=0, job_timeout=60)
            return
        except TransportError as error:
            logger.warning("could not update the Slack message of %s in %s: %s", execution_id, row.channel, error)
