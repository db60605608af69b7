"""Executors: where a node's implementation runs, all behind one protocol.

An executor gets a :class:`NodeTask` (plain data: ids, inputs, config, attempt, and how to find
the implementation again — the providing plugin's id and the type name, or an import locator)
and returns a :class:`NodeResult`. Cancelling the awaiting scope cancels the node: the
in-process executor cancels its coroutine, the thread executor waits for the blocking call to
return (a thread cannot be interrupted), the process executor kills its worker processes.
Distributed executors (Dask, Ray) implement the same protocol: they ship the task, not a
closure, and may return the outputs' digests when they stored them themselves.
"""

from __future__ import annotations

import inspect
import multiprocessing
import threading
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from symphony.commons.errors import ValidationError
from symphony_sdk.nodes import NodeContext

__all__ = [
    "Executor",
    "LocalExecutor",
    "NodeResult",
    "NodeTask",
    "ProcessExecutor",
    "ThreadExecutor",
    "locator_of",
]


@attrs.frozen
class NodeTask:
    """One execution of one node, as plain data an executor can ship anywhere."""

    run_id: str
    node_id: str
    node_type: str
    provider: str | None
    locator: str | None
    inputs: Mapping[str, Any]
    config: Mapping[str, Any]
    attempt: int = 1


@attrs.frozen
class NodeResult:
    """The outputs of one execution; ``digests`` when the executor stored them itself."""

    outputs: Any
    digests: Mapping[str, str] | None = None


@runtime_checkable
class Executor(Protocol):
    """Runs node tasks; see the module docstring."""

    name: str

    async def submit(self, task: NodeTask, implementation: Any, context: NodeContext) -> NodeResult:
        """Run ``task`` (``implementation`` is the in-process object, if the executor wants it)."""
        ...

    async def aclose(self) -> None:
        """Release workers and threads."""
        ...


def locator_of(implementation: object) -> str | None:
    """``module:QualName`` of the implementation's class, if a fresh process can import it."""
    cls = implementation if isinstance(implementation, type) else type(implementation)
    if "<locals>" in cls.__qualname__ or cls.__module__ in ("__main__", "builtins"):
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


class LocalExecutor:
    """In the event loop: a plain ``execute`` is called, an awaitable one awaited."""

    name = "async"

    async def submit(self, task: NodeTask, implementation: Any, context: NodeContext) -> NodeResult:
        """Run ``implementation.execute`` here."""
        result = implementation.execute(task.inputs, context)
        if inspect.isawaitable(result):
            result = await result
        return NodeResult(result)

    async def aclose(self) -> None:
        """Nothing to release."""


class ThreadExecutor:
    """A pool of worker threads for blocking implementations (``max_workers`` at once)."""

    name = "thread"

    def __init__(self, max_workers: int = 8) -> None:
        self.limiter = anyio.CapacityLimiter(max_workers)

    async def submit(self, task: NodeTask, implementation: Any, context: NodeContext) -> NodeResult:
        """Run ``implementation.execute`` in a worker thread (cancellation waits for it to return)."""

        def call() -> Any:
            result = implementation.execute(task.inputs, context)
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise ValidationError(
                    f"node type {task.node_type!r} is async: it cannot run on the thread executor",
                    code="dag.executor.async_on_thread",
                    context={"node": task.node_id, "type": task.node_type},
                )
            return result

        return NodeResult(await anyio.to_thread.run_sync(call, limiter=self.limiter))

    async def aclose(self) -> None:
        """Nothing to release (threads belong to anyio's pool)."""


class ProcessExecutor:
    """A pool of ``spawn``-ed worker processes for CPU-heavy implementations.

    A worker finds the implementation by the providing plugin's id and the type name (it calls
    that plugin's ``symphony_register_node_types`` hook into a fresh registry), or by the
    implementation's import locator; only inputs and outputs cross the process boundary.
    Cancelling a running task terminates the pool's processes (a new pool starts on demand).
    """

    name = "process"

    def __init__(self, max_workers: int = 2) -> None:
        self.max_workers = max_workers
        self._pool: Any = None
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}

    def _get_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                self._pool = multiprocessing.get_context("spawn").Pool(self.max_workers)
            return self._pool

    async def submit(self, task: NodeTask, implementation: Any, context: NodeContext) -> NodeResult:
        """Run the task in a worker process; ``RuntimeError`` from the worker keeps its traceback text."""
        from symphony_dag_tracker import _worker

        if task.provider is None and task.locator is None:
            raise ValidationError(
                f"node type {task.node_type!r} cannot run in a process: neither its plugin nor its class is importable",
                code="dag.executor.not_importable",
                context={"node": task.node_id, "type": task.node_type},
                hint="define the implementation at module level in an installed plugin",
            )
        pool = await anyio.to_thread.run_sync(self._get_pool)
        done = threading.Event()
        outcome: list[Any] = []

        def settle(value: Any) -> None:
            outcome.append(value)
            done.set()

        key = id(done)
        with self._lock:
            self._waiting[key] = (done, outcome)
        pool.apply_async(
            _worker.run_task,
            (task.provider, task.locator, task.node_type, dict(task.inputs), dict(task.config),
             task.run_id, task.node_id, task.attempt),
            callback=settle,
            error_callback=settle,
        )
        try:
            while not done.is_set():
                await anyio.to_thread.run_sync(done.wait, 0.25, abandon_on_cancel=True)
        except BaseException:
            if not done.is_set():
                self._terminate()
            raise
        finally:
            with self._lock:
                self._waiting.pop(key, None)
        value = outcome[0]
        if isinstance(value, BaseException):
            raise value
        ok, payload = value
        if not ok:
            raise _worker.WorkerError(payload)
        return NodeResult(payload)

    def _terminate(self) -> None:
        """Kill the workers; every other task still waiting on this pool fails (it can be retried)."""
        with self._lock:
            pool, self._pool = self._pool, None
            others = list(self._waiting.values())
        if pool is not None:
            pool.terminate()
            pool.join()
        from symphony_dag_tracker._worker import WorkerError

        for done, outcome in others:
            if not done.is_set():
                outcome.append(WorkerError("the worker pool was stopped to cancel another node"))
                done.set()

    async def aclose(self) -> None:
        """Stop the worker processes."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            await anyio.to_thread.run_sync(pool.join)
