"""System checks of notifications' configuration, shown when a process starts (``manage.py check``, the workers)."""

from django.conf import settings
from django.core import checks

DEVELOPMENT_PUBLIC_URL = "http://127.0.0.1:8000"


@checks.register()
def slack_halves_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Say that Slack is half configured: messages are sent but no click or command can be believed, or
    the other way round."""
    if bool(settings.SLACK_BOT_TOKEN) == bool(settings.SLACK_SIGNING_SECRET):
        return []
    missing = "SLACK_SIGNING_SECRET" if settings.SLACK_BOT_TOKEN else "SLACK_BOT_TOKEN"
    effect = ("judgment buttons and slash commands are refused" if missing == "SLACK_SIGNING_SECRET"
              else "no Slack message can be sent, nor a refused click answered")
    return [checks.Warning(f"{missing} is not set: {effect}.", hint="Set both (see .env.example).",
                           id="notifications.W001")]


@checks.register(deploy=True)
def public_url_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Say, in ``check --deploy``, that notifications link to the development address."""
    if settings.PUBLIC_URL != DEVELOPMENT_PUBLIC_URL:
        return []
    return [checks.Warning(f"PUBLIC_URL is {DEVELOPMENT_PUBLIC_URL}: the links in notifications and Slack answers "
                           "point there.", hint="Set PUBLIC_URL to the address people reach the platform at.",
                           id="notifications.W002")]
