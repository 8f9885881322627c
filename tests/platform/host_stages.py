"""A stage type for the tests only that records where its step ran: the process and its network namespace.

Registered in worker processes through STAGE_TYPE_MODULES, and in the test
process by :func:`registered` (saving a pipeline checks its stage types).
"""

import os
from contextlib import contextmanager
from pathlib import Path

from apps.pipelines.stages import StageType, TaskResult, register, unregister


class WhereAmIStage(StageType):
    """Succeeds with outputs naming the process that ran it: pid, network namespace, working directory."""

    type_name = "testWhereAmI"

    def run(self, stage, scope, runtime) -> TaskResult:
        return TaskResult.succeeded(outputs={
            "pid": os.getpid(),
            "netns": Path("/proc/self/ns/net").stat().st_ino,
            "cwd": os.getcwd(),
        })


register(WhereAmIStage)


@contextmanager
def registered():
    """The stage type registered in this process for the duration (a test's fixture)."""
    register(WhereAmIStage)
    try:
        yield
    finally:
        unregister(WhereAmIStage.type_name)
