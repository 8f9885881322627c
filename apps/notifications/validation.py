"""What a subscription must be, in Spinnaker's shape: a known ``type``, an ``address``, ``when`` from the known moments.

Used for an application's subscriptions (API) and, through the pipeline
validators, for a pipeline's and a stage's ``notifications``; every problem
names its field with a JSON pointer.
"""

from __future__ import annotations

from apps.notifications.choices import MOMENTS, TargetType
from apps.pipelines.problems import Problem, pointer_join

MAX_ADDRESS = 2000
MAX_TEXT = 4000


def _address_problems(notification: dict, pointer: str) -> list[Problem]:
    address = notification.get("address")
    where = pointer_join(pointer, "address")
    if not isinstance(address, str) or not address.strip():
        return [Problem(where, "is required: a channel, e-mail addresses or a URL")]
    if len(address) > MAX_ADDRESS:
        return [Problem(where, f"must be at most {MAX_ADDRESS} characters")]
    if notification.get("type") in ("webhook", "microsoftteams", "googlechat") and "${" not in address and \
            not address.startswith(("http://", "https://")):
        return [Problem(where, "must be an http or https URL")]
    return []


def _message_problems(message, pointer: str) -> list[Problem]:
    where = pointer_join(pointer, "message")
    if message is None:
        return []
    if not isinstance(message, dict):
        return [Problem(where, "must be an object of moments, each {\"text\": ...}")]
    problems = []
    for moment, entry in message.items():
        text = entry.get("text") if isinstance(entry, dict) else None
        if moment not in MOMENTS:
            problems.append(Problem(pointer_join(where, moment), f"is not a moment ({', '.join(MOMENTS)})"))
        elif not isinstance(text, str) or len(text) > MAX_TEXT:
            problems.append(Problem(pointer_join(where, moment, "text"),
                                    f"must be a text of at most {MAX_TEXT} characters"))
    return problems


def notification_problems(notification, pointer: str) -> list[Problem]:
    """Why ``notification`` cannot be sent, each at its pointer; [] when it can."""
    if not isinstance(notification, dict):
        return [Problem(pointer, "must be an object")]
    kind = notification.get("type")
    if kind not in TargetType.values:
        return [Problem(pointer_join(pointer, "type"), f"must be one of {', '.join(TargetType.values)}")]
    problems = _address_problems(notification, pointer)
    when = notification.get("when")
    if not isinstance(when, list) or not when:
        problems.append(Problem(pointer_join(pointer, "when"), f"must list one or more of {', '.join(MOMENTS)}"))
    else:
        problems += [Problem(pointer_join(pointer, "when", index), f"is not one of {', '.join(MOMENTS)}")
                     for index, moment in enumerate(when) if moment not in MOMENTS]
    return problems + _message_problems(notification.get("message"), pointer)


def document_problems(doc: dict) -> list[Problem]:
    """The problems of a pipeline document's notifications, its stages' included, for the kinds sent here.

    A kind this platform does not send (Spinnaker has more: sms, pubsub, ...) is kept as written and
    shown as not sent, so a Spinnaker export still saves.
    """
    problems: list[Problem] = []
    places = [("/notifications", doc.get("notifications"))]
    stages = doc.get("stages")
    for index, stage in enumerate(stages if isinstance(stages, list) else []):
        if isinstance(stage, dict):
            places.append((pointer_join("/stages", index, "notifications"), stage.get("notifications")))
    for pointer, notifications in places:
        for position, notification in enumerate(notifications if isinstance(notifications, list) else []):
            if isinstance(notification, dict) and notification.get("type") in TargetType.values:
                problems += notification_problems(notification, pointer_join(pointer, position))
    return problems
