"""``manage.py pipeline``: validate, save, execute, show, judge and steer pipelines from the command line.

Modelled on Spinnaker's ``spin`` so its users feel at home. Exit status 0
means success; 1 means the input or the request was refused (problems are
printed one per line as ``pointer: message``); executing with ``--wait``
exits 0 only when the execution SUCCEEDED.
"""

import getpass
import json
import os
import sys
import time
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.audit import Actor
from apps.accounts.models import AuditSource
from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.definition import parse_document, validate_pipeline
from apps.pipelines.documents import execution_document
from apps.pipelines.evaluation import evaluate_batch
from apps.pipelines.models import Execution, Pipeline
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.secrets.services import unknown_secret_problems
from apps.pipelines.services import (
    ActionRefused,
    do_cancel_execution,
    do_judge_stage,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_save_pipeline,
    do_skip_wait,
    do_start_execution,
)


def operating_system_user() -> str:
    """Who ran the command on this machine, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the process's uid (a bare container)
        return f"uid-{os.getuid()}"


# The command line acts with the operator's shell access, recorded as the operating system user who ran it
# ("cli:root"); people elsewhere use the ``cdp`` command, which acts as its token's user.
CLI_USER = Actor(username=f"cli:{operating_system_user()}", source=AuditSource.CLI)


class Command(BaseCommand):
    help = "Validate, save, execute, show and judge pipelines."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        validate = actions.add_parser("validate", help="Check a pipeline file (JSON or YAML) without saving it.")
        validate.add_argument("file")

        save = actions.add_parser("save", help="Create or update a pipeline from a file; prints its id.")
        save.add_argument("file")

        execute = actions.add_parser("execute", help="Start an execution; prints its id.")
        execute.add_argument("application")
        execute.add_argument("name")
        execute.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        execute.add_argument("--wait", action="store_true", help="Wait for the end and print the execution JSON.")
        execute.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS")

        show = actions.add_parser("show", help="Print an execution's JSON.")
        show.add_argument("execution_id")

        judge = actions.add_parser("judge", help="Continue or stop a manual judgment stage.")
        judge.add_argument("execution_id")
        judge.add_argument("stage_ref_id")
        decision = judge.add_mutually_exclusive_group(required=True)
        decision.add_argument("--continue", dest="decision", action="store_const", const="continue")
        decision.add_argument("--stop", dest="decision", action="store_const", const="stop")
        judge.add_argument("--input", default=None)
        judge.add_argument("--comment", default="", help="Why; kept with the stage.")

        skip = actions.add_parser("skip-wait", help="End a running wait, or a wait for an execution window, now.")
        skip.add_argument("execution_id")
        skip.add_argument("stage_ref_id")

        cancel = actions.add_parser("cancel", help="Cancel an execution.")
        cancel.add_argument("execution_id")
        cancel.add_argument("--reason", default="")

        pause = actions.add_parser("pause", help="Pause a running execution.")
        pause.add_argument("execution_id")

        resume = actions.add_parser("resume", help="Resume a paused execution.")
        resume.add_argument("execution_id")

        evaluate = actions.add_parser(
            "eval", help="Evaluate expressions: a JSON list of {expression, context, stages?, currentStageContext?}."
        )
        evaluate.add_argument("--batch", required=True, metavar="FILE", help="The JSON file ('-' reads stdin).")

        restart = actions.add_parser("restart", help="Run a finished stage and everything after it again.")
        restart.add_argument("execution_id")
        restart.add_argument("stage_ref_id")

    def handle(self, *args, action, **options):
        handler = getattr(self, "handle_" + action.replace("-", "_"))
        try:
            return handler(**options)
        except InvalidDocument as invalid:
            self._fail(invalid.problems)
        except ActionRefused as refused:
            raise CommandError(str(refused)) from None

    def _fail(self, problems: list[Problem]) -> None:
        for problem in problems:
            self.stderr.write(str(problem))
        sys.exit(1)

    def _print_json(self, document: dict) -> None:
        self.stdout.write(json.dumps(document, indent=2, sort_keys=False))

    def _read(self, file: str) -> dict:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        return parse_document(path.read_bytes())

    def _execution(self, execution_id: str) -> Execution:
        try:
            key = uuid.UUID(execution_id)
        except ValueError:
            raise CommandError(f"{execution_id!r} is not an execution id") from None
        execution = Execution.objects.select_related("application").filter(id=key).first()
        if execution is None:
            raise CommandError(f"no execution {execution_id}")
        return execution

    def handle_validate(self, file, **options):
        document = self._read(file)
        problems = validate_pipeline(document)
        problems = problems or unknown_secret_problems(document)
        if problems:
            self._fail(problems)
        self.stdout.write("valid")

    def handle_save(self, file, **options):
        pipeline, created = do_save_pipeline(self._read(file), user=CLI_USER)
        self.stdout.write(str(pipeline.id))

    def handle_execute(self, application, name, param, wait, timeout, **options):
        pipelines = Pipeline.objects.select_related("application")
        pipeline = pipelines.filter(application__name__iexact=application, name=name).first()
        if pipeline is None:
            raise CommandError(f"no pipeline {name!r} in application {application!r}")
        parameters = {}
        for item in param:
            key, separator, value = item.partition("=")
            if not separator or not key:
                self._fail([Problem("/parameters", f"--param {item!r} is not KEY=VALUE")])
            parameters[key] = value
        execution = do_start_execution(pipeline, parameters=parameters, user=CLI_USER)
        if not wait:
            self.stdout.write(str(execution.id))
            return
        execution = self._wait_for_end(execution, timeout)
        self._print_json(execution_document(execution))
        if execution.status != Status.SUCCEEDED:
            sys.exit(1)

    def _wait_for_end(self, execution: Execution, timeout: float) -> Execution:
        deadline = time.monotonic() + timeout
        while execution.status not in COMPLETE:
            if time.monotonic() > deadline:
                self.stderr.write(f"execution {execution.id} still {execution.status} after {timeout:g} s")
                self._print_json(execution_document(execution))
                sys.exit(1)
            time.sleep(0.2)
            execution.refresh_from_db()
        return execution

    def handle_eval(self, batch, **options):
        """Print one {"value": ...} (with "summary" when text was left) or {"error": ...} per entry, in order."""
        text = sys.stdin.read() if batch == "-" else Path(batch).read_text(encoding="utf-8")
        try:
            entries = json.loads(text)
        except ValueError as error:
            self._fail([Problem("", f"is not JSON: {error}")])
        self._print_json(evaluate_batch(entries))

    def handle_show(self, execution_id, **options):
        self._print_json(execution_document(self._execution(execution_id)))

    def handle_judge(self, execution_id, stage_ref_id, decision, input, comment, **options):
        execution = self._execution(execution_id)
        do_judge_stage(execution.id, stage_ref_id, decision=decision, user=CLI_USER, judgment_input=input,
                       comment=comment)
        self._print_json(execution_document(self._execution(execution_id)))

    def handle_skip_wait(self, execution_id, stage_ref_id, **options):
        execution = self._execution(execution_id)
        do_skip_wait(execution.id, stage_ref_id, user=CLI_USER)
        self._print_json(execution_document(self._execution(execution_id)))

    def handle_cancel(self, execution_id, reason, **options):
        do_cancel_execution(self._execution(execution_id).id, user=CLI_USER, reason=reason)
        self._print_json(execution_document(self._execution(execution_id)))

    def handle_pause(self, execution_id, **options):
        do_pause_execution(self._execution(execution_id).id, user=CLI_USER)
        self._print_json(execution_document(self._execution(execution_id)))

    def handle_resume(self, execution_id, **options):
        do_resume_execution(self._execution(execution_id).id, user=CLI_USER)
        self._print_json(execution_document(self._execution(execution_id)))

    def handle_restart(self, execution_id, stage_ref_id, **options):
        do_restart_stage(self._execution(execution_id).id, stage_ref_id, user=CLI_USER)
        self._print_json(execution_document(self._execution(execution_id)))
