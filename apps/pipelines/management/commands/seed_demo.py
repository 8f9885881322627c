"""``manage.py seed_demo``: the demo application, its pipeline, an admin login, and one running execution.

The pipeline is ``demo/deliver.yml`` as the registered demo hooks change it
(``apps.pipelines.demo_hooks``): with a reachable Docker engine it bakes and
deploys the demo application red/black; each hook says what it did.

Idempotent: the admin keeps the password it was given the first time (kept
in ``var/demo-admin-password``); the pipeline is saved again (a new revision
only when it changed); an execution is started unless one is still running.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.pipelines.choices import ACTIVE, Status
from apps.pipelines.definition import parse_document
from apps.pipelines.demo_hooks import apply_demo_hooks
from apps.pipelines.models import Pipeline
from apps.pipelines.services import do_save_pipeline, do_start_execution

DEMO_PIPELINE = Path(__file__).resolve().parents[2] / "demo" / "deliver.yml"
ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the demo application and pipeline and an admin login, and start the demo pipeline."

    def add_arguments(self, parser):
        parser.add_argument("--no-execution", action="store_true", help="Do not start the demo pipeline.")

    def handle(self, *args, no_execution=False, **options):
        password = self._ensure_admin()
        pipeline = self._ensure_pipeline()
        running = pipeline.executions.filter(status__in=[Status.NOT_STARTED, *ACTIVE]).exists()
        if not no_execution and not running:
            execution = do_start_execution(pipeline, user=ADMIN_USERNAME)
            self.stdout.write(f"Started demo execution {execution.id}")
        self.stdout.write(f"Admin login: {ADMIN_USERNAME} / {password}")

    def _ensure_admin(self) -> str:
        password_file = Path(settings.VAR_DIR) / "demo-admin-password"
        user_model = get_user_model()
        user = user_model.objects.filter(username=ADMIN_USERNAME).first()
        if user is not None and password_file.exists():
            return password_file.read_text().strip()
        password = secrets.token_urlsafe(12)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        if user is None:
            user_model.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        return password

    def _ensure_pipeline(self) -> Pipeline:
        document, lines = apply_demo_hooks(parse_document(DEMO_PIPELINE.read_text()))
        for line in lines:
            self.stdout.write(line)
        existing = Pipeline.objects.filter(application__name=document["application"], name=document["name"]).first()
        if existing is not None:
            unchanged = {k: v for k, v in existing.definition.items() if k != "id"} == document
            if unchanged:
                return existing
        pipeline, _ = do_save_pipeline(document, user=ADMIN_USERNAME)
        return pipeline
