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
from symphony_conductor._admission import Admissions, admit_through
from symphony_conductor._plan import (
    Plan,
    check_node_types,
    choose_implementations,
    installed_node_types,
    load_workflow,
    prepare,
)
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
        """True when the run was stopped from outside (Ctrl-C, kernel shutdown): ``resume`` finishes it."""
        self.handle: Any = None
        """The DAG tracker's handle of this run (steering, node status)."""
        self.resumed_from: str | None = None
        """The run this one continues, when it resumes a cancelled or interrupted one."""

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
            "live": not self.done.is_set(),
        }

    def node_row(self, node_id: str) -> dict[str, Any]:
        """One node: type, state, attempt, duration, cached (from the memo) or restored (from the
        checkpoint of the run it resumes), error, output digests."""
        node = self.plan.workflow.nodes[node_id]
        if self.handle is None:
            return {"type": node.type, "state": "pending", "attempt": 0, "duration": None, "cached": False}
        status = self.handle.node_status(node_id)
        return {
            "type": node.type,
            "state": status.state,
            "attempt": status.attempts,
            "duration": status.duration,
            "cached": bool(status.cached or status.restored),
            "restored": bool(status.restored),
            "error": status.error,
            "digests": dict(status.digests),
        }

    def node_rows(self) -> dict[str, dict[str, Any]]:
        """Every node's :meth:`node_row`."""
        return {node_id: self.node_row(node_id) for node_id in self.plan.workflow.nodes}

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
        self.admissions = Admissions(kernel, self._priority_of)
        """Instrument nodes through ``arbitration`` and ``pool-manager`` (see :mod:`symphony_conductor._admission`)."""

    def _priority_of(self, run_id: str) -> str:
        run = self._runs.get(run_id)
        return run.plan.priority if run is not None else "normal"

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
                f"run {plan.run_id!r} is already running",
                code="conductor.run_exists",
                context={"run_id": plan.run_id},
            )
        run = Run(plan)
        sinks = [_RunEvents(self, run), *self.workflows.sinks()]
        tracker = await self.kernel.aservice("dag-tracker")
        admit_through(tracker, self.admissions)
        run.handle = tracker.prepare(plan.workflow, inputs=dict(plan.inputs), run_id=plan.run_id, sinks=sinks)
        run.execution = run.handle.execution
        self._start(run)
        return run

    def _start(self, run: Run) -> None:
        self._remember(run)
        self.kernel.start_soon(self._drive, run, name=f"symphony-conductor run {run.id}")

    async def resume(self, run_id: str, *, workflow: Any = None, priority: str = "normal") -> Run:
        """Finish run ``run_id``: after a kill its completed nodes are restored from the
        checkpoint log (never run again), after Ctrl-C (cancelled) a new run of the same
        workflow and inputs takes them from the memo. ``workflow`` (e.g. the file given again)
        must equal the one the run started with; a change is refused, naming what changed.
        """
        tracker = await self.kernel.aservice("dag-tracker")
        record = tracker.run_record(run_id)
        if workflow is None:
            workflow = self.workflows.loads(record.workflow)
        elif not hasattr(workflow, "nodes"):
            workflow = load_workflow(self.workflows, RunRequest(workflow=workflow, resume=run_id))[0]
        installed = installed_node_types(self.kernel, self.workflows)
        check_node_types(self.kernel, workflow, installed)
        if record.state == "cancelled":
            return await self._continue(record, workflow, priority)
        if record.state in TERMINAL:
            from symphony.commons.errors import ConflictError

            raise ConflictError(
                f"run {run_id} already {record.state}; nothing to resume",
                code="conductor.resume.finished",
                context={"run_id": run_id, "state": record.state},
                hint=f"`symphony runs retry {run_id} NODE` runs a failed node again"
                if record.state == "failed"
                else "start a new run: completed nodes come from the memo",
            )
        placeholder = Plan(
            run_id, workflow, {}, choose_implementations(self.kernel, workflow, installed), f"resume {run_id}"
        )
        run = Run(placeholder)
        sinks = [_RunEvents(self, run), *self.workflows.sinks()]
        admit_through(tracker, self.admissions)
        run.handle = tracker.resume(run_id, workflow, sinks=sinks)
        run.plan = Plan(
            run_id,
            workflow,
            dict(run.handle.inputs),
            placeholder.implementations,
            f"resume {run_id}",
            priority=priority,
        )
        run.execution = run.handle.execution
        run.resumed_from = run_id
        self._start(run)
        return run

    async def retry(self, run_id: str, node: str) -> Run:
        """Run ``node`` of run ``run_id`` again: in this process while the run is live, else by
        continuing the failed (or cancelled) run as a new run of the same workflow and inputs,
        whose completed nodes come from the memo and whose failed ones run again."""
        live = self._runs.get(run_id)
        if live is not None and not live.done.is_set():
            await self.control(run_id, "retry-node", node=node)
            return live
        record = self._tracker().run_record(run_id)
        workflow = self.workflows.loads(record.workflow)
        if node not in workflow.nodes:
            raise NotFoundError(
                f"run {run_id} has no node {node!r}",
                code="conductor.node_not_found",
                context={"run_id": run_id, "node": node, "nodes": sorted(workflow.nodes)[:50]},
            )
        if record.state not in ("failed", "cancelled"):
            from symphony.commons.errors import ConflictError

            raise ConflictError(
                f"run {run_id} is {record.state}: only a failed or cancelled run is retried",
                code="conductor.retry.not_failed",
                context={"run_id": run_id, "state": record.state},
            )
        return await self._continue(record, workflow)

    async def _continue(self, record: Any, workflow: Any, priority: str = "normal") -> Run:
        """A new run continuing ``record`` (cancelled or failed): same workflow, same inputs."""
        from symphony.commons.errors import ConflictError
        from symphony_workflow import diff

        changes = diff(self.workflows.loads(record.workflow), workflow)
        if not changes.is_empty:
            raise ConflictError(
                f"workflow changed since run {record.run_id} started:\n{changes.summary()}",
                code="conductor.resume.workflow_changed",
                context={"run": record.run_id, "changes": changes.to_dict()},
                hint="resume with the workflow file as it was, or start a new run",
            )
        inputs = _recorded_inputs(record)
        new_id = _next_id(record.run_id)
        while self._recorded(new_id):
            new_id = _next_id(new_id)
        plan = self.prepare(RunRequest(workflow=workflow, inputs=inputs, run_id=new_id, priority=priority))
        run = await self.submit(plan)
        run.resumed_from = record.run_id
        return run

    async def run(self, request: RunRequest | Plan) -> Run:
        """Prepare, start and wait for a run; return it finished (or interrupted)."""
        run = await self.submit(request)
        await run.done.wait()
        return run

    async def wait(self, run_id: str) -> Run:
        """Wait until run ``run_id`` of this process ends."""
        run = self.get(run_id)
        await run.done.wait()
        return run

    def _tracker(self) -> Any:
        return self.kernel.service("dag-tracker")

    def _recorded(self, run_id: str) -> bool:
        if run_id in self._runs:
            return True
        try:
            self._tracker().run_record(run_id)
        except NotFoundError:
            return False
        return True

    def status(self, run_id: str) -> dict[str, Any]:
        """The state of run ``run_id``: live (nodes, progress, outputs) when it runs in this
        process, else what the checkpoint log recorded (state, error, and each node's last event)."""
        run = self._runs.get(run_id)
        if run is not None:
            return run.status()
        record = self._tracker().run_record(run_id)
        nodes: dict[str, dict[str, Any]] = {}
        for entry in self.logs(run_id):
            if entry["node"] is not None:
                row = nodes.setdefault(entry["node"], {"state": "pending", "attempt": 0})
                row["state"] = _LOGGED_STATES.get(entry["event"], row["state"])
                row["attempt"] = max(row["attempt"], entry["attempt"])
                if entry["event"] == "failed" and isinstance(entry["data"], Mapping):
                    row["error"] = entry["data"].get("error")
        return {**_record_summary(record), "nodes": nodes, "live": False}

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        """Every transition the checkpoint log holds for ``run_id``, in order."""
        log = self._tracker().log
        if log is None:
            raise NotFoundError(
                f"no log of run {run_id!r}: checkpoints are off (dag_tracker.checkpoints)",
                code="conductor.no_checkpoints",
                context={"run_id": run_id},
            )
        self._tracker().run_record(run_id)  # NotFoundError naming the recent runs
        return [
            {"seq": r.seq, "node": r.node, "event": r.event, "attempt": r.attempt, "data": r.data}
            for r in log.records(run_id)
        ]

    def output(self, run_id: str, node: str) -> Any:
        """The value output node ``node`` of run ``run_id`` produced (from this process's run, else
        from the checkpoint log and the artifact store); :class:`NotFoundError` if it has none."""
        run = self._runs.get(run_id)
        if run is not None and node in run.outputs:
            return run.outputs[node]["value"]
        tracker = self._tracker()
        entry = None
        for record in self.logs(run_id):
            if (
                record["node"] == node
                and record["event"] == "completed"
                and isinstance(record["data"], Mapping)
            ):
                entry = (record["data"].get("o") or {}).get("value")
        if entry is None:
            raise NotFoundError(
                f"run {run_id} has no value for output {node!r}",
                code="conductor.no_output",
                context={"run_id": run_id, "node": node},
                hint="`symphony runs show RUN` lists its nodes and their states",
            )
        return tracker.load_value(entry)

    def list_runs(self, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent runs, newest first: those of this process (live state) and those the
        checkpoint log recorded; only those in ``state`` if given."""
        rows: dict[str, dict[str, Any]] = {}
        for record in self._tracker().runs(limit=limit):
            rows[record.run_id] = _record_summary(record)
        for run in self._runs.values():
            rows[run.id] = {**rows.get(run.id, {}), **run.summary(), "live": not run.done.is_set()}
        ordered = sorted(rows.values(), key=lambda r: -float(r.get("started_at") or 0.0))
        return [r for r in ordered if state is None or r["state"] == state][:limit]

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

    async def control(
        self, run_id: str, command: str, *, node: Any = None, value: Any = None, reason: Any = None
    ) -> dict[str, Any]:
        """Steer run ``run_id`` of this process: ``pause``, ``resume`` (a paused run),
        ``cancel``, ``retry-node``, ``skip-node`` or ``provide-input``; return its status.

        A refused command (a run that is not paused, a node that did not fail...) raises the
        execution's :class:`~symphony.commons.errors.SymphonyError` naming why.
        """
        run = self.get(run_id)
        handle = run.handle
        if handle is None or run.done.is_set():
            from symphony.commons.errors import ConflictError

            raise ConflictError(
                f"run {run_id} has finished ({run.state}); it cannot be steered",
                code="conductor.run_finished",
                context={"run_id": run_id, "state": run.state},
            )
        for name, given in (("node", node), ("reason", reason)):
            if given is not None and not isinstance(given, str):
                raise ValidationError(f"{name} must be a string", code="conductor.request.malformed")
        if command in ("retry-node", "skip-node") and node is None:
            raise ValidationError(f"{command} needs a node", code="conductor.request.malformed")
        if node is not None and node not in run.plan.workflow.nodes:
            raise NotFoundError(
                f"run {run_id} has no node {node!r}",
                code="conductor.node_not_found",
                context={"run_id": run_id, "node": node},
            )
        if command == "pause":
            handle.pause()
        elif command == "resume":
            handle.resume()
        elif command == "cancel":
            handle.cancel(reason or "cancelled by request")
        elif command == "retry-node":
            handle.retry_node(node)
        elif command == "skip-node":
            handle.skip_node(node, reason or "skipped by request")
        elif command == "provide-input":
            handle.provide_input(value, node)
        else:
            raise ValidationError(f"unknown run command {command!r}", code="conductor.unknown_command")
        await anyio.lowlevel.checkpoint()
        return run.status()

    # -- driving ------------------------------------------------------------------------------

    async def _drive(self, run: Run) -> None:
        """Run the tracker's handle to its end, publishing ``run.started`` and ``run.finished``."""
        plan = run.plan
        run.state = "running"
        self._publish(
            "run.started",
            {
                "run_id": run.id,
                "workflow": plan.workflow.name,
                "source": plan.source,
                "resumed_from": run.resumed_from,
                "nodes": [
                    {"id": n.id, "type": n.type, "kind": str(n.kind.value)}
                    for n in plan.workflow.nodes.values()
                ],
                "implementations": dict(plan.implementations),
            },
        )
        try:
            with anyio.CancelScope() as scope:
                run.scope = scope
                result = await run.handle.run()
            if scope.cancelled_caught or result is None:
                run.interrupted = True
            else:
                run.state = result.state
                run.error = result.error
                for node_id, value in result.outputs.items():
                    digest = result.nodes[node_id].digests.get("value")
                    run.outputs[node_id] = {"value": value, "digest": digest, **_size(value)}
        except Exception as exc:  # the tracker failed (not a node): the run failed, the conductor lives on
            if run.interrupted:  # stopping at kernel shutdown: the checkpoint log keeps it resumable
                _log().warning("run interrupted at shutdown", run=run.id, error=f"{type(exc).__name__}: {exc}")
            else:
                run.error = f"{type(exc).__name__}: {exc}"
        finally:
            run.scope = None
            run.finished = time.time()
            execution = run.execution
            if execution is not None and execution.is_terminal:
                run.state = execution.state.value
                run.error = run.error or execution.error
            elif run.state not in TERMINAL:
                run.state = "failed"
            with anyio.CancelScope(shield=True):
                await self.admissions.release_run(run.id)
                self._publish("run.finished", _finished_payload(run))
            run.done.set()


_LOGGED_STATES = {
    "started": "running",
    "completed": "completed",
    "failed": "failed",
    "skipped": "skipped",
    "retry": "pending",
    "input": "completed",
}
"""Checkpoint-log event -> the node state it leaves."""


def _record_summary(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "workflow": record.workflow_name,
        "workflow_id": record.workflow_id,
        "state": record.state,
        "error": record.error,
        "started_at": record.created,
        "finished_at": record.updated if record.state in TERMINAL else None,
        "duration": round(record.updated - record.created, 6),
        "live": False,
    }


def _size(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes | bytearray):
        return {"size": len(value), "type": "bytes"}
    if isinstance(value, str):
        return {"size": len(value.encode("utf-8")), "type": "text"}
    import json

    try:
        return {"size": len(json.dumps(value, ensure_ascii=False).encode("utf-8")), "type": "json"}
    except (TypeError, ValueError, RecursionError):
        return {}


def _finished_payload(run: Run) -> dict[str, Any]:
    outputs = {
        node_id: {k: v for k, v in out.items() if k != "value" or not isinstance(v, bytes | bytearray)}
        for node_id, out in run.outputs.items()
    }
    return {
        "run_id": run.id,
        "state": run.state,
        "error": run.error,
        "interrupted": run.interrupted,
        "duration": round(run.duration, 6),
        "outputs": outputs,
        "nodes": run.node_rows(),
        "progress": run.execution.progress().to_dict() if run.execution is not None else None,
    }


def _log() -> Any:
    from symphony.commons.log import get_logger

    return get_logger("symphony_conductor")


def _recorded_inputs(record: Any) -> dict[str, Any]:
    """The input values a run record holds (``{"node": {"$value": v} | {"$bytes": base64}}``)."""
    import base64
    import json

    try:
        data = json.loads(record.inputs)
        return {
            str(k): base64.b64decode(v["$bytes"]) if "$bytes" in v else v["$value"] for k, v in data.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        from symphony.commons.errors import IntegrityError

        raise IntegrityError(
            f"the inputs recorded for run {record.run_id} are unreadable: {exc}",
            code="conductor.resume.bad_inputs",
            context={"run_id": record.run_id},
        ) from None


def _next_id(run_id: str) -> str:
    """``abc`` -> ``abc.2``, ``abc.2`` -> ``abc.3``: the id of a run that continues ``run_id``."""
    base, dot, n = run_id.rpartition(".")
    if dot and n.isdigit():
        return f"{base}.{int(n) + 1}"
    return f"{run_id}.2"


class _RunEvents:
    """An execution sink turning the tracker's execution events into ``run.*`` bus events."""

    def __init__(self, conductor: Conductor, run: Run) -> None:
        self.conductor = conductor
        self.run = run

    def emit(self, event: Any) -> None:
        """Publish ``run.node``, ``run.state`` or ``run.log`` for one execution event."""
        kind = event.kind.value
        run = self.run
        if kind == "node_state_changed" and event.node_id is not None:
            row = run.node_row(event.node_id)
            row["state"] = event.data.get("to", row["state"])
            payload = {"run_id": run.id, "node": event.node_id, **row}
            payload.pop("digests", None)
            if run.execution is not None:
                payload["progress"] = run.execution.progress().to_dict()
            self.conductor._publish("run.node", payload)
        elif kind == "state_changed" and event.node_id is None:
            target = str(event.data.get("to"))
            if target not in TERMINAL:
                run.state = target
                self.conductor._publish(
                    "run.state", {"run_id": run.id, "state": target, "reason": event.data.get("reason")}
                )
        elif kind == "log":
            self.conductor._publish(
                "run.log",
                {
                    "run_id": run.id,
                    "node": event.node_id,
                    "level": event.data.get("level"),
                    "message": event.data.get("message"),
                },
            )
