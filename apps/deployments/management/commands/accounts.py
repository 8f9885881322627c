"""``manage.py accounts load FILE``: create or change Docker engine and registry accounts from a YAML file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.deployments.services.account_files import MAX_FILE_BYTES, load_accounts
from apps.pipelines.problems import InvalidDocument


class Command(BaseCommand):
    help = "Load deployment accounts from a YAML file (idempotent; the format is in the README)."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True)
        load = commands.add_parser("load", help="Create or change the accounts a YAML file lists.")
        load.add_argument("file", help="The YAML file ('-' for standard input is not supported).")

    def handle(self, *args, action: str, file: str, **options):
        path = Path(file)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CommandError(f"{file}: over {MAX_FILE_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: {error}") from None
        try:
            report = load_accounts(text, actor=Actor("manage.py accounts", source=AuditSource.CLI))
        except InvalidDocument as error:
            raise CommandError("\n".join(f"{file}#{problem}" for problem in error.problems)) from None
        for name in report.created:
            self.stdout.write(f"created {name}")
        for name in report.updated:
            self.stdout.write(f"applied {name}")
        for name in report.unchanged:
            self.stdout.write(f"unchanged {name}")
