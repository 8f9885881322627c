"""What a notification can be: its kinds of target, the moments it is sent at, how its delivery went."""

from django.db import models


class TargetType(models.TextChoices):
    """Where a notification goes, named as Spinnaker's ``notifications[].type``."""

    SLACK = "slack"
    EMAIL = "email"
    MICROSOFT_TEAMS = "microsoftteams"
    GOOGLE_CHAT = "googlechat"
    WEBHOOK = "webhook"


class DeliveryStatus(models.TextChoices):
    """Where one notification's delivery stands: waiting for its (next) try, being sent, or done either way."""

    PENDING = "PENDING"
    SENDING = "SENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class ChatOutcome(models.TextChoices):
    """What became of a request from Slack (a button click or a slash command)."""

    DONE = "done"
    REFUSED = "refused"  # signed, but the person may not (unlinked, no permission, bad input)
    FORGED = "forged"  # the signature or its timestamp did not check out: nothing was read from it


# The moments (Spinnaker's ``when``) a subscription may name, by where they are written.
PIPELINE_MOMENTS = ("pipeline.starting", "pipeline.complete", "pipeline.failed")
STAGE_MOMENTS = ("stage.starting", "stage.complete", "stage.failed")
JUDGMENT_MOMENTS = ("manualJudgment", "manualJudgmentContinue", "manualJudgmentStop")
MOMENTS = PIPELINE_MOMENTS + STAGE_MOMENTS + JUDGMENT_MOMENTS
