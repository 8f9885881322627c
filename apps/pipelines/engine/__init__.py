"""The pipeline engine: a state machine driven by small, idempotent RQ jobs.

Two kinds of message move an execution forward (entry points in ``jobs.py``,
queued by ``enqueue.py``):

* ``start_execution(execution_id)`` marks a new execution RUNNING and starts
  its first stages (and, with inline execution on, runs the first one's
  steps in the same job);
* ``run_stage(stage_id, token)`` runs one step of a RUNNING stage's task;
  when the task is done, the stage is completed and the execution is
  *advanced*: a reconciliation of the whole execution from the database,
  which any number of duplicate or late messages cannot upset.

Transactions and locks. Each step locks what it changes and enqueues the
next messages only after it commits, so a worker never sees work that was
rolled back. Lock order: a Pipeline row, then an Execution row, then its
StageExecution rows, never the other way round. Duplicate messages carry a
stale ``run_token`` and do nothing.

The modules, each depending only on those above it:

* :mod:`.dispatch` — the after-commit work (jobs, cancel hooks, live events);
* :mod:`.errors` — phases of a step, transient errors, the error shape;
* :mod:`.composite` — composite stages: their tasks, the synthetic stages
  they plan before and after them, what their parent does when those end,
  and what a restart among them reruns;
* :mod:`.graph` — advancing: starting stages, halting, completing; the lock
  order in full;
* :mod:`.starts` — starting an execution, or keeping it waiting (BUFFERED)
  behind a running one of its pipeline;
* :mod:`.recovery` — recording a crash as a stage's (or an execution's)
  failure in a fresh transaction, so no step can wedge the engine;
* :mod:`.locking` — the stage-row lock a step takes (with the stages it
  alone may start), and a step for a stage whose execution is not running;
* :mod:`.evaluation` — finishing the start of a stage whose inputs hold
  expressions, evaluated with no lock held under the token its start claimed;
* :mod:`.steps` — running a stage's step: claims for I/O, results, timeouts,
  execution windows; run tokens;
* :mod:`.control` — acting on an execution: wake, cancel, pause, resume,
  restart, and the cancel hooks of canceled stages;
* :mod:`.sweeper` — recovering work whose message went missing.

The engine never imports the services (they import it) nor ``jobs.py``
(which imports it); stage types get what they may call beyond their stage
through the :class:`~apps.pipelines.stages.StageRuntime` ``jobs.py`` passes in.
"""

from apps.pipelines.engine.composite import downstream_closure, restart_scope
from apps.pipelines.engine.control import (
    cancel_execution,
    pause_execution,
    restart_stage,
    resume_execution,
    run_cancel_hook,
    schedule_now,
    wake_stage,
)
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.graph import cancel_running_stages, cancel_stage, failure_status, lock_execution
from apps.pipelines.engine.recovery import advance_execution, start_execution, start_waiting
from apps.pipelines.engine.steps import run_stage, run_stage_job, start_execution_job
from apps.pipelines.engine.sweeper import sweep

__all__ = [
    "Dispatch",
    "advance_execution",
    "cancel_execution",
    "cancel_running_stages",
    "cancel_stage",
    "downstream_closure",
    "failure_status",
    "lock_execution",
    "pause_execution",
    "restart_scope",
    "restart_stage",
    "resume_execution",
    "run_cancel_hook",
    "run_stage",
    "run_stage_job",
    "schedule_now",
    "start_execution",
    "start_execution_job",
    "start_waiting",
    "sweep",
    "wake_stage",
]
