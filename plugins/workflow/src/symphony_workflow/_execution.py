"""The execution-state API: the state machines the DAG tracker drives, commands, progress, events.

An :class:`Execution` tracks one run of one workflow. It does not run anything itself: the
executor (the DAG tracker) reports what happens (``node_started``, ``node_completed``...),
users and tools send :data:`Command` objects (pause, resume, cancel, retry a node...), and the
execution checks every change against the state machines below, records it with a timestamp
and reason, and emits an :class:`~symphony_workflow._events.ExecutionEvent` to its sinks (and
audit log). An illegal change raises :class:`~symphony_workflow._errors.InvalidTransitionError`
and changes nothing. Transitions are atomic (a lock, no awaits inside), so threads and tasks
may share an execution.

Workflow states (:class:`RunState`)::

    pending ──start──▶ running ──pause──▶ paused ──resume──▶ running
                        │  ├─ wait_for_input ─▶ waiting_for_input ─provide_input─▶ running
                        │  ├─ complete ─▶ completed      (every node completed or skipped)
                        │  └─ fail ─────▶ failed
    pending / running / paused / waiting_for_input ──cancel──▶ cancelled

``completed``, ``failed`` and ``cancelled`` are terminal. (M5 leaves pending -> cancelled out,
which looks like an oversight; cancelling a run that never started is allowed here.)

Node states (:class:`NodeRunState`)::

    pending ─▶ queued ─▶ running ─▶ completed
       │         │          ├─────▶ failed ──retry──▶ pending
       │         │          └─────▶ cancelled
       └─────────┴─ skip ─▶ skipped        failed ──skip──▶ skipped

A node starts only while the workflow is running (not paused: pausing lets running nodes
finish but starts nothing new). Cancelling or failing the workflow cancels every node that
has not finished.
"""

from __future__ import annotations

import enum
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_workflow._audit import AuditLog, AuditSink
from symphony_workflow._errors import InvalidTransitionError
from symphony_workflow._events import LOG_LEVELS, EventKind, EventSink, ExecutionEvent
from symphony_workflow._model import Workflow, utc_now

__all__ = [
    "NODE_TRANSITIONS",
    "RUN_TRANSITIONS",
    "Cancel",
    "Command",
    "DurationEstimator",
    "Execution",
    "NodeRun",
    "NodeRunState",
    "Pause",
    "Progress",
    "ProvideInput",
    "Resume",
    "RetryNode",
    "RunState",
    "SkipNode",
    "Start",
    "Transition",
    "command_from_dict",
    "command_to_dict",
]


class RunState(enum.StrEnum):
    """State of a workflow execution."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_INPUT = "waiting_for_input"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED)


class NodeRunState(enum.StrEnum):
    """State of one node within an execution."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for completed, skipped and cancelled (failed can still be retried or skipped)."""
        return self in (NodeRunState.COMPLETED, NodeRunState.SKIPPED, NodeRunState.CANCELLED)


R, N = RunState, NodeRunState

RUN_TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    R.PENDING: frozenset({R.RUNNING, R.CANCELLED}),
    R.RUNNING: frozenset({R.PAUSED, R.CANCELLED, R.COMPLETED, R.FAILED, R.WAITING_FOR_INPUT}),
    R.PAUSED: frozenset({R.RUNNING, R.CANCELLED, R.FAILED}),
    R.WAITING_FOR_INPUT: frozenset({R.RUNNING, R.CANCELLED, R.FAILED}),
    R.COMPLETED: frozenset(),
    R.FAILED: frozenset(),
    R.CANCELLED: frozenset(),
}
"""Allowed workflow state changes."""

NODE_TRANSITIONS: Mapping[NodeRunState, frozenset[NodeRunState]] = {
    N.PENDING: frozenset({N.QUEUED, N.RUNNING, N.SKIPPED, N.CANCELLED}),
    N.QUEUED: frozenset({N.RUNNING, N.PENDING, N.SKIPPED, N.CANCELLED}),
    N.RUNNING: frozenset({N.COMPLETED, N.FAILED, N.CANCELLED}),
    N.FAILED: frozenset({N.PENDING, N.SKIPPED}),
    N.COMPLETED: frozenset(),
    N.SKIPPED: frozenset(),
    N.CANCELLED: frozenset(),
}
"""Allowed node state changes."""


# --- commands ---------------------------------------------------------------------------------------


@attrs.frozen
class Start:
    """Start a pending execution."""

    name = "start"


@attrs.frozen
class Pause:
    """Pause: running nodes finish, nothing new starts."""

    name = "pause"


@attrs.frozen
class Resume:
    """Resume a paused execution."""

    name = "resume"


@attrs.frozen
class Cancel:
    """Cancel the execution; unfinished nodes are cancelled."""

    reason: str = "cancelled"
    name = "cancel"


@attrs.frozen
class RetryNode:
    """Put a failed node back to pending (its downstream nodes keep waiting for it)."""

    node_id: str
    name = "retry_node"


@attrs.frozen
class SkipNode:
    """Skip a pending, queued or failed node."""

    node_id: str
    reason: str = "skipped"
    name = "skip_node"


@attrs.frozen
class ProvideInput:
    """Answer a ``waiting_for_input`` execution with ``value``."""

    value: Any = None
    node_id: str | None = None
    name = "provide_input"


Command = Start | Pause | Resume | Cancel | RetryNode | SkipNode | ProvideInput
"""Any control command (plain data: :func:`command_to_dict` / :func:`command_from_dict`)."""

_COMMANDS: dict[str, type[Any]] = {
    c.name: c for c in (Start, Pause, Resume, Cancel, RetryNode, SkipNode, ProvideInput)
}


def command_to_dict(command: Command) -> dict[str, Any]:
    """``{"command": "retry_node", "node_id": "x"}``."""
    return {"command": command.name, **attrs.asdict(command)}


def command_from_dict(data: Mapping[str, Any]) -> Command:
    """Parse a command dict (from the CLI, the bus, a UI); :class:`ValidationError` if malformed."""
    if not isinstance(data, Mapping):
        raise ValidationError("a command must be an object", code="workflow.command.malformed")
    name = data.get("command")
    cls = _COMMANDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValidationError(
            f"unknown command {name!r}",
            code="workflow.command.unknown",
            context={"command": repr(name), "known": sorted(_COMMANDS)},
        )
    fields = {f.name for f in attrs.fields(cls)}
    args = {k: v for k, v in data.items() if k != "command"}
    extra = set(args) - fields
    if extra:
        raise ValidationError(
            f"command {name!r} has no field(s) {sorted(extra)}",
            code="workflow.command.malformed",
            context={"command": name, "fields": sorted(fields)},
        )
    for key in ("node_id", "reason"):
        if key in args and args[key] is not None and not isinstance(args[key], str):
            raise ValidationError(
                f"command {name!r}: {key} must be a string",
                code="workflow.command.malformed",
                context={"field": key},
            )
    try:
        return cls(**args)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ValidationError(
            f"command {name!r}: {exc}", code="workflow.command.malformed", context={"command": name}
        ) from None


# --- records ----------------------------------------------------------------------------------------


@attrs.frozen
class Transition:
    """One recorded state change (of the workflow, or of ``node_id``)."""

    at: datetime
    source: str
    target: str
    reason: str = ""
    node_id: str | None = None
    actor: str = "system"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        from symphony_workflow._serialization import to_jsonable

        return {k: to_jsonable(v) for k, v in attrs.asdict(self).items()}


@attrs.define
class NodeRun:
    """What is known about one node in this execution (a snapshot when read from the outside)."""

    node_id: str
    state: NodeRunState = NodeRunState.PENDING
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float = 0.0
    message: str = ""
    output: Any = None
    error: str | None = None
    reason: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or until now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or utc_now()
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        from symphony_workflow._serialization import to_jsonable

        return {k: to_jsonable(v) for k, v in attrs.asdict(self, recurse=False).items()}


@attrs.frozen
class Progress:
    """Counts per node state, percent done, and an estimated time to finish (seconds)."""

    total: int
    counts: Mapping[str, int]
    done: int
    percent: float
    eta_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "total": self.total,
            "counts": dict(self.counts),
            "done": self.done,
            "percent": self.percent,
            "eta_seconds": self.eta_seconds,
        }


class DurationEstimator:
    """Mean node duration per node type, learnt from finished nodes (share one across executions)."""

    def __init__(self) -> None:
        self._sums: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def record(self, node_type: str, seconds: float) -> None:
        """Add one observed duration."""
        with self._lock:
            total, count = self._sums.get(node_type, (0.0, 0))
            self._sums[node_type] = (total + max(0.0, seconds), count + 1)

    def estimate(self, node_type: str) -> float | None:
        """Mean duration of ``node_type``, or ``None`` if never seen."""
        with self._lock:
            entry = self._sums.get(node_type)
        return None if entry is None else entry[0] / entry[1]

    def overall(self) -> float | None:
        """Mean over every observation, or ``None``."""
        with self._lock:
            total = sum(t for t, _ in self._sums.values())
            count = sum(c for _, c in self._sums.values())
        return total / count if count else None


# --- the execution ----------------------------------------------------------------------------------


class Execution:
    """The state of one run of ``workflow``; see the module docstring for the rules."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        execution_id: str | None = None,
        sinks: Iterable[EventSink] = (),
        audit: AuditLog | None = None,
        estimator: DurationEstimator | None = None,
        clock: Callable[[], datetime] = utc_now,
        on_sink_error: Callable[[EventSink, BaseException], None] | None = None,
    ) -> None:
        self.workflow = workflow
        self.id = execution_id or str(uuid.uuid4())
        self._state = RunState.PENDING
        self._nodes = {nid: NodeRun(nid) for nid in workflow.nodes}
        self._history: list[Transition] = []
        self._sinks: list[EventSink] = list(sinks)
        self.audit = audit
        if audit is not None:
            self._sinks.append(AuditSink(audit))
        self.estimator = estimator or DurationEstimator()
        self._clock = clock
        self._lock = threading.RLock()
        self._seq = 0
        self._started_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._prompt: str | None = None
        self._input: Any = None
        self._result: Any = None
        self._error: str | None = None
        self._counts: dict[NodeRunState, int] = dict.fromkeys(NodeRunState, 0)
        self._counts[NodeRunState.PENDING] = len(self._nodes)
        self._on_sink_error = on_sink_error
        self.sink_errors = 0
        """How many times a sink raised (each is logged and skipped)."""

    # -- read side --------------------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        """The workflow state."""
        return self._state

    @property
    def is_terminal(self) -> bool:
        """True once completed, failed or cancelled."""
        return self._state.terminal

    @property
    def is_running(self) -> bool:
        """True while running (not paused, not waiting)."""
        return self._state is RunState.RUNNING

    @property
    def prompt(self) -> str | None:
        """What the execution waits for while ``waiting_for_input``."""
        return self._prompt

    @property
    def provided_input(self) -> Any:
        """The last value given with :class:`ProvideInput`."""
        return self._input

    @property
    def result(self) -> Any:
        """The result passed to :meth:`complete`."""
        return self._result

    @property
    def error(self) -> str | None:
        """The error passed to :meth:`fail`."""
        return self._error

    @property
    def duration(self) -> float | None:
        """Seconds since start (until the end once terminal)."""
        if self._started_at is None:
            return None
        end = self._finished_at or self._clock()
        return (end - self._started_at).total_seconds()

    def node(self, node_id: str) -> NodeRun:
        """A snapshot of node ``node_id``; :class:`NotFoundError` if the workflow has no such node."""
        with self._lock:
            return attrs.evolve(self._node(node_id))

    def nodes(self) -> dict[str, NodeRun]:
        """Snapshots of every node."""
        with self._lock:
            return {nid: attrs.evolve(run) for nid, run in self._nodes.items()}

    def history(self, node_id: str | None = None) -> list[Transition]:
        """Recorded transitions (of the workflow and every node, or of one node), oldest first."""
        with self._lock:
            return [t for t in self._history if node_id is None or t.node_id == node_id]

    def _node(self, node_id: str) -> NodeRun:
        run = self._nodes.get(node_id)
        if run is None:
            raise NotFoundError(
                f"workflow {self.workflow.name!r} has no node {node_id!r}",
                code="workflow.execution.node_not_found",
                context={"node": node_id, "execution": self.id},
            )
        return run

    def progress(self) -> Progress:
        """Counts per state, percent done (completed + skipped over all nodes) and an ETA.

        The ETA sums, over nodes not yet done, the mean duration seen for their node type (in
        this and earlier executions sharing the estimator), divided by how many nodes run at
        once right now; ``None`` until some duration is known.
        """
        with self._lock:
            total = len(self._nodes)
            counts = {s.value: c for s, c in self._counts.items()}
            done = self._counts[N.COMPLETED] + self._counts[N.SKIPPED]
            percent = 100.0 if total == 0 else round(100.0 * done / total, 2)
            remaining = [
                self.workflow.node(nid).type
                for nid, run in self._nodes.items()
                if run.state in (N.PENDING, N.QUEUED, N.RUNNING, N.FAILED)
            ]
            parallel = max(1, self._counts[N.RUNNING])
        eta: float | None
        if not remaining:
            eta = 0.0
        else:
            fallback = self.estimator.overall()
            estimates = [self.estimator.estimate(t) for t in remaining]
            if fallback is None and all(e is None for e in estimates):
                eta = None
            else:
                eta = sum(e if e is not None else (fallback or 0.0) for e in estimates) / parallel
        return Progress(total, counts, done, percent, eta)

    def available_commands(self) -> list[str]:
        """The command names that would be accepted now (``retry_node``/``skip_node`` need a node)."""
        names = []
        for name, cls in _COMMANDS.items():
            probe: Command
            if cls in (RetryNode, SkipNode):
                candidates = [
                    nid
                    for nid, run in self._nodes.items()
                    if run.state is N.FAILED or (cls is SkipNode and run.state in (N.PENDING, N.QUEUED))
                ]
                if not candidates:
                    continue
                probe = cls(candidates[0])
            else:
                probe = cls()
            if self.can(probe):
                names.append(name)
        return names

    def can(self, command: Command) -> bool:
        """True if :meth:`apply` would accept ``command`` now."""
        try:
            self._check_command(command)
        except (InvalidTransitionError, NotFoundError):
            return False
        return True

    def snapshot(self) -> dict[str, Any]:
        """The whole state as a JSON-safe dict (for ``--json`` output, the bus, checkpoints)."""
        with self._lock:
            from symphony_workflow._serialization import to_jsonable

            return {
                "execution_id": self.id,
                "workflow_id": self.workflow.id,
                "state": self._state.value,
                "started_at": to_jsonable(self._started_at),
                "finished_at": to_jsonable(self._finished_at),
                "prompt": self._prompt,
                "error": self._error,
                "nodes": {nid: run.to_dict() for nid, run in self._nodes.items()},
                "progress": self.progress().to_dict(),
            }

    # -- commands ---------------------------------------------------------------------------------

    def _check_command(self, command: Command) -> None:
        state = self._state
        if isinstance(command, Start):
            self._require_run(state, R.RUNNING, "start")
            if state is not R.PENDING:
                raise self._invalid(state, R.RUNNING, "only a pending execution can be started")
        elif isinstance(command, Pause):
            self._require_run(state, R.PAUSED, "pause")
        elif isinstance(command, Resume):
            if state is not R.PAUSED:
                raise self._invalid(state, R.RUNNING, "only a paused execution can be resumed")
        elif isinstance(command, Cancel):
            self._require_run(state, R.CANCELLED, "cancel")
        elif isinstance(command, ProvideInput):
            if state is not R.WAITING_FOR_INPUT:
                raise self._invalid(state, R.RUNNING, "the execution is not waiting for input")
        elif isinstance(command, RetryNode):
            run = self._node(command.node_id)
            if state not in (R.RUNNING, R.PAUSED):
                raise self._invalid(
                    state, state, "nodes can be retried only while the execution is running or paused"
                )
            self._require_node(run, N.PENDING, "retry")
        elif isinstance(command, SkipNode):
            run = self._node(command.node_id)
            if state.terminal:
                raise self._invalid(state, state, "the execution has finished")
            self._require_node(run, N.SKIPPED, "skip")
        else:
            raise ValidationError(
                f"not a command: {command!r}",
                code="workflow.command.unknown",
                context={"command": repr(command)},
            )

    def apply(self, command: Command | Mapping[str, Any], *, actor: str = "system") -> None:
        """Carry out a control command (or its dict form); illegal ones raise and change nothing."""
        cmd = command_from_dict(command) if isinstance(command, Mapping) else command
        with self._lock:
            self._check_command(cmd)
            self._emit(EventKind.COMMAND, data=command_to_dict(cmd), actor=actor)
            if isinstance(cmd, Start):
                self._set_run(R.RUNNING, "start", actor)
                self._started_at = self._clock()
                self._emit(EventKind.STARTED, actor=actor)
            elif isinstance(cmd, Pause):
                self._set_run(R.PAUSED, "pause", actor)
            elif isinstance(cmd, Resume):
                self._set_run(R.RUNNING, "resume", actor)
            elif isinstance(cmd, Cancel):
                self._finish_nodes(cmd.reason, actor)
                self._set_run(R.CANCELLED, cmd.reason, actor)
                self._finished_at = self._clock()
                self._emit(EventKind.CANCELLED, data={"reason": cmd.reason}, actor=actor)
            elif isinstance(cmd, ProvideInput):
                self._input = cmd.value
                self._prompt = None
                self._set_run(R.RUNNING, "input provided", actor)
            elif isinstance(cmd, RetryNode):
                run = self._nodes[cmd.node_id]
                self._set_node(run, N.PENDING, "retry", actor)
                run.error = None
                run.progress = 0.0
                run.started_at = run.finished_at = None
            elif isinstance(cmd, SkipNode):
                run = self._nodes[cmd.node_id]
                run.reason = cmd.reason
                self._set_node(run, N.SKIPPED, cmd.reason, actor)
                self._emit(
                    EventKind.NODE_SKIPPED, node_id=run.node_id, data={"reason": cmd.reason}, actor=actor
                )

    # Convenience wrappers for the executor and tests.

    def start(self, *, actor: str = "system") -> None:
        """Apply :class:`Start`."""
        self.apply(Start(), actor=actor)

    def pause(self, *, actor: str = "system") -> None:
        """Apply :class:`Pause`."""
        self.apply(Pause(), actor=actor)

    def resume(self, *, actor: str = "system") -> None:
        """Apply :class:`Resume`."""
        self.apply(Resume(), actor=actor)

    def cancel(self, reason: str = "cancelled", *, actor: str = "system") -> None:
        """Apply :class:`Cancel`."""
        self.apply(Cancel(reason), actor=actor)

    def retry_node(self, node_id: str, *, actor: str = "system") -> None:
        """Apply :class:`RetryNode`."""
        self.apply(RetryNode(node_id), actor=actor)

    def skip_node(self, node_id: str, reason: str = "skipped", *, actor: str = "system") -> None:
        """Apply :class:`SkipNode`."""
        self.apply(SkipNode(node_id, reason), actor=actor)

    def provide_input(self, value: Any, *, node_id: str | None = None, actor: str = "system") -> None:
        """Apply :class:`ProvideInput`."""
        self.apply(ProvideInput(value, node_id), actor=actor)

    # -- executor-side reports --------------------------------------------------------------------

    def wait_for_input(self, prompt: str, *, node_id: str | None = None) -> None:
        """The execution needs a value from outside (answered by :class:`ProvideInput`)."""
        with self._lock:
            self._require_run(self._state, R.WAITING_FOR_INPUT, "wait for input")
            self._prompt = prompt
            self._set_run(R.WAITING_FOR_INPUT, prompt, "system", node_id=node_id)

    def complete(self, result: Any = None) -> None:
        """Every node is done: the execution completed (refused while a node is unfinished or failed)."""
        with self._lock:
            self._require_run(self._state, R.COMPLETED, "complete")
            open_nodes = [
                nid for nid, run in self._nodes.items() if run.state not in (N.COMPLETED, N.SKIPPED)
            ]
            if open_nodes:
                raise InvalidTransitionError(
                    f"cannot complete: {len(open_nodes)} node(s) not done ({', '.join(open_nodes[:5])})",
                    code="workflow.execution.unfinished_nodes",
                    context={"execution": self.id, "nodes": open_nodes[:50]},
                    hint="finish, skip or retry them, or fail the execution",
                )
            self._result = result
            self._set_run(R.COMPLETED, "all nodes done", "system")
            self._finished_at = self._clock()
            self._emit(EventKind.COMPLETED, data={"result": result})

    def fail(self, error: str) -> None:
        """The execution failed; unfinished nodes are cancelled."""
        with self._lock:
            self._require_run(self._state, R.FAILED, "fail")
            self._error = str(error)
            self._finish_nodes(f"execution failed: {error}", "system")
            self._set_run(R.FAILED, str(error), "system")
            self._finished_at = self._clock()
            self._emit(EventKind.FAILED, data={"error": str(error)})

    def node_queued(self, node_id: str) -> None:
        """The executor put the node in its queue."""
        with self._lock:
            run = self._node(node_id)
            self._require_active(node_id)
            self._set_node(run, N.QUEUED, "queued", "system")

    def node_started(self, node_id: str) -> None:
        """The node began running (refused while paused: pausing starts nothing new)."""
        with self._lock:
            run = self._node(node_id)
            if self._state is not R.RUNNING:
                raise self._invalid(
                    self._state,
                    self._state,
                    f"node {node_id!r} cannot start while the execution is {self._state.value}",
                    node_id=node_id,
                )
            self._set_node(run, N.RUNNING, "started", "system")
            run.attempts += 1
            run.started_at = self._clock()
            run.finished_at = None
            run.progress = 0.0
            self._emit(EventKind.NODE_STARTED, node_id=node_id, data={"attempt": run.attempts})

    def node_progress(self, node_id: str, percent: float, message: str = "") -> None:
        """A running node reports how far it is (0-100)."""
        with self._lock:
            run = self._node(node_id)
            if run.state is not N.RUNNING:
                raise self._invalid_node(run, run.state, "only a running node reports progress")
            if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
                raise ValidationError(
                    f"progress must be between 0 and 100, got {percent!r}",
                    code="workflow.execution.bad_progress",
                    context={"node": node_id},
                )
            run.progress = float(percent)
            run.message = message
            self._emit(
                EventKind.NODE_PROGRESS, node_id=node_id, data={"percent": float(percent), "message": message}
            )

    def node_completed(self, node_id: str, output: Any = None) -> None:
        """The node finished successfully with ``output``."""
        with self._lock:
            run = self._node(node_id)
            self._require_active(node_id, allow_waiting=True)
            self._set_node(run, N.COMPLETED, "completed", "system")
            run.output = output
            run.progress = 100.0
            run.finished_at = self._clock()
            if run.started_at is not None:
                self.estimator.record(
                    self.workflow.node(node_id).type, (run.finished_at - run.started_at).total_seconds()
                )
            self._emit(EventKind.NODE_COMPLETED, node_id=node_id, data={"output": output})

    def node_failed(self, node_id: str, error: str) -> None:
        """The node failed with ``error`` (it may be retried or skipped)."""
        with self._lock:
            run = self._node(node_id)
            self._require_active(node_id, allow_waiting=True)
            self._set_node(run, N.FAILED, str(error), "system")
            run.error = str(error)
            run.finished_at = self._clock()
            self._emit(
                EventKind.NODE_FAILED, node_id=node_id, data={"error": str(error), "attempt": run.attempts}
            )

    def node_skipped(self, node_id: str, reason: str) -> None:
        """The executor skipped the node (e.g. a condition was false)."""
        with self._lock:
            run = self._node(node_id)
            if self._state.terminal:
                raise self._invalid(self._state, self._state, "the execution has finished", node_id=node_id)
            run.reason = reason
            self._set_node(run, N.SKIPPED, reason, "system")
            self._emit(EventKind.NODE_SKIPPED, node_id=node_id, data={"reason": reason})

    def log(self, level: str, message: str, *, node_id: str | None = None) -> None:
        """Emit a ``log`` event (``level``: debug, info, warning, error, critical)."""
        if level not in LOG_LEVELS:
            raise ValidationError(
                f"unknown log level {level!r}",
                code="workflow.events.unknown_level",
                context={"known": list(LOG_LEVELS)},
            )
        with self._lock:
            if node_id is not None:
                self._node(node_id)
            self._emit(EventKind.LOG, node_id=node_id, data={"level": level, "message": message})

    # -- internals --------------------------------------------------------------------------------

    def _invalid(
        self, source: RunState, target: RunState, reason: str, *, node_id: str | None = None
    ) -> InvalidTransitionError:
        context: dict[str, Any] = {"execution": self.id, "from": source.value, "to": target.value}
        if node_id is not None:
            context["node"] = node_id
        return InvalidTransitionError(reason, code="workflow.execution.invalid_transition", context=context)

    def _invalid_node(self, run: NodeRun, target: NodeRunState, reason: str) -> InvalidTransitionError:
        return InvalidTransitionError(
            f"node {run.node_id!r}: {reason}",
            code="workflow.execution.invalid_node_transition",
            context={"execution": self.id, "node": run.node_id, "from": run.state.value, "to": target.value},
        )

    def _require_run(self, state: RunState, target: RunState, action: str) -> None:
        if target not in RUN_TRANSITIONS[state]:
            why = "it has already finished" if state.terminal else f"it is {state.value}"
            raise self._invalid(state, target, f"cannot {action} the execution: {why}")

    def _require_node(self, run: NodeRun, target: NodeRunState, action: str) -> None:
        if target not in NODE_TRANSITIONS[run.state]:
            raise self._invalid_node(run, target, f"cannot {action} a node that is {run.state.value}")

    def _require_active(self, node_id: str, *, allow_waiting: bool = False) -> None:
        ok = {R.RUNNING, R.PAUSED, R.WAITING_FOR_INPUT} if allow_waiting else {R.RUNNING, R.PAUSED}
        if self._state not in ok:
            raise self._invalid(
                self._state,
                self._state,
                f"node {node_id!r} cannot change while the execution is {self._state.value}",
                node_id=node_id,
            )

    def _set_run(self, target: RunState, reason: str, actor: str, *, node_id: str | None = None) -> None:
        source = self._state
        self._state = target
        self._history.append(Transition(self._clock(), source.value, target.value, reason, node_id, actor))
        self._emit(
            EventKind.STATE_CHANGED,
            node_id=node_id,
            data={"from": source.value, "to": target.value, "reason": reason},
            actor=actor,
        )

    def _set_node(self, run: NodeRun, target: NodeRunState, reason: str, actor: str) -> None:
        self._require_node(run, target, target.value if target is not N.PENDING else "reset")
        source = run.state
        run.state = target
        self._counts[source] -= 1
        self._counts[target] += 1
        self._history.append(
            Transition(self._clock(), source.value, target.value, reason, run.node_id, actor)
        )
        self._emit(
            EventKind.NODE_STATE_CHANGED,
            node_id=run.node_id,
            data={"from": source.value, "to": target.value, "reason": reason},
            actor=actor,
        )

    def _finish_nodes(self, reason: str, actor: str) -> None:
        for run in self._nodes.values():
            if run.state in (N.PENDING, N.QUEUED, N.RUNNING):
                run.reason = reason
                if run.state is N.RUNNING:
                    run.finished_at = self._clock()
                self._set_node(run, N.CANCELLED, reason, actor)

    def _emit(
        self,
        kind: EventKind,
        *,
        node_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> None:
        self._seq += 1
        if not self._sinks:
            return
        event = ExecutionEvent(
            kind, self.id, self.workflow.id, self._seq, self._clock(), node_id, dict(data or {}), actor
        )
        for sink in self._sinks:
            try:
                sink.emit(event)
            except Exception as exc:  # observers must not break the state machine
                self.sink_errors += 1
                if self._on_sink_error is not None:
                    self._on_sink_error(sink, exc)
                else:
                    _log().warning(
                        "workflow event sink failed",
                        sink=type(sink).__name__,
                        error=str(exc),
                        event=event.kind.value,
                    )

    def add_sink(self, sink: EventSink) -> None:
        """Send future events to ``sink`` too."""
        with self._lock:
            self._sinks.append(sink)


def _log() -> Any:
    try:
        from symphony.commons.log import get_logger

        return get_logger("symphony_workflow._execution")
    except ImportError:  # pragma: no cover - commons.log ships with core
        import structlog

        return structlog.get_logger("symphony_workflow._execution")
