"""Imports the stage types that the pipelines app itself provides, registering them."""

from apps.pipelines.stages import check_preconditions, evaluate_variables, manual_judgment, wait  # noqa: F401
