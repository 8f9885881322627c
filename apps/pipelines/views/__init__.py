"""The dashboard's pipeline pages: applications, an application's executions, an execution, the pipeline editor.

Every lookup goes through ``restrict(user, READ)`` (anything else is a 404)
and every change through the ``do_*`` service functions, which decide what
the user may do (403 otherwise) and what the state allows; the pages ask the
same rules what to offer (``checks.allowed_actions``): a button the viewer
may not use is not shown, and its endpoint refuses anyway. Pages that change
live render a fragment of themselves (``?fragment=...``) that
``static/js/live.js`` fetches to catch up after a reconnect.
"""

from apps.pipelines.views.applications import application_detail, applications, run_pipeline
from apps.pipelines.views.create import new_application, new_pipeline
from apps.pipelines.views.editor import (
    convert_document,
    describe_notification,
    describe_trigger,
    edit_pipeline,
    pipeline_diff,
    restore_revision,
)
from apps.pipelines.views.executions import (
    StageView,
    evaluate_expression,
    execution_detail,
    graph_layout,
    stage_panel,
)
from apps.pipelines.views.secrets import application_secrets, delete_secret
from apps.pipelines.views.steering import (
    cancel_execution,
    judge_stage,
    pause_execution,
    restart_stage,
    resume_execution,
    skip_wait,
)

__all__ = [
    "StageView", "application_detail", "application_secrets", "applications", "cancel_execution", "convert_document",
    "delete_secret",
    "describe_notification",
    "describe_trigger", "edit_pipeline", "evaluate_expression", "execution_detail", "graph_layout", "judge_stage",
    "new_application", "new_pipeline", "pause_execution",
    "pipeline_diff", "restart_stage", "restore_revision", "resume_execution", "run_pipeline", "skip_wait",
    "stage_panel",
]
