"""The node execution contract: what a workflow node type's implementation looks like.

A plugin registers each node type together with its implementation::

    @hookimpl
    def symphony_register_node_types(registry):
        registry.add("text.upper", kind="operator", inputs={"text": "text"},
                     outputs={"text": "text"}, implementation=Upper())

The runtime (the DAG tracker) calls :meth:`NodeImplementation.execute` with the node's input
values (checked against the node's port types) and a :class:`NodeContext`, and checks the
returned mapping against the output ports. Two bases implement it:

- :class:`~symphony_sdk.operator.Operator`: a cheap, deterministic utility. ``process`` may be
  a plain or an ``async`` method. Operators are ``pure`` by default (same inputs and config give
  the same outputs), so their results are memoized.
- :class:`Instrument`: an AI model or other costly, asynchronous step. It may stream chunks of
  output (:meth:`Instrument.stream`) and declares a :class:`ResourceEstimate`.

Where a node runs is the implementation's ``executor``: ``"async"`` (in the event loop: plain
functions that never block, and coroutines), ``"thread"`` (blocking calls) or ``"process"``
(CPU-heavy work; the worker process finds the implementation again by plugin id and type name,
nothing is pickled but the inputs and outputs).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, ClassVar, Literal

import attrs

from symphony.commons.errors import PluginError, ValidationError

__all__ = [
    "EXECUTORS",
    "ExecutorName",
    "Instrument",
    "NodeContext",
    "NodeImplementation",
    "ResourceEstimate",
    "implementation_version",
]

ExecutorName = Literal["async", "thread", "process"]
EXECUTORS: tuple[str, ...] = ("async", "thread", "process")
"""The executors a node implementation may ask for."""


@attrs.frozen
class ResourceEstimate:
    """What one execution is expected to need: memory in bytes and an optional cost (any unit)."""

    memory_bytes: int = 0
    cost: float | None = None

    def __attrs_post_init__(self) -> None:
        if isinstance(self.memory_bytes, bool) or not isinstance(self.memory_bytes, int) or self.memory_bytes < 0:
            raise ValidationError(
                "memory_bytes must be a non-negative integer",
                code="node.resources.invalid",
                context={"field": "memory_bytes", "value": repr(self.memory_bytes)},
            )
        if self.cost is not None and (
            isinstance(self.cost, bool) or not isinstance(self.cost, int | float) or self.cost < 0
        ):
            raise ValidationError(
                "cost must be a non-negative number or None",
                code="node.resources.invalid",
                context={"field": "cost", "value": repr(self.cost)},
            )


def _ignore_progress(percent: float, message: str) -> None:
    return None


async def _ignore_chunk(chunk: Any) -> None:
    return None


@attrs.frozen
class NodeContext:
    """What an implementation knows about the node it runs: ids, config, attempt, callbacks."""

    run_id: str
    node_id: str
    node_type: str
    config: Mapping[str, Any] = attrs.field(factory=dict)
    attempt: int = 1
    on_progress: Callable[[float, str], None] = attrs.field(default=_ignore_progress, repr=False)
    on_chunk: Callable[[Any], Awaitable[None]] = attrs.field(default=_ignore_chunk, repr=False)
    model: Any = attrs.field(default=None, repr=False)
    """The model instance leased for this execution (an instrument naming a ``model_key``, run
    by a conductor with the pool and arbitration installed); ``None`` otherwise."""

    def progress(self, percent: float, message: str = "") -> None:
        """Report how far the node is (0-100)."""
        self.on_progress(percent, message)

    async def chunk(self, chunk: Any) -> None:
        """Publish one chunk of streamed output (instruments)."""
        await self.on_chunk(chunk)


class NodeImplementation(abc.ABC):
    """The base of every node implementation (see the module docstring)."""

    version: ClassVar[str] = "1"
    """Bump it when the same inputs and config would now give other outputs (it is part of the memo key)."""
    pure: ClassVar[bool] = False
    """True when outputs depend only on inputs and config: results are memoized."""
    executor: ClassVar[ExecutorName] = "async"
    """Where it runs: ``async`` (event loop), ``thread`` (blocking) or ``process`` (CPU-heavy)."""
    batchable: ClassVar[bool] = False
    """True when :meth:`execute_batch` runs several input sets at once more cheaply than one by one."""

    @abc.abstractmethod
    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Any:
        """Run once: return the outputs mapping (or an awaitable of it)."""

    async def execute_batch(
        self, batch: list[Mapping[str, Any]], context: NodeContext
    ) -> list[Mapping[str, Any]]:
        """Run several input sets; the default runs them one by one."""
        results = []
        for inputs in batch:
            result = self.execute(inputs, context)
            if isinstance(result, Awaitable):
                result = await result
            results.append(result)
        return results


class Instrument(NodeImplementation):
    """An AI model (or any costly asynchronous step) as a node type.

    Implement :meth:`stream` to produce chunks (each is published through the context, and
    :meth:`collect` turns them into the outputs), or override :meth:`execute` directly.
    ``resources`` is the estimate the runtime and the arbitration engine plan with.

    >>> import anyio
    >>> class Echo(Instrument):
    ...     async def stream(self, inputs, context):
    ...         for word in inputs["prompt"].split():
    ...             yield word
    ...     def collect(self, chunks):
    ...         return {"text": " ".join(chunks)}
    >>> anyio.run(Echo().execute, {"prompt": "hi there"}, NodeContext("r", "n", "echo"))
    {'text': 'hi there'}
    """

    resources: ClassVar[ResourceEstimate] = ResourceEstimate()
    model_key: ClassVar[str | None] = None
    """The pool key of the model this instrument runs on; when set, a conductor with the
    ``pool-manager`` and ``arbitration`` services asks arbitration for it, leases it for the
    execution and hands the instance over as ``context.model``."""

    def model_loader(self) -> Any:
        """The pool loader for :attr:`model_key` (registered with the pool on first use when no
        plugin registered one); ``None`` (the default) when the providing plugin registers it."""
        return None

    def estimate(self, inputs: Mapping[str, Any], config: Mapping[str, Any]) -> ResourceEstimate:
        """The resources one execution with ``inputs`` and ``config`` needs (default: ``resources``)."""
        return self.resources

    def stream(self, inputs: Mapping[str, Any], context: NodeContext) -> AsyncIterator[Any]:
        """Yield chunks of output; override this or :meth:`execute`.

        Raises:
            PluginError: ``sdk.instrument.no_output`` when the subclass overrides neither.
        """
        raise PluginError(
            f"instrument {type(self).__name__} produces no output: it overrides neither stream() nor execute()",
            code="sdk.instrument.no_output",
            context={"instrument": type(self).__name__},
            hint="override stream() to yield chunks, or execute() to return the outputs",
        )

    def collect(self, chunks: list[Any]) -> Mapping[str, Any]:
        """Turn the streamed chunks into the outputs (default: ``{"chunks": chunks}``)."""
        return {"chunks": chunks}

    async def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        """Consume :meth:`stream`, publishing each chunk, and :meth:`collect` the outputs."""
        chunks: list[Any] = []
        async for chunk in self.stream(inputs, context):
            chunks.append(chunk)
            await context.chunk(chunk)
        return self.collect(chunks)


def implementation_version(implementation: object) -> str:
    """The ``version`` an implementation declares (``"1"`` when it declares none)."""
    version = getattr(implementation, "version", "1")
    return version if isinstance(version, str) else str(version)
