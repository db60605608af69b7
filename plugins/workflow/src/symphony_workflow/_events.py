"""Execution events and where they go.

An :class:`~symphony_workflow._execution.Execution` emits :class:`ExecutionEvent` objects to
*sinks* (anything with ``emit(event)``):

- :class:`EventHub`: in-process fan-out to any number of async subscribers, each with its own
  bounded buffer and filters (event kinds, node ids, minimum log level), plus a bounded
  history. A subscriber that falls behind loses events (counted in ``dropped``) instead of
  slowing the execution down.
- :class:`HookEventSink`: calls the ``symphony_handle_workflow_event(event)`` hook of every active
  plugin (the workflow plugin adds that hookspec to the kernel).
- :class:`BusEventSink`: publishes ``workflow.<kind>`` messages on the kernel's message bus.
- :class:`CallbackSink`: calls a plain function.

A sink that raises is logged and skipped: observers never break the state machine.
Emit from the event loop's thread (the hub uses anyio memory streams, which are not
thread-safe).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from symphony.commons.errors import ValidationError

__all__ = [
    "LOG_LEVELS",
    "BusEventSink",
    "CallbackSink",
    "EventHub",
    "EventKind",
    "EventSink",
    "ExecutionEvent",
    "HookEventSink",
    "Subscription",
]

LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
"""Log levels of ``log`` events, lowest first."""


class EventKind(enum.StrEnum):
    """What happened."""

    STARTED = "started"
    STATE_CHANGED = "state_changed"
    NODE_STATE_CHANGED = "node_state_changed"
    NODE_STARTED = "node_started"
    NODE_PROGRESS = "node_progress"
    NODE_COMPLETED = "node_completed"
    NODE_FAILED = "node_failed"
    NODE_SKIPPED = "node_skipped"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOG = "log"
    COMMAND = "command"


@attrs.frozen
class ExecutionEvent:
    """One event of one execution. ``seq`` increases by one per event of that execution."""

    kind: EventKind
    execution_id: str
    workflow_id: str
    seq: int
    at: datetime
    node_id: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    actor: str = "system"

    @property
    def topic(self) -> str:
        """The bus message type: ``workflow.<kind>``."""
        return f"workflow.{self.kind.value}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        from symphony_workflow._serialization import to_jsonable

        return {
            "kind": self.kind.value,
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "seq": self.seq,
            "at": to_jsonable(self.at),
            "node_id": self.node_id,
            "data": to_jsonable(dict(self.data)),
            "actor": self.actor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionEvent:
        """The inverse of :meth:`to_dict`; :class:`ValidationError` on a malformed dict."""
        try:
            return cls(
                kind=EventKind(data["kind"]),
                execution_id=str(data["execution_id"]),
                workflow_id=str(data["workflow_id"]),
                seq=int(data["seq"]),
                at=datetime.fromisoformat(str(data["at"])),
                node_id=data.get("node_id"),
                data=dict(data.get("data") or {}),
                actor=str(data.get("actor", "system")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValidationError(
                f"malformed execution event: {exc}",
                code="workflow.event.malformed",
                context={"event": repr(data)[:200]},
            ) from None


@runtime_checkable
class EventSink(Protocol):
    """Anything that receives execution events."""

    def emit(self, event: ExecutionEvent) -> None:
        """Take one event; must not block."""


class CallbackSink:
    """Calls ``fn(event)`` for every event."""

    def __init__(self, fn: Callable[[ExecutionEvent], Any]) -> None:
        self._fn = fn

    def emit(self, event: ExecutionEvent) -> None:
        """Call the function."""
        self._fn(event)


class HookEventSink:
    """Calls ``symphony_handle_workflow_event(event=...)`` on a pluggy hook relay (``kernel.hook``)."""

    def __init__(self, hook: Any) -> None:
        self._hook = hook

    def emit(self, event: ExecutionEvent) -> None:
        """Call every plugin's ``symphony_handle_workflow_event`` implementation."""
        caller = getattr(self._hook, "symphony_handle_workflow_event", None)
        if caller is not None:
            caller(event=event)


class BusEventSink:
    """Publishes each event as a ``workflow.<kind>`` message on a :class:`symphony.bus.Bus`."""

    def __init__(self, bus: Any, *, source: str = "symphony-workflow") -> None:
        self._bus = bus
        self._source = source

    def emit(self, event: ExecutionEvent) -> None:
        """Publish without waiting (the bus applies each subscriber's backpressure policy)."""
        from symphony.bus import Message

        self._bus.publish_nowait(Message(event.topic, event.to_dict()))


@attrs.frozen
class _Filter:
    kinds: frozenset[EventKind] | None
    node_ids: frozenset[str] | None
    min_level: int

    def matches(self, event: ExecutionEvent) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.node_ids is not None and event.node_id not in self.node_ids:
            return False
        if event.kind is EventKind.LOG and self.min_level:
            level = LOG_LEVELS.get(str(event.data.get("level", "info")), 20)
            return level >= self.min_level
        return True


class Subscription:
    """One subscriber of an :class:`EventHub`: ``async for event in subscription``.

    Use it as an async context manager (or call :meth:`close`) to unsubscribe.
    """

    def __init__(
        self,
        hub: EventHub,
        send: MemoryObjectSendStream[ExecutionEvent],
        receive: MemoryObjectReceiveStream[ExecutionEvent],
        filt: _Filter,
    ) -> None:
        self._hub = hub
        self._send = send
        self._receive = receive
        self.filter = filt
        self.dropped = 0
        """Events this subscriber missed because its buffer was full."""
        self.delivered = 0
        """Events put into this subscriber's buffer."""

    def _offer(self, event: ExecutionEvent) -> bool:
        if not self.filter.matches(event):
            return True
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        else:
            self.delivered += 1
        return True

    async def receive(self) -> ExecutionEvent:
        """The next event; raises ``anyio.EndOfStream`` when the hub closed."""
        return await self._receive.receive()

    def receive_nowait(self) -> ExecutionEvent:
        """The next buffered event; raises ``anyio.WouldBlock`` if there is none."""
        return self._receive.receive_nowait()

    def __aiter__(self) -> AsyncIterator[ExecutionEvent]:
        return self._receive.__aiter__()

    def close(self) -> None:
        """Stop receiving events."""
        self._hub._remove(self)
        self._send.close()
        self._receive.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Fan-out of execution events to async subscribers, with a bounded history.

    >>> hub = EventHub(history=100)
    >>> sub = hub.subscribe(kinds=["node_completed"])
    >>> hub.subscribers
    1
    """

    def __init__(self, *, history: int = 1000) -> None:
        self._subs: list[Subscription] = []
        self._history: deque[ExecutionEvent] = deque(maxlen=max(0, history))
        self._closed = False

    def subscribe(
        self,
        *,
        kinds: Iterable[EventKind | str] | None = None,
        node_ids: Iterable[str] | None = None,
        min_level: str | None = None,
        buffer: int = 256,
        replay: bool = False,
    ) -> Subscription:
        """A new subscriber receiving the events that pass the filters.

        ``buffer`` bounds its queue (``math.inf`` for unbounded); ``replay`` first delivers the
        matching events still in the history.
        """
        if self._closed:
            raise ValidationError("the event hub is closed", code="workflow.events.closed")
        try:
            kind_set = None if kinds is None else frozenset(EventKind(k) for k in kinds)
        except ValueError as exc:
            raise ValidationError(
                f"unknown event kind: {exc}",
                code="workflow.events.unknown_kind",
                context={"known": [k.value for k in EventKind]},
            ) from None
        level = 0
        if min_level is not None:
            if min_level not in LOG_LEVELS:
                raise ValidationError(
                    f"unknown log level {min_level!r}",
                    code="workflow.events.unknown_level",
                    context={"known": list(LOG_LEVELS)},
                )
            level = LOG_LEVELS[min_level]
        if buffer != math.inf and (not isinstance(buffer, int) or buffer < 1):
            raise ValidationError("buffer must be a positive integer", code="workflow.events.bad_buffer")
        send, receive = anyio.create_memory_object_stream[ExecutionEvent](buffer)
        sub = Subscription(
            self, send, receive, _Filter(kind_set, None if node_ids is None else frozenset(node_ids), level)
        )
        if replay:
            for event in self._history:
                sub._offer(event)
        self._subs.append(sub)
        return sub

    def emit(self, event: ExecutionEvent) -> None:
        """Record ``event`` in the history and offer it to every subscriber (never blocks)."""
        self._history.append(event)
        dead = [sub for sub in self._subs if not sub._offer(event)]
        for sub in dead:
            self._remove(sub)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def history(
        self, *, kinds: Iterable[EventKind | str] | None = None, node_id: str | None = None
    ) -> list[ExecutionEvent]:
        """Events still in the bounded history, oldest first, optionally filtered."""
        wanted = None if kinds is None else {EventKind(k) for k in kinds}
        return [
            e
            for e in self._history
            if (wanted is None or e.kind in wanted) and (node_id is None or e.node_id == node_id)
        ]

    @property
    def subscribers(self) -> int:
        """How many subscribers are attached."""
        return len(self._subs)

    def close(self) -> None:
        """End every subscription (their ``async for`` loops finish after the buffered events)."""
        self._closed = True
        for sub in list(self._subs):
            sub._send.close()
        self._subs.clear()
