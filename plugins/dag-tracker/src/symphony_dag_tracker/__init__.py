"""Symphony's DAG tracker: runs workflows with retries, timeouts, memoization and durable checkpoints.

    from symphony_dag_tracker import DagTracker

    tracker = DagTracker("/tmp/runs", node_types=registry)
    result = await tracker.run(workflow, inputs={"document": "some text"})
    assert result.ok

It drives the workflow's ``symphony_workflow.Execution``: ready nodes start in priority order
under a global and a per-type concurrency limit; the built-in control nodes (branch, merge,
parallel, join) and conditional edges decide what runs; every transition is appended to an
SQLite checkpoint log, so ``tracker.resume(run_id, workflow)`` finishes a killed run without
redoing completed nodes; pure nodes whose type, implementation version, config and input
digests match an earlier run are taken from the memo table (``cached``). Each node runs per
the workflow model's execution policy, ``Node.policy`` (retries, timeout, fallback, optional,
cache). The package is also a
Symphony plugin: the service ``dag-tracker``.
"""

from __future__ import annotations

from symphony_dag_tracker._checkpoint import CheckpointError, CheckpointLog, LogRecord, RunRecord
from symphony_dag_tracker._executors import (
    Executor,
    LocalExecutor,
    NodeResult,
    NodeTask,
    ProcessExecutor,
    ThreadExecutor,
)
from symphony_dag_tracker._policy import retried, retry_wait
from symphony_dag_tracker._status import NodeStatus, RunResult
from symphony_dag_tracker._tracker import DagTracker, RunHandle, TrackerSettings
from symphony_dag_tracker._values import check_value

__all__ = [
    "CheckpointError",
    "CheckpointLog",
    "DagTracker",
    "Executor",
    "LocalExecutor",
    "LogRecord",
    "NodeResult",
    "NodeStatus",
    "NodeTask",
    "ProcessExecutor",
    "RunHandle",
    "RunRecord",
    "RunResult",
    "ThreadExecutor",
    "TrackerSettings",
    "check_value",
    "retried",
    "retry_wait",
]
