"""Imports the stage types that the pipelines app itself provides, registering them."""

from apps.pipelines.stages import (  # noqa: F401
    check_preconditions,
    evaluate_variables,
    execution_window,
    manual_judgment,
    pipeline,
    wait,
    webhook,
)
