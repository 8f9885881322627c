"""``manage.py slack link USERNAME SLACK_USER_ID``: link a Slack user to a platform user (an operator's way)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.notifications.chatops import do_link_slack_user


class Command(BaseCommand):
    help = "Link Slack users to platform users: `slack link USERNAME SLACK_USER_ID`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        link = sub.add_parser("link", help="Link a Slack user (U...) to a platform user.")
        link.add_argument("username")
        link.add_argument("slack_user_id")

    def handle(self, *args, action: str, username: str, slack_user_id: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        if not slack_user_id.strip() or len(slack_user_id) > 40:
            raise CommandError("SLACK_USER_ID must be Slack's user id (U..., at most 40 characters)")
        do_link_slack_user(user, slack_user_id.strip(), actor=Actor(username="cli", source=AuditSource.CLI))
        self.stdout.write(f"Slack user {slack_user_id.strip()} now acts as {username}.")
