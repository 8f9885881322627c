"""Stage types: one class per Spinnaker stage ``type``, registered by name.

Other apps register their own stage types in their ``AppConfig.ready()`` by
importing a module that uses :func:`register`, so the engine never needs to
know about Docker, Kubernetes or HTTP.
"""

from apps.pipelines.stages.base import (
    StageType,
    Task,
    TaskResult,
    all_stage_types,
    get_stage_type,
    register,
    unregister,
)
from apps.pipelines.stages.runtime import ExecutionSummary, StageRuntime

__all__ = [
    "ExecutionSummary", "StageRuntime", "StageType", "Task", "TaskResult", "all_stage_types", "get_stage_type",
    "register", "unregister",
]
