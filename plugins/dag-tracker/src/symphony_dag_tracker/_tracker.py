"""The DAG tracker: runs a workflow by driving its ``Execution``, with checkpoints and memoization."""

from __future__ import annotations

import base64
import heapq
import inspect
import json
import os
import traceback
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from symphony.commons.errors import (
    ConflictError,
    NotFoundError,
    OperationTimeoutError,
    SymphonyError,
    ValidationError,
)
from symphony.commons.gcpause import gc_paused
from symphony_dag_tracker._checkpoint import CheckpointLog, RunRecord
from symphony_dag_tracker._executors import (
    Executor,
    LocalExecutor,
    NodeTask,
    ProcessExecutor,
    ThreadExecutor,
    locator_of,
)
from symphony_dag_tracker._policy import executor_of, is_simple, priority_of, retried, retry_wait
from symphony_dag_tracker._status import NodeStatus, RunResult
from symphony_dag_tracker._values import ValueCodec, check_value, checker_for, outputs_problem
from symphony_sdk.nodes import NodeContext, implementation_version
from symphony_workflow import Execution, NodeKind, NodePolicy, NodeTypeRegistry, Workflow

__all__ = ["DagTracker", "RunHandle", "TrackerSettings"]

_quote = json.encoder.encode_basestring  # a str as a JSON string literal (C-accelerated)


def _entry_text(entry: Mapping[str, list[Any]]) -> str:
    """``{"o": {port: [digest, kind, inline]}}`` as compact JSON, without a JSONEncoder per call."""
    parts = [
        f"{_quote(port)}:[{_quote(d)},{_quote(k)},{'null' if inline is None else _quote(inline)}]"
        for port, (d, k, inline) in entry.items()
    ]
    return "{" + ",".join(parts) + "}"

_CONTROL = frozenset({"branch", "merge", "parallel", "join"})

# local node states (the Execution holds the authoritative ones; these steer the scheduler)
_WAIT, _READY, _RUNNING, _DONE, _SKIPPED, _FAILED = range(6)


@attrs.frozen
class TrackerSettings:
    """How the tracker runs workflows (the ``[dag_tracker]`` config section)."""

    max_concurrency: int = 64
    type_limits: Mapping[str, int] = attrs.field(factory=dict)
    fail_fast: bool = True
    wait_on_failure: bool = False
    checkpoints: bool = True
    durable: bool = False
    memoize: bool = True
    inline_max: int = 4096
    batch_size: int = 2048
    check_values: bool = True
    thread_workers: int = 8
    process_workers: int = 2

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if field.type in ("bool", bool):
                ok = isinstance(value, bool)
                rule = "must be true or false"
            elif field.type in ("int", int):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= (0 if field.name == "inline_max" else 1)
                rule = "must be a positive integer"
            else:
                ok = isinstance(value, Mapping) and all(
                    isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
                    for k, v in value.items()
                )
                rule = "must map node types to positive integers"
            if not ok:
                raise ValidationError(
                    f"dag_tracker.{field.name} {rule}, not {value!r}"[:300],
                    code="dag.settings.invalid",
                    context={"key": f"dag_tracker.{field.name}", "rule": rule},
                )

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> TrackerSettings:
        """Settings from a config section (unknown keys are a :class:`ValidationError`)."""
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ValidationError(
                f"unknown dag_tracker setting(s): {', '.join(sorted(unknown))}",
                code="dag.settings.unknown",
                context={"keys": sorted(unknown), "known": sorted(known)},
            )
        return cls(**dict(section))


class _Resolved:
    __slots__ = ("implementation", "inline", "locator", "provider", "pure", "version")

    def __init__(self, implementation: Any, provider: str | None) -> None:
        self.implementation = implementation
        self.provider = provider
        self.locator = locator_of(implementation)
        self.version = implementation_version(implementation)
        self.pure = bool(getattr(implementation, "pure", False))
        execute = getattr(implementation, "execute", None)
        process = getattr(implementation, "process", None)
        self.inline = (
            getattr(implementation, "executor", "async") == "async"
            and not inspect.iscoroutinefunction(execute)
            and not inspect.iscoroutinefunction(process)
            and getattr(implementation, "model_key", None) is None  # a pooled model: through an executor
        )


class DagTracker:
    """Runs workflows; keeps their checkpoints and the memo table under ``state_dir``.

    ``node_types`` is the registry implementations are found in (with a ``kernel``, its
    ``node_types`` registry, and the providing plugin is activated on the first execution of
    its type, through the slot ``node-type:<name>``). ``store`` is the artifact store large
    values go to (opened under ``state_dir/artifacts`` on first need if not given).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        node_types: NodeTypeRegistry | None = None,
        kernel: Any = None,
        store: Any = None,
        settings: TrackerSettings | None = None,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.settings = settings or TrackerSettings()
        self.kernel = kernel
        self._registry = node_types
        self._store = store
        self._own_store = False
        self.codec = ValueCodec()
        self.log: CheckpointLog | None = None
        if self.settings.checkpoints:
            self.log = CheckpointLog(
                self.state_dir / "checkpoints.db", durable=self.settings.durable, batch_size=self.settings.batch_size
            )
        self._memory_memo: dict[str, str] = {}
        self.executors: dict[str, Executor] = {
            "async": LocalExecutor(),
            "thread": ThreadExecutor(self.settings.thread_workers),
            "process": ProcessExecutor(self.settings.process_workers),
        }
        if executors:
            self.executors.update(executors)
        self._resolved: dict[str, _Resolved] = {}

    @classmethod
    def from_kernel(cls, kernel: Any) -> DagTracker:
        """A tracker configured from the kernel's ``[dag_tracker]`` section and services."""
        section = dict(kernel.config.section("dag_tracker"))
        state_dir = section.pop("state_dir", "") or ""
        if not state_dir:
            from symphony.commons.fs import data_dir

            state_dir = str(data_dir() / "runs")
        return cls(state_dir, kernel=kernel, settings=TrackerSettings.from_mapping(section))

    # -- node types -------------------------------------------------------------------------------

    @property
    def registry(self) -> NodeTypeRegistry:
        """The node-type registry implementations come from."""
        if self._registry is None:
            if self.kernel is None:
                self._registry = NodeTypeRegistry()
            else:
                self._registry = self.kernel.registry("node_types")
        return self._registry

    def _known(self, type_name: str) -> bool:
        if type_name in self.registry:
            return True
        return self.kernel is not None and bool(self.kernel.providers(f"node-type:{type_name}"))

    def installed_types(self) -> list[str]:
        """Every node type that can run here (registered, or declared by an installed plugin's manifest)."""
        names = set(self.registry.names())
        if self.kernel is not None:
            for record in self.kernel.providers("node-type:"):
                names.update(s.split(":", 1)[1] for s in record.manifest.provides if s.startswith("node-type:"))
        return sorted(names)

    def check_types(self, workflow: Workflow) -> None:
        """Raise :class:`NotFoundError` naming every node type no installed plugin provides."""
        missing = sorted(
            {
                n.type
                for n in workflow.nodes.values()
                if n.kind in (NodeKind.OPERATOR, NodeKind.INSTRUMENT) and n.enabled and not self._known(n.type)
            }
        )
        if missing:
            installed = self.installed_types()
            raise NotFoundError(
                f"no installed plugin provides node type(s) {', '.join(missing)}; "
                f"installed: {', '.join(installed) or 'none'}",
                code="dag.node_type.unknown",
                context={"types": missing, "installed": installed},
                hint="install the plugin that provides it (`symphony plugins list`)",
            )

    def resolve(self, type_name: str) -> _Resolved:
        """The implementation of ``type_name`` (activating its plugin on first use)."""
        found = self._resolved.get(type_name)
        if found is not None:
            return found
        if type_name not in self.registry and self.kernel is not None:
            self.kernel.activate_slot(f"node-type:{type_name}")
        spec = self.registry.get(type_name)
        if spec.implementation is None:
            raise NotFoundError(
                f"node type {type_name!r} (from {spec.provider or 'an unknown plugin'}) has no implementation",
                code="dag.node_type.no_implementation",
                context={"type": type_name, "provider": spec.provider},
                hint="its plugin registers metadata only; it must pass implementation= to registry.add",
            )
        found = _Resolved(spec.implementation, spec.provider)
        self._resolved[type_name] = found
        return found

    # -- the store --------------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        """The artifact store (opened on first use)."""
        if self._store is None:
            if self.kernel is not None:
                self._store = self.kernel.service("artifact-store")
            else:
                from symphony_artifact_store import ArtifactStore

                self._store = ArtifactStore(self.state_dir / "artifacts")
                self._own_store = True
        return self._store

    # -- runs -------------------------------------------------------------------------------------

    def prepare(
        self,
        workflow: Workflow,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        sinks: Iterable[Any] = (),
        document: str | None = None,
    ) -> RunHandle:
        """A new run of ``workflow`` (not started: ``await handle.run()``); unknown types fail here.

        ``document`` is the workflow's JSON text when the caller has it (the file it loaded):
        the checkpoint keeps it to check a resumed run against; without it the workflow is
        serialized here.
        """
        self.check_types(workflow)
        inputs = dict(inputs or {})
        for key in inputs:
            node = workflow.get_node(key)
            if node is None or node.kind is not NodeKind.INPUT:
                raise ValidationError(
                    f"{key!r} is not an input node of workflow {workflow.name!r}",
                    code="dag.input.unknown",
                    context={"input": key, "inputs": [n.id for n in workflow.nodes.values() if n.kind is NodeKind.INPUT]},
                )
        run_id = run_id or uuid.uuid4().hex
        if self.log is not None:
            if document is None:
                from symphony_workflow import dumps

                document = dumps(workflow)
            self.log.create_run(
                run_id,
                workflow_id=workflow.id,
                workflow_name=workflow.name,
                fingerprint=self.codec.digest(document.encode("utf-8")).hex,
                workflow=document,
                inputs=json.dumps(_jsonable_inputs(inputs)),
            )
        with gc_paused():
            return RunHandle(self, workflow, run_id, inputs, sinks=sinks)

    async def run(self, workflow: Workflow, **kwargs: Any) -> RunResult:
        """Prepare and run ``workflow`` to its end."""
        return await self.prepare(workflow, **kwargs).run()

    def resume(self, run_id: str, workflow: Workflow, *, sinks: Iterable[Any] = ()) -> RunHandle:
        """Continue run ``run_id`` after a crash, without redoing its completed nodes.

        Refused with :class:`NotFoundError` for an unknown run, :class:`ConflictError` for a
        finished one or when ``workflow`` differs from the one the run started with (the
        message lists the changes); a damaged checkpoint raises ``CheckpointError``.
        """
        if self.log is None:
            raise ConflictError("checkpoints are off: runs cannot be resumed", code="dag.resume.no_checkpoints")
        record = self.log.run(run_id)
        if record.state in ("completed", "failed", "cancelled"):
            raise ConflictError(
                f"run {run_id} already finished ({record.state}); nothing to resume",
                code="dag.resume.finished",
                context={"run": run_id, "state": record.state},
                hint="start a new run; completed nodes are taken from the memo table",
            )
        from symphony_workflow import diff, loads

        old = loads(record.workflow)
        changes = diff(old, workflow)
        if not changes.is_empty:
            raise ConflictError(
                f"workflow changed since run {run_id} started:\n{changes.summary()}",
                code="dag.resume.workflow_changed",
                context={"run": run_id, "changes": changes.to_dict()},
                hint="resume with the workflow file as it was, or start a new run",
            )
        inputs = _restore_inputs(json.loads(record.inputs))
        handle = RunHandle(self, workflow, run_id, inputs, sinks=sinks)
        handle._restore(self.log.records(run_id))
        return handle

    def runs(self, limit: int = 100) -> list[RunRecord]:
        """The most recent runs in the checkpoint database."""
        return [] if self.log is None else self.log.runs(limit=limit)

    def run_record(self, run_id: str) -> RunRecord:
        """One run's record; :class:`NotFoundError` if unknown."""
        if self.log is None:
            raise NotFoundError(f"no run {run_id!r}: checkpoints are off", code="dag.run.not_found")
        return self.log.run(run_id)

    def _completed_entries(self, run_id: str) -> dict[str, dict[str, list[Any]]]:
        """node -> its logged output entries ``{port: [digest, kind, inline]}``, for completed nodes."""
        if self.log is None:
            return {}
        return {
            rec.node: rec.data["o"]
            for rec in self.log.records(run_id)
            if rec.event == "completed" and rec.node is not None
        }

    def completed_outputs(self, run_id: str) -> dict[str, dict[str, str]]:
        """For each node the log records as completed: its output digests (port -> digest)."""
        return {n: {p: v[0] for p, v in o.items()} for n, o in self._completed_entries(run_id).items()}

    def completed_values(self, run_id: str) -> dict[str, dict[str, Any]]:
        """For each node the log records as completed: its output values (read from the store if large)."""
        return {n: {p: self.load_value(v) for p, v in o.items()} for n, o in self._completed_entries(run_id).items()}

    def load_value(self, entry: list[Any]) -> Any:
        """The value of one logged output entry ``[digest, kind, inline]`` (from the store if not inline)."""
        digest, kind, inline = entry
        if inline is None:
            data = self.store.get(digest)
        elif kind == "b":
            data = base64.b64decode(inline)
        else:
            return json.loads(inline)
        return self.codec.decode(kind, data)

    async def aclose(self) -> None:
        """Flush the log, stop executors, close what the tracker opened."""
        for executor in self.executors.values():
            await executor.aclose()
        self.close()

    def close(self) -> None:
        """Flush and close the checkpoint log (and a store the tracker opened itself)."""
        if self.log is not None:
            self.log.close()
            self.log = None
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    # -- memo -------------------------------------------------------------------------------------

    def _memo_get(self, key: str) -> str | None:
        if self.log is not None:
            return self.log.memo_get(key)
        return self._memory_memo.get(key)

    def _memo_put(self, key: str, node_type: str, outputs: str) -> None:
        if self.log is not None:
            self.log.memo_put(key, node_type, outputs)
        else:
            self._memory_memo[key] = outputs


def _jsonable_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, bytes | bytearray):
            out[key] = {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
        else:
            out[key] = {"$value": value}
    return out


def _restore_inputs(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: base64.b64decode(v["$bytes"]) if "$bytes" in v else v["$value"] for k, v in data.items()
    }


class RunHandle:
    """One run: ``await run()`` drives it; the other methods steer it from any task meanwhile."""

    def __init__(
        self,
        tracker: DagTracker,
        workflow: Workflow,
        run_id: str,
        inputs: Mapping[str, Any],
        *,
        sinks: Iterable[Any] = (),
    ) -> None:
        self.tracker = tracker
        self.workflow = workflow
        self.id = run_id
        self.inputs = dict(inputs)
        self.execution = Execution(workflow, execution_id=run_id, sinks=sinks)
        self._settings = tracker.settings
        self._log = tracker.log
        self._codec = tracker.codec
        ids = list(workflow.nodes)
        self._ids = ids
        self._index = {nid: i for i, nid in enumerate(ids)}
        n = len(ids)
        self._nodes = [workflow.nodes[nid] for nid in ids]
        self._succ: list[list[int]] = [[] for _ in range(n)]
        self._in: list[list[Any]] = [[] for _ in range(n)]
        remaining = [0] * n
        for i, nid in enumerate(ids):
            seen: set[int] = set()
            edges = workflow.incoming(nid)
            edges.sort(key=lambda e: -e.priority)
            for edge in edges:
                src = self._index[edge.source]
                self._in[i].append((edge, src))
                if src not in seen:
                    seen.add(src)
                    self._succ[src].append(i)
            remaining[i] = len(seen)
        self._remaining = remaining
        self._state = [_WAIT] * n
        self._released = [False] * n
        self._values: list[dict[str, Any] | None] = [None] * n
        self._digests: list[dict[str, str] | None] = [None] * n
        self._priorities = [priority_of(node) if node.metadata else 0.0 for node in self._nodes]
        self._cached = [False] * n
        self._tries = [0] * n
        self._restored_flag = [False] * n
        self._errors: dict[int, tuple[str, str]] = {}
        self._reasons: dict[int, str] = {}
        self._restored: dict[int, tuple[str, Any]] = {}
        self._outputs_by_id: dict[str, Mapping[str, Any]] = {}
        self._ready: list[tuple[float, int]] = []
        self._running = 0
        self._running_by_type: dict[str, int] = {}
        self._waiting_by_type: dict[str, list[tuple[float, int]]] = {}
        self._waiting_input: int | None = None
        self._wake: anyio.Event | None = None
        self._gate: anyio.Event | None = None
        self._tg: Any = None
        self._finished = 0
        self._started = False
        self.executed = 0
        self.cached = 0
        self.restored = 0
        self._result: RunResult | None = None

    # -- steering (from any task in the same event loop) -----------------------------------------

    def pause(self) -> None:
        """Running nodes finish; nothing new starts."""
        self.execution.pause(actor="user")
        self._record(None, "paused")
        self._poke()

    def resume(self) -> None:
        """Continue a paused run."""
        self.execution.resume(actor="user")
        self._record(None, "resumed")
        self._poke()

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the run: running nodes are cancelled (and awaited), nothing else starts."""
        if self.execution.is_terminal:
            return
        self.execution.cancel(reason, actor="user")
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._poke()

    def retry_node(self, node_id: str) -> None:
        """Run a failed node again."""
        self.execution.retry_node(node_id, actor="user")
        i = self._index[node_id]
        self._state[i] = _READY
        self._errors.pop(i, None)
        self._record(node_id, "retry")
        self._push(i)
        self._poke()

    def skip_node(self, node_id: str, reason: str = "skipped by user") -> None:
        """Skip a pending or failed node (its dependents see its policy default, or are skipped)."""
        i = self._index[node_id]
        self.execution.skip_node(node_id, reason, actor="user")
        was_failed = self._state[i] == _FAILED
        self._mark_skipped(i, reason, log=True)
        if was_failed or (self._released[i] is False and self._state[i] == _SKIPPED and self._remaining[i] == 0):
            self._release(i)
        self._poke()

    def provide_input(self, value: Any, node_id: str | None = None) -> None:
        """Give the value an input node is waiting for."""
        i = self._waiting_input
        if i is None or (node_id is not None and self._ids[i] != node_id):
            raise ConflictError(
                f"run {self.id} is not waiting for input{f' to {node_id!r}' if node_id else ''}",
                code="dag.input.not_waiting",
                context={"run": self.id, "node": node_id},
            )
        node = self._nodes[i]
        check_value(value, node.outputs[0].type, node=node.id, port="value", direction="input")
        self.execution.provide_input(value, node_id=node.id, actor="user")
        self._waiting_input = None
        self._record(node.id, "input", data=json.dumps(_jsonable_inputs({"v": value})["v"]))
        self.execution.node_started(node.id)
        self._complete(i, {"value": value})
        self._poke()

    # -- status -----------------------------------------------------------------------------------

    def node_status(self, node_id: str) -> NodeStatus:
        """The status of one node."""
        i = self._index[node_id]
        run = self.execution.node(node_id)
        err = self._errors.get(i)
        return NodeStatus(
            node_id=node_id,
            state=run.state.value,
            attempts=run.attempts,
            cached=self._cached[i],
            restored=self._restored_flag[i],
            duration=run.duration,
            digests=dict(self._digests[i] or {}),
            error=err[0] if err else run.error,
            traceback=err[1] if err else None,
            reason=self._reasons.get(i) or run.reason,
        )

    def status(self) -> dict[str, NodeStatus]:
        """Every node's status."""
        return {nid: self.node_status(nid) for nid in self._ids}

    @property
    def result(self) -> RunResult | None:
        """The result once the run has ended."""
        return self._result

    # -- internals: logging, waking --------------------------------------------------------------

    def _record(self, node: str | None, event: str, attempt: int = 0, data: str | None = None) -> None:
        if self._log is not None:
            self._log.append(self.id, node, event, attempt, data)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    def _push(self, i: int) -> None:
        heapq.heappush(self._ready, (-self._priorities[i], i))

    def _policy(self, i: int) -> NodePolicy:
        return self._nodes[i].policy

    # -- restore ----------------------------------------------------------------------------------

    def _restore(self, records: Iterable[Any]) -> None:
        for rec in records:
            if rec.node is None:
                continue
            i = self._index.get(rec.node)
            if i is None:
                continue
            if rec.event == "completed":
                self._restored[i] = ("completed", rec.data)
            elif rec.event == "skipped":
                self._restored[i] = ("skipped", rec.data)
            elif rec.event == "input":
                self.inputs[rec.node] = _restore_inputs({"v": rec.data})["v"]
            elif rec.event == "retry":
                self._restored.pop(i, None)

    # -- the driver -------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Run to the end (completed, failed or cancelled) and return the result."""
        if self._started:
            raise ConflictError(f"run {self.id} is already running or ran", code="dag.run.started")
        self._started = True
        ex = self.execution
        ex.start()
        self._record(None, "started")
        for i in range(len(self._ids)):
            if self._remaining[i] == 0:
                self._push(i)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._drive()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            state = ex.state.value
            if not ex.is_terminal:  # cancelled from outside (our caller's scope)
                ex.cancel("cancelled: the caller stopped the run")
                state = "cancelled"
            if self._log is not None:
                self._log.set_state(self.id, state, ex.error)
        self._result = RunResult(
            run_id=self.id,
            state=ex.state.value,
            outputs={
                nid: (self._values[i] or {}).get("value")
                for i, nid in enumerate(self._ids)
                if self._nodes[i].kind is NodeKind.OUTPUT and self._state[i] == _DONE
            },
            error=ex.error,
            executed=self.executed,
            cached=self.cached,
            restored=self.restored,
            status_of=self.status,
        )
        return self._result

    async def _drive(self) -> None:
        ex = self.execution
        total = len(self._ids)
        limit = self._settings.max_concurrency
        type_limits = self._settings.type_limits
        budget = 0
        while True:
            if ex.is_terminal:
                return
            if ex.is_running:
                ready = self._ready
                with gc_paused():  # a burst builds many short-lived, acyclic objects
                    while ready and self._running < limit and ex.is_running:
                        _, i = heapq.heappop(ready)
                        if type_limits:
                            t = self._nodes[i].type
                            cap = type_limits.get(t)
                            if cap is not None and self._running_by_type.get(t, 0) >= cap:
                                self._waiting_by_type.setdefault(t, []).append((0.0, i))
                                continue
                        self._launch(i)
                        budget += 1
                        if budget >= 256:
                            budget = 0
                            await anyio.lowlevel.checkpoint()
                            if ex.is_terminal:
                                return
            if ex.is_terminal:
                return
            if self._finished >= total and self._running == 0 and ex.is_running:
                self._finish_run()
                return
            if self._running == 0 and not self._ready and ex.is_running and self._waiting_input is None:
                failed = [self._ids[i] for i, s in enumerate(self._state) if s == _FAILED]
                if failed and self._settings.wait_on_failure:  # stay open: a command decides
                    self._wake = anyio.Event()
                    await self._wake.wait()
                    self._wake = None
                    continue
                if failed:
                    self._fail_run(f"{len(failed)} node(s) failed: {', '.join(failed[:5])}")
                    return
                stuck = [self._ids[i] for i, s in enumerate(self._state) if s in (_WAIT, _READY)]
                self._fail_run(f"no node can run: {', '.join(stuck[:5])} wait for nodes that will not finish")
                return
            if self._log is not None:
                self._log.flush()
            self._wake = anyio.Event()
            if self._ready and ex.is_running and self._running < limit:
                continue
            await self._wake.wait()
            self._wake = None

    def _finish_run(self) -> None:
        ex = self.execution
        if self._log is not None:
            self._log.flush()
        if any(s == _FAILED for s in self._state):
            self._fail_run("a node failed")
            return
        ex.complete(
            {nid: (self._values[i] or {}).get("value") for i, nid in enumerate(self._ids)
             if self._nodes[i].kind is NodeKind.OUTPUT and self._state[i] == _DONE}
        )
        self._record(None, "completed")

    def _fail_run(self, error: str) -> None:
        ex = self.execution
        if not ex.is_terminal:
            ex.fail(error)
        self._record(None, "failed", data=json.dumps({"error": error}))
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- one node ---------------------------------------------------------------------------------

    def _launch(self, i: int) -> None:
        """Decide what a ready node does: restore, skip, pass a value through, hit the memo, or run."""
        state = self._state[i]
        if state == _SKIPPED:  # skipped by a command while it waited
            self._release(i)
            return
        restored = self._restored.pop(i, None)
        node = self._nodes[i]
        nid = node.id
        if restored is not None:
            kind, data = restored
            self._restored_flag[i] = True
            self.restored += 1
            if kind == "completed":
                values, digests = self._decode_outputs(data["o"])
                self._cached[i] = bool(data.get("c"))
                self.execution.node_started(nid)
                self._deliver(i, values, digests)
            else:
                outputs = data.get("o")
                if outputs is None:
                    self._mark_skipped(i, data.get("r", "skipped"), log=False)
                else:
                    values, digests = self._decode_outputs(outputs)
                    self._values[i], self._digests[i] = values, digests
                    self._outputs_by_id[nid] = values
                    self._mark_skipped(i, data.get("r", "skipped"), log=False, keep_values=True)
                self._release(i)
            return
        if not node.enabled:
            self._skip(i, "disabled")
            return
        gathered = self._gather(i)
        if gathered is None:
            return
        inputs, in_digests = gathered
        kind = node.kind
        if kind is NodeKind.INPUT:
            if nid in self.inputs:
                value = self.inputs[nid]
            elif node.outputs[0].default is not None:
                value = node.outputs[0].default
            else:
                self._waiting_input = i
                self.execution.wait_for_input(f"a {node.outputs[0].type} value for input {nid!r}", node_id=nid)
                self._record(nid, "waiting")
                return
            try:
                check_value(value, node.outputs[0].type, node=nid, port="value", direction="input")
            except ValidationError as exc:
                self.execution.node_started(nid)
                self._node_failed(i, exc, "", final=True)
                return
            self.execution.node_started(nid)
            self._complete(i, {"value": value})
            return
        if kind is NodeKind.OUTPUT or kind is NodeKind.CONTROL:
            self.execution.node_started(nid)
            self._complete(i, self._control_outputs(i, inputs))
            return
        policy = self._policy(i)
        try:
            resolved = self.tracker.resolve(node.type)
            executor_name = executor_of(node, resolved.implementation, self.tracker.executors)
        except SymphonyError as exc:
            self.execution.node_started(nid)
            self._node_failed(i, exc, "", final=True)
            return
        memo_key = None
        if resolved.pure and policy.cache and self._settings.memoize:
            memo_key = self._memo_key(i, resolved, policy, in_digests)
            hit = self.tracker._memo_get(memo_key)
            if hit is not None:
                values, digests = self._decode_outputs(json.loads(hit))
                self.execution.node_started(nid)
                self._record(nid, "started", 1)
                self._cached[i] = True
                self.cached += 1
                self._record(nid, "completed", 1, '{"c":1,"o":' + hit + "}")
                self._deliver(i, values, digests)
                return
        self.execution.node_started(nid)
        attempt = self._tries[i] = self._tries[i] + 1
        inline = resolved.inline and is_simple(policy)
        if not inline:
            # An inline node starts and completes with no suspension point in between, so its
            # "started" record could never be committed without its "completed" one: only
            # nodes that run in a task log it.
            self._record(nid, "started", attempt)
        self._state[i] = _RUNNING
        self._running += 1
        t = node.type
        self._running_by_type[t] = self._running_by_type.get(t, 0) + 1
        if inline and executor_name == "async":
            context = NodeContext(self.id, nid, t, node.config, attempt)
            self.executed += 1
            try:
                outputs = resolved.implementation.execute(inputs, context)
            except Exception as exc:
                self._node_done_error(i, exc, traceback.format_exc(), memo_key, inputs, in_digests)
                return
            if inspect.isawaitable(outputs):
                self._record(nid, "started", attempt)
                assert self._tg is not None
                self._tg.start_soon(self._await_first, i, outputs, memo_key, inputs, in_digests)
                return
            self._node_done_ok(i, outputs, memo_key, in_digests)
            return
        assert self._tg is not None
        self._tg.start_soon(self._attempts, i, resolved, policy, executor_name, inputs, in_digests, memo_key)

    async def _await_first(
        self, i: int, awaitable: Any, memo_key: str | None, inputs: Mapping[str, Any], in_digests: dict[str, str]
    ) -> None:
        try:
            outputs = await awaitable
        except Exception as exc:
            self._node_done_error(i, exc, traceback.format_exc(), memo_key, inputs, in_digests)
            return
        self._node_done_ok(i, outputs, memo_key, in_digests)

    async def _attempts(
        self,
        i: int,
        resolved: _Resolved,
        policy: NodePolicy,
        executor_name: str,
        inputs: Mapping[str, Any],
        in_digests: dict[str, str],
        memo_key: str | None,
    ) -> None:
        node = self._nodes[i]
        nid = node.id
        executor = self.tracker.executors[executor_name]
        attempt = self._tries[i]
        while True:
            task = NodeTask(self.id, nid, node.type, resolved.provider, resolved.locator, inputs, node.config, attempt)
            context = NodeContext(self.id, nid, node.type, node.config, attempt, on_progress=self._progress_cb(nid))
            self.executed += 1
            try:
                if policy.timeout is not None:
                    try:
                        with anyio.fail_after(policy.timeout):
                            result = await executor.submit(task, resolved.implementation, context)
                    except TimeoutError:
                        raise OperationTimeoutError(
                            f"node {nid!r} timed out after {policy.timeout:g} s",
                            code="dag.node.timeout",
                            context={"node": nid, "timeout": policy.timeout, "attempt": attempt},
                        ) from None
                else:
                    result = await executor.submit(task, resolved.implementation, context)
                problem = self._check_outputs(i, result.outputs)
                if problem is not None:
                    raise problem
            except Exception as exc:
                if self.execution.is_terminal:  # the run was cancelled or failed meanwhile
                    self._release_slot(i)
                    return
                tb = traceback.format_exc()
                if attempt <= policy.retries and retried(policy, exc):
                    self._errors[i] = (f"{type(exc).__name__}: {exc}", tb)
                    self.execution.node_failed(nid, f"{type(exc).__name__}: {exc}")
                    self._record(nid, "failed", attempt, json.dumps({"error": str(exc), "traceback": tb, "retry": True}))
                    self.execution.retry_node(nid, actor="retry-policy")
                    await anyio.sleep(retry_wait(policy, attempt))
                    while not self.execution.is_running:  # paused or waiting for input
                        if self.execution.is_terminal:
                            return
                        if self._gate is None:
                            self._gate = anyio.Event()
                        await self._gate.wait()
                    attempt = self._tries[i] = attempt + 1
                    self.execution.node_started(nid)
                    self._record(nid, "started", attempt)
                    continue
                if policy.fallback is not None or policy.fallback_value is not None:
                    await self._fallback(i, policy, inputs, in_digests, exc, tb)
                    return
                self._node_done_error(i, exc, tb, memo_key, inputs, in_digests, checked=True)
                return
            self._node_done_ok(i, result.outputs, memo_key, in_digests, checked=True)
            return

    async def _fallback(
        self,
        i: int,
        policy: NodePolicy,
        inputs: Mapping[str, Any],
        in_digests: dict[str, str],
        exc: BaseException,
        tb: str,
    ) -> None:
        node = self._nodes[i]
        self._reasons[i] = f"fallback after {type(exc).__name__}: {exc}"
        if policy.fallback_value is not None:
            fixed = policy.fallback_value
            self._node_done_ok(i, {p.name: fixed.get(p.name) for p in node.outputs}, None, in_digests)
            return
        # the fallback node of the workflow runs in this node's place, with this node's inputs
        assert policy.fallback is not None
        try:
            stand_in = self.workflow.nodes.get(policy.fallback)
            if stand_in is None:
                raise NotFoundError(
                    f"node {node.id!r}: fallback node {policy.fallback!r} is not in the workflow",
                    code="dag.fallback.unknown",
                    context={"node": node.id, "fallback": policy.fallback},
                )
            resolved = self.tracker.resolve(stand_in.type)
            executor = self.tracker.executors[executor_of(stand_in, resolved.implementation, self.tracker.executors)]
            context = NodeContext(self.id, node.id, stand_in.type, stand_in.config, 1)
            task = NodeTask(self.id, node.id, stand_in.type, resolved.provider, resolved.locator, inputs, stand_in.config)
            if stand_in.policy.timeout is not None:
                with anyio.fail_after(stand_in.policy.timeout):
                    result = await executor.submit(task, resolved.implementation, context)
            else:
                result = await executor.submit(task, resolved.implementation, context)
        except Exception as fallback_exc:
            self._node_done_error(i, fallback_exc, traceback.format_exc(), None, inputs, in_digests, checked=True)
            return
        outputs = result.outputs
        if isinstance(outputs, Mapping):  # the stand-in may have more outputs than this node
            outputs = {p.name: outputs[p.name] for p in node.outputs if p.name in outputs}
        self._node_done_ok(i, outputs, None, in_digests)

    def _progress_cb(self, nid: str) -> Any:
        def report(percent: float, message: str) -> None:
            self.execution.node_progress(nid, percent, message)

        return report

    # -- outcomes ---------------------------------------------------------------------------------

    def _check_outputs(self, i: int, outputs: Any) -> ValidationError | None:
        node = self._nodes[i]
        ports = {p.name: p.type for p in node.outputs}
        problem = outputs_problem(node.id, ports, outputs)
        if problem is not None or not self._settings.check_values:
            return problem
        for port in node.outputs:
            if port.type != "any" and not checker_for(port.type)(outputs[port.name]):
                try:
                    check_value(outputs[port.name], port.type, node=node.id, port=port.name, direction="output")
                except ValidationError as exc:
                    return exc
        return None

    def _release_slot(self, i: int) -> None:
        self._running -= 1
        t = self._nodes[i].type
        left = self._running_by_type[t] = self._running_by_type[t] - 1
        waiting = self._waiting_by_type.get(t)
        if waiting and left < self._settings.type_limits.get(t, 1 << 30):
            heapq.heappush(self._ready, waiting.pop(0))

    def _node_done_ok(
        self, i: int, outputs: Any, memo_key: str | None, in_digests: dict[str, str], *, checked: bool = False
    ) -> None:
        if self.execution.is_terminal:
            self._release_slot(i)
            return
        problem = None if checked else self._check_outputs(i, outputs)
        if problem is not None:
            self._release_slot(i)
            self._node_failed(i, problem, "", final=True)
            self._poke()
            return
        try:
            encoded = self._encode_outputs(i, outputs, in_digests)
        except SymphonyError as exc:
            self._release_slot(i)
            self._node_failed(i, exc, traceback.format_exc(), final=True)
            self._poke()
            return
        self._release_slot(i)
        entry, values, digests = encoded
        text = _entry_text(entry)
        self._record(self._ids[i], "completed", self._tries[i], '{"o":' + text + "}")
        if memo_key is not None:
            self.tracker._memo_put(memo_key, self._nodes[i].type, text)
        self._deliver(i, values, digests)
        self._poke()

    def _node_done_error(
        self,
        i: int,
        exc: BaseException,
        tb: str,
        memo_key: str | None,
        inputs: Mapping[str, Any],
        in_digests: dict[str, str],
        *,
        checked: bool = False,
    ) -> None:
        self._release_slot(i)
        if self.execution.is_terminal:
            return
        policy = self._policy(i)
        if not checked and (policy.retries or policy.fallback is not None or policy.fallback_value is not None):
            # an inline first attempt failed: the policy takes over in a task
            self._running += 1
            t = self._nodes[i].type
            self._running_by_type[t] = self._running_by_type.get(t, 0) + 1
            resolved = self.tracker.resolve(self._nodes[i].type)
            assert self._tg is not None
            self._tg.start_soon(self._attempts, i, resolved, policy, "async", inputs, in_digests, memo_key)
            return
        self._node_failed(i, exc, tb, final=True)
        self._poke()

    def _node_failed(self, i: int, exc: BaseException, tb: str, *, final: bool) -> None:
        nid = self._ids[i]
        message = f"{type(exc).__name__}: {exc}"
        self._errors[i] = (message, tb)
        self.execution.node_failed(nid, message)
        self._record(nid, "failed", self._tries[i], json.dumps({"error": message, "traceback": tb}))
        policy = self._policy(i)
        if policy.optional:
            node = self._nodes[i]
            # its outputs are placeholders: each dependent input sees its own port's default (_gather)
            default = dict.fromkeys((p.name for p in node.outputs), None)
            self._state[i] = _FAILED
            self.execution.node_skipped(nid, f"optional node failed: {message}")
            self._reasons[i] = f"optional node failed: {message}"
            try:
                entry, values, digests = self._encode_outputs(i, default, {})
            except SymphonyError:
                entry, values, digests = None, None, None
            self._record(nid, "skipped", 0, json.dumps({"r": self._reasons[i], "o": entry}))
            self._state[i] = _SKIPPED
            if values is not None:
                self._values[i], self._digests[i] = values, digests
                self._outputs_by_id[nid] = values
            self._finished += 1
            self._release(i)
            return
        self._state[i] = _FAILED
        if self._settings.fail_fast:
            self._fail_run(f"node {nid!r} failed: {message}")

    def _complete(self, i: int, outputs: Mapping[str, Any]) -> None:
        """Complete a built-in node (input, output, control) with ``outputs``."""
        try:
            entry, values, digests = self._encode_outputs(i, outputs, {})
        except SymphonyError as exc:
            self._node_failed(i, exc, "", final=True)
            return
        self._record(self._ids[i], "completed", 1, '{"o":' + _entry_text(entry) + "}")
        self._deliver(i, values, digests)

    def _deliver(self, i: int, values: dict[str, Any], digests: dict[str, str]) -> None:
        nid = self._ids[i]
        self._values[i] = values
        self._digests[i] = digests
        self._outputs_by_id[nid] = values
        self._state[i] = _DONE
        self._finished += 1
        self.execution.node_completed(nid, values)
        self._release(i)

    def _release(self, i: int) -> None:
        if self._released[i]:
            return
        self._released[i] = True
        remaining = self._remaining
        for s in self._succ[i]:
            remaining[s] -= 1
            if remaining[s] == 0:
                self._push(s)

    def _skip(self, i: int, reason: str) -> None:
        self._mark_skipped(i, reason, log=True)
        self._release(i)

    def _mark_skipped(self, i: int, reason: str, *, log: bool, keep_values: bool = False) -> None:
        nid = self._ids[i]
        if self._state[i] != _SKIPPED:
            if self.execution.node(nid).state.value != "skipped":
                self.execution.node_skipped(nid, reason)
            self._state[i] = _SKIPPED
            self._finished += 1
        self._reasons[i] = reason
        if not keep_values:
            self._values[i] = None
        if log:
            self._record(nid, "skipped", 0, json.dumps({"r": reason, "o": None}))

    # -- values -----------------------------------------------------------------------------------

    def _gather(self, i: int) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The node's input values and their digests, or ``None`` after skipping it."""
        node = self._nodes[i]
        edges = self._in[i]
        inputs: dict[str, Any] = {}
        digests: dict[str, str] = {}
        if not edges:
            return self._defaults(i, inputs, digests)
        collecting = node.kind is NodeKind.CONTROL and node.type in ("merge", "join")
        multi: dict[str, list[Any]] = {}
        dead_required: str | None = None
        live_any = False
        for edge, src in edges:
            values = self._values[src]
            delivered = values is not None
            if edge.condition is not None:
                if not delivered:
                    if not collecting:
                        self._skip(i, f"upstream {edge.source!r} was skipped")
                        return None
                    continue
                try:
                    taken = edge.expression.test(self._outputs_by_id) if edge.expression else True
                except ValidationError as exc:
                    self.execution.node_started(node.id)
                    self._node_failed(i, exc, "", final=True)
                    return None
                if not taken:
                    if not collecting:
                        self._skip(i, f"condition of edge {edge.id!r} is false")
                        return None
                    continue
            if edge.target_port is None or edge.source_port is None:
                if delivered or self._state[src] == _SKIPPED:
                    live_any = live_any or delivered
                continue
            if not delivered:
                port = node.input(edge.target_port)
                if port is not None and port.required and not collecting:
                    dead_required = edge.source
                continue
            live_any = True
            port_obj = node.input(edge.target_port)
            if self._state[src] == _SKIPPED:  # an optional node that failed: the port's default stands in
                value = port_obj.default if port_obj is not None else None
                if not (collecting or (port_obj is not None and port_obj.multiple)):
                    inputs[edge.target_port] = value
                    digests[edge.target_port] = str(self._codec.digest(self._codec.encode(value)[1]))
                    continue
            else:
                value = values.get(edge.source_port)
            if collecting or (port_obj is not None and port_obj.multiple):
                multi.setdefault(edge.target_port, []).append(value)
                continue
            inputs[edge.target_port] = value
            src_digests = self._digests[src]
            if src_digests is not None:
                digests[edge.target_port] = src_digests.get(edge.source_port, "")
        if dead_required is not None:
            self._skip(i, f"upstream {dead_required!r} was skipped")
            return None
        if collecting and not live_any:
            self._skip(i, "no incoming branch was taken")
            return None
        for port_name, vals in multi.items():
            inputs[port_name] = vals
            digests[port_name] = str(self._codec.digest(self._codec.encode(vals)[1]))
        return self._defaults(i, inputs, digests)

    def _defaults(
        self, i: int, inputs: dict[str, Any], digests: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]] | None:
        node = self._nodes[i]
        for port in node.inputs:
            if port.name not in inputs:
                if port.required and node.kind not in (NodeKind.CONTROL, NodeKind.OUTPUT):
                    self.execution.node_started(node.id)
                    self._node_failed(
                        i,
                        ValidationError(
                            f"node {node.id!r}: required input {port.name!r} has no value",
                            code="dag.value.missing_input",
                            context={"node": node.id, "port": port.name},
                        ),
                        "",
                        final=True,
                    )
                    return None
                if port.default is not None or node.kind is not NodeKind.CONTROL:
                    inputs[port.name] = port.default
                    digests[port.name] = str(self._codec.digest(self._codec.encode(port.default)[1]))
            elif self._settings.check_values and port.type != "any" and node.kind is not NodeKind.CONTROL:
                value = inputs[port.name]
                if not checker_for(port.type)(value):
                    try:
                        check_value(value, port.type, node=node.id, port=port.name, direction="input")
                    except ValidationError as exc:
                        self.execution.node_started(node.id)
                        self._node_failed(i, exc, "", final=True)
                        return None
        return inputs, digests

    def _control_outputs(self, i: int, inputs: Mapping[str, Any]) -> dict[str, Any]:
        node = self._nodes[i]
        if node.kind is NodeKind.OUTPUT:
            return {"value": inputs.get("value")}
        value = inputs.get("in")
        if node.type == "merge":
            value = value[0] if isinstance(value, list) and value else None
        elif node.type == "join":
            value = list(value) if isinstance(value, list) else []
        names = [p.name for p in node.outputs] or ["out"]
        return dict.fromkeys(names, value)

    def _encode_outputs(
        self, i: int, outputs: Mapping[str, Any], in_digests: Mapping[str, str]
    ) -> tuple[dict[str, list[Any]], dict[str, Any], dict[str, str]]:
        codec = self._codec
        inline_max = self._settings.inline_max
        entry: dict[str, list[Any]] = {}
        values: dict[str, Any] = {}
        digests: dict[str, str] = {}
        for port, value in outputs.items():
            kind, data = codec.encode(value)
            digest = codec.digest(data)
            text = str(digest)
            if len(data) > inline_max:
                nid = self._ids[i]
                self.tracker.store.put(
                    data,
                    media_type="application/octet-stream" if kind == "b" else "application/json",
                    producer={"workflow": self.workflow.id, "run": self.id, "node": nid},
                    parents=[d for d in in_digests.values() if d.count(":") == 2],
                )
                inline = None
            elif kind == "b":
                inline = base64.b64encode(data).decode("ascii")
            else:
                inline = data.decode("utf-8")
            entry[port] = [text, kind, inline]
            values[port] = value
            digests[port] = text
        return entry, values, digests

    def _decode_outputs(self, entry: Mapping[str, list[Any]]) -> tuple[dict[str, Any], dict[str, str]]:
        values = {port: self.tracker.load_value(item) for port, item in entry.items()}
        digests = {port: item[0] for port, item in entry.items()}
        return values, digests

    def _memo_key(self, i: int, resolved: _Resolved, policy: NodePolicy, in_digests: Mapping[str, str]) -> str:
        # the policy fields that can change a node's outputs: only cache_salt (retries, timeout and
        # fallbacks never reach the memo: a fallback's outputs are not memoized)
        node = self._nodes[i]
        return self._codec.fingerprint(
            [node.type, resolved.version, policy.cache_salt, node.config, sorted(in_digests.items()),
             [p.name for p in node.outputs]]
        )
