"""The conductor: the one entry point for running a workflow.

A request (a workflow file, document or object, or a template id with parameters) is
prepared into a :class:`~symphony_conductor._plan.Plan` -- loaded, checked against the
installed node types from manifests, validated, its inputs resolved, an implementation chosen
for every node -- and handed to the DAG tracker, which runs it (checkpoints, memoization,
retries). While it runs the conductor publishes ``run.*`` events on the kernel's bus:

=================  ===========================================================================
``run.started``    ``run_id``, ``workflow``, ``source``, ``nodes`` (id, type, kind), ``implementations``
``run.node``       ``run_id``, ``node``, ``type``, ``state``, ``attempt``, ``duration``, ``cached``,
                   ``error``, ``progress`` (counts, percent, ETA)
``run.state``      ``run_id``, ``state`` (running, paused, waiting_for_input), ``reason``
``run.log``        ``run_id``, ``node``, ``level``, ``message``
``run.finished``   ``run_id``, ``state``, ``error``, ``duration``, ``outputs``, ``nodes``, ``progress``
=================  ===========================================================================

Extensions never call each other: what they need goes through the conductor (and its bus API,
:mod:`symphony_conductor._bus`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from symphony.commons.errors import NotFoundError, SymphonyError, ValidationError
from symphony_conductor._plan import Plan, prepare
from symphony_conductor._request import RunRequest

__all__ = ["Conductor", "Run"]

DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024
TERMINAL = frozenset({"completed", "failed", "cancelled"})


class Run:
    """One run the conductor started in this process: its plan, state and outcome."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.id = plan.run_id
        self.state = "pending"
        self.error: str | None = None
        self.outputs: dict[str, dict[str, Any]] = {}
        self.started = time.time()
        self.finished: float | None = None
        self.execution: Any = None
        """The workflow ``Execution`` the DAG tracker drives (once started)."""
        self.cached: set[str] = set()
        """Nodes whose outputs came from the memo (not run again)."""
        self.done = anyio.Event()
        self.scope: anyio.CancelScope | None = None
        self.interrupted = False
        """True when the run was stopped without a terminal state (kernel shut down, Ctrl-C): it can be resumed."""

    @property
    def duration(self) -> float:
        """Seconds from start to finish (or until now)."""
        return (self.finished or time.time()) - self.started

    def summary(self) -> dict[str, Any]:
        """Run id, workflow, source, state and progress (what ``run.list`` returns per run)."""
        progress = self.execution.progress().to_dict() if self.execution is not None else None
        return {
            "run_id": self.id,
            "workflow": self.plan.workflow.name,
            "workflow_id": self.plan.workflow.id,
            "source": self.plan.source,
            "state": self.state,
            "error": self.error,
            "started_at": self.started,
            "finished_at": self.finished,
            "duration": round(self.duration, 6),
            "progress": progress,
        }

    def node_rows(self) -> dict[str, dict[str, Any]]:
        """Node id -> type, state, attempt, duration, cached, error."""
        rows: dict[str, dict[str, Any]] = {}
        snapshot = self.execution.nodes() if self.execution is not None else {}
        for node_id, node in self.plan.workflow.nodes.items():
            run = snapshot.get(node_id)
            rows[node_id] = {
                "type": node.type,
                "state": run.state.value if run is not None else "pending",
                "attempt": run.attempts if run is not None else 0,
                "duration": run.duration if run is not None else None,
                "cached": node_id in self.cached,
                "error": run.error if run is not None else None,
            }
        return rows

    def status(self) -> dict[str, Any]:
        """The summary plus every node's row and, once finished, the outputs."""
        return {
            **self.summary(),
            "plan": self.plan.to_dict(),
            "nodes": self.node_rows(),
            "outputs": self.outputs,
            "interrupted": self.interrupted,
        }


class Conductor:
    """Prepares, starts, watches and steers runs (the ``conductor`` service)."""

    def __init__(
        self,
        kernel: Any,
        *,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        finished_runs: int = 1000,
    ) -> None:
        self.kernel = kernel
        self.max_input_bytes = max_input_bytes
        self.finished_runs = finished_runs
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._closing = False

    @classmethod
    def from_kernel(cls, kernel: Any) -> Conductor:
        """A conductor configured from the kernel's ``[conductor]`` section."""
        try:
            section = dict(kernel.config.section("conductor"))
        except (SymphonyError, KeyError):
            section = {}
        return cls(
            kernel,
            max_input_bytes=int(section.get("max_input_bytes", DEFAULT_MAX_INPUT_BYTES)),
            finished_runs=int(section.get("finished_runs", 1000)),
        )

    # -- preparation ------------------------------------------------------------------------

    @property
    def workflows(self) -> Any:
        """The ``workflow`` service (loading, templates, validation)."""
        return self.kernel.service("workflow")

    def prepare(self, request: RunRequest) -> Plan:
        """Check ``request`` and plan it (nothing runs, no providing plugin is imported).

        Raises :class:`~symphony.commons.errors.NotFoundError` naming an unknown node type
        (and what is installed), :class:`~symphony.commons.errors.ValidationError` for a bad
        parameter, input or workflow.
        """
        return prepare(self.kernel, self.workflows, request)

    def read_input(self, path: str | Path) -> bytes:
        """The bytes of an ``--input NODE=@FILE`` file (a regular file of at most ``max_input_bytes``)."""
        from symphony.commons.fs import read_bytes

        return read_bytes(path, max_size=self.max_input_bytes)

    # -- runs -------------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run ``run_id`` started in this process; :class:`NotFoundError` otherwise."""
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(
                f"no run {run_id!r} in this process",
                code="conductor.run_not_found",
                context={"run_id": run_id, "known": list(self._runs)[-20:]},
                hint="`symphony runs list` lists the runs",
            )
        return run

    def _publish(self, type_: str, payload: Mapping[str, Any]) -> None:
        from symphony.bus import Message

        try:
            self.kernel.bus.publish_nowait(Message(type_, dict(payload)))
        except SymphonyError:
            pass  # a closed bus (kernel shutting down) loses events, never the run

    def _remember(self, run: Run) -> None:
        self._runs[run.id] = run
        finished = [r for r in self._runs.values() if r.done.is_set()]
        for old in finished[: max(0, len(finished) - self.finished_runs)]:
            self._runs.pop(old.id, None)

    async def submit(self, request: RunRequest | Plan) -> Run:
        """Prepare ``request`` and start it in the kernel's task group; return at once.

        The kernel must be running (``async with Kernel.open()``); watch the run with
        ``run.*`` events or :meth:`wait`.
        """
        plan = request if isinstance(request, Plan) else self.prepare(request)
        if plan.run_id in self._runs and not self._runs[plan.run_id].done.is_set():
            raise ValidationError(
                f"run {plan.run_id!r} is already running", code="conductor.run_exists", context={"run_id": plan.run_id}
            )
        run = Run(plan)
        self._remember(run)
        self.kernel.start_soon(self._drive, run, name=f"symphony-conductor run {run.id}")
        return run

    async def run(self, request: RunRequest | Plan) -> Run:
        """Prepare, start and wait for a run; return it finished (or interrupted)."""
        run = await self.submit(request)
        await run.done.wait()
        return run

    async def wait(self, run_id: str) -> Run:
        """Wait until run ``run_id`` ends."""
        run = self.get(run_id)
        await run.done.wait()
        return run

    def status(self, run_id: str) -> dict[str, Any]:
        """The state of run ``run_id`` (nodes, progress, outputs)."""
        return self.get(run_id).status()

    def list_runs(self, *, state: str | None = None) -> list[dict[str, Any]]:
        """Summaries of the runs of this process, oldest first, optionally only those in ``state``."""
        return [r.summary() for r in self._runs.values() if state is None or r.state == state]

    def interrupt(self, run_id: str) -> None:
        """Stop run ``run_id`` now without ending it: running nodes are cancelled, its
        checkpoints stay, and ``resume`` finishes it later (what Ctrl-C does)."""
        run = self.get(run_id)
        run.interrupted = True
        if run.scope is not None:
            run.scope.cancel()

    async def aclose(self) -> None:
        """Interrupt every run still going (they stay resumable) and wait for them to stop."""
        self._closing = True
        for run in list(self._runs.values()):
            if not run.done.is_set():
                self.interrupt(run.id)
        with anyio.move_on_after(10):
            for run in list(self._runs.values()):
                await run.done.wait()
