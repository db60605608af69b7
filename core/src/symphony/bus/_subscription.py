"""Subscriptions: bounded per-subscriber queues with an explicit backpressure policy.

:meth:`Bus.subscribe <symphony.bus.Bus.subscribe>` returns a :class:`Subscription`, an
async iterator of :class:`~symphony.bus.Message` and an async (or plain) context
manager that unsubscribes on exit::

    async with bus.subscribe("workflow.node.*", buffer=100, policy="wait") as sub:
        async for msg in sub:
            ...

Backpressure policies
---------------------
Each subscription owns a queue of at most ``buffer`` messages. When it is full:

``"wait"`` (default)
    ``await bus.publish(msg)`` waits until the subscriber has taken a message: a slow
    subscriber slows its publishers down and nothing is lost. ``bus.publish_nowait(msg)``
    cannot wait, so it counts the message in the subscription's ``rejected`` figure and raises
    ``OperationTimeoutError(code="bus.would_block")`` naming the full subscriptions (every
    other subscription still got the message).

    The wait is bounded: a queue that stays full for ``slow_consumer_timeout`` seconds (the
    ``[bus]`` setting, default 2) marks its subscriber a *slow consumer*. The subscription is
    then closed (logged as ``bus.slow_consumer``, counted in ``slow_consumers``, and its
    ``slow_reason`` says why), the publishers it held go on, and its owner is told through
    ``on_slow`` -- a remote peer's subscription disconnects that peer. The fault lands on
    the subscriber that does not read, never on its publishers or on anyone else.
``"drop-oldest"``
    The oldest queued message is dropped to make room, and the subscription's ``dropped``
    counter (visible in ``bus.metrics.snapshot()``) goes up. Publishers never wait. Use it
    for telemetry where the newest value matters most.

Traffic subscriptions
---------------------
``bus.subscribe(pattern, traffic=True)`` sees *everything* of a matching type that passes
through the bus, not only events: each request as it is dispatched (from this process or from
a remote peer) and the response or error that answers it, including the refusals the bus gives
itself (no route, timeouts). This is what ``symphony bus monitor`` shows. A traffic
subscription must never slow the traffic it watches, so its policy is always ``"drop-oldest"``
(drops are counted like any other). With no traffic subscription open, the bus pays one
integer test per message.

Nothing is ever dropped silently. Within one subscription, messages arrive in publish order.
Across subscriptions there is no ordering guarantee.

Unsubscribing (``bus.unsubscribe(sub)``, ``sub.close()`` or leaving the ``async with``) stops
new deliveries at once; an iterator still running drains what is already queued and then
stops. Several tasks may consume one subscription; each message goes to one of them.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.lowlevel

from symphony.bus._message import Message
from symphony.bus._sync import Signal
from symphony.commons.errors import OperationTimeoutError, TransportError, ValidationError

if TYPE_CHECKING:
    from symphony.bus._metrics import BusMetrics

__all__ = ["DROP_OLDEST", "POLICIES", "WAIT", "CallbackSubscription", "Policy", "Subscription"]

Policy = Literal["wait", "drop-oldest"]
"""A subscription's backpressure policy (see the module docs)."""

WAIT: Final = "wait"
DROP_OLDEST: Final = "drop-oldest"
POLICIES: Final[frozenset[str]] = frozenset({WAIT, DROP_OLDEST})

MessageFilter = Callable[[Message], bool]

_perf_counter = time.perf_counter
_monotonic = time.monotonic


async def receive_next(
    source: AsyncIterator[Message], timeout: float | None, *, pattern: str, context: dict[str, Any]
) -> Message:
    """``await anext(source)`` with the errors every subscription's ``receive()`` gives:
    ``TransportError(bus.subscription_closed)`` when it is closed and drained,
    ``OperationTimeoutError(bus.receive_timeout)`` after ``timeout`` seconds (``None``: no limit).
    ``context`` (plus the pattern) goes into both."""
    try:
        with anyio.fail_after(timeout):
            return await source.__anext__()
    except StopAsyncIteration:
        raise TransportError(
            f"the subscription to {pattern!r} is closed",
            code="bus.subscription_closed",
            context={**context, "pattern": pattern},
        ) from None
    except TimeoutError:
        raise OperationTimeoutError(
            f"no message on {pattern!r} within {timeout} s",
            code="bus.receive_timeout",
            context={**context, "pattern": pattern, "timeout": timeout},
        ) from None


class Subscription:
    """A bounded queue of messages matching ``pattern`` (see the module docs).

    Figures: ``delivered`` (accepted into the queue), ``dropped`` (pushed out by
    ``drop-oldest``), ``rejected`` (refused by ``publish_nowait`` under ``wait``) and ``depth``.
    ``traffic`` is true for a traffic subscription (see the module docs).
    """

    __slots__ = (
        "_closed",
        "_full_since",
        "_log",
        "_metrics",
        "_owner",
        "_queue",
        "_ready",
        "_space",
        "buffer",
        "delivered",
        "dropped",
        "filter",
        "name",
        "on_slow",
        "pattern",
        "policy",
        "rejected",
        "slow_after",
        "slow_reason",
        "traffic",
    )

    def __init__(
        self,
        owner: Any,
        pattern: str,
        *,
        filter: MessageFilter | None = None,
        buffer: int = 100,
        policy: Policy = WAIT,
        name: str | None = None,
        traffic: bool = False,
        slow_after: float | None = None,
        on_slow: Callable[[Subscription], Any] | None = None,
    ) -> None:
        if buffer.__class__ is not int or buffer < 1:
            raise ValidationError(
                f"subscription buffer must be an integer >= 1, not {buffer!r}",
                code="bus.bad_subscription",
                context={"pattern": pattern, "buffer": repr(buffer)},
            )
        if policy not in POLICIES:
            raise ValidationError(
                f"subscription policy must be one of {sorted(POLICIES)}, not {policy!r}",
                code="bus.bad_subscription",
                context={"pattern": pattern, "policy": repr(policy)},
            )
        if traffic and policy != DROP_OLDEST:
            raise ValidationError(
                "a traffic subscription cannot make the bus wait: it sees requests and answers as "
                "they pass, so its policy is 'drop-oldest'",
                code="bus.bad_subscription",
                context={"pattern": pattern, "policy": repr(policy)},
            )
        if filter is not None and not callable(filter):
            raise ValidationError(
                "subscription filter must be a callable taking a Message and returning a bool",
                code="bus.bad_subscription",
                context={"pattern": pattern, "filter": repr(filter)},
            )
        self._owner = owner
        self._metrics: BusMetrics = owner.metrics
        self._log = getattr(owner, "_log", None)
        self.pattern = pattern
        self.filter = filter
        self.buffer = buffer
        self.policy: Policy = policy
        self.name = name or f"sub-{id(self):x}"
        self.traffic = traffic
        self._queue: deque[tuple[Message, float]] = deque()
        self._ready: Signal | None = None  # set when a message arrives or on close
        self._space: deque[anyio.Event] = deque()  # publishers waiting for room (policy "wait")
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self.rejected = 0
        self.slow_after = slow_after
        self.on_slow = on_slow
        self.slow_reason: str | None = None
        self._full_since = 0.0  # monotonic time the "wait" queue became full; 0 = not full

    # -- publisher side (called by the bus) ------------------------------------------------

    def _accepts(self, msg: Message) -> bool:
        flt = self.filter
        if flt is None:
            return True
        try:
            return bool(flt(msg))
        except Exception:
            self._metrics.filtered_errors += 1
            if self._log is not None:
                self._log.exception("bus.filter_failed", subscription=self.name, type=msg.type)
            return False

    def _offer(self, msg: Message, t0: float) -> bool:
        """Deliver without waiting; False only when policy "wait" needs the publisher to wait."""
        if self._closed or (self.filter is not None and not self._accepts(msg)):
            return True
        queue = self._queue
        if len(queue) >= self.buffer:
            if self.policy != DROP_OLDEST:
                if not self._full_since:
                    self._full_since = _monotonic()
                elif self.slow_after is not None and _monotonic() - self._full_since >= self.slow_after:
                    self.flag_slow()
                    return True
                return False
            queue.popleft()
            self.dropped += 1
        queue.append((msg, t0))
        self.delivered += 1
        ready = self._ready
        if ready is not None:
            self._ready = None
            ready.set()
        return True

    async def _put(self, msg: Message, t0: float) -> None:
        """Wait for room, then enqueue (policy "wait"; the filter already accepted ``msg``)."""
        queue = self._queue
        while len(queue) >= self.buffer and not self._closed:
            slow_after = self.slow_after
            if not self._full_since:
                self._full_since = _monotonic()
            if slow_after is not None:
                left = self._full_since + slow_after - _monotonic()
                if left <= 0:
                    self.flag_slow()
                    return
            else:
                left = math.inf
            event = anyio.Event()
            self._space.append(event)
            try:
                with anyio.move_on_after(left):
                    await event.wait()
            except BaseException:
                if event.is_set():
                    self._wake_publisher()  # we were woken but leave: pass the turn on
                raise
            finally:
                if not event.is_set():
                    with contextlib.suppress(ValueError):
                        self._space.remove(event)
        if self._closed:
            return
        queue.append((msg, t0))
        self.delivered += 1
        ready = self._ready
        if ready is not None:
            self._ready = None
            ready.set()

    def flag_slow(self) -> None:
        """Mark this subscriber a slow consumer: its queue stayed full for ``slow_after``
        seconds. The subscription is closed (publishers it held go on), the event is logged and
        counted, and ``on_slow(self)`` tells the owner (a remote peer is disconnected)."""
        if self._closed:
            return
        waited = _monotonic() - self._full_since if self._full_since else 0.0
        self.slow_reason = (
            f"slow consumer: the subscription to {self.pattern!r} kept its queue of {self.buffer} "
            f"full for {waited:.1f} s (limit: bus.slow_consumer_timeout = {self.slow_after} s)"
        )
        self._metrics.slow_consumers += 1
        if self._log is not None:
            self._log.warning(
                "bus.slow_consumer",
                subscription=self.name,
                pattern=self.pattern,
                buffer=self.buffer,
                full_for=round(waited, 3),
            )
        self.close()
        callback = self.on_slow
        if callback is not None:
            try:
                callback(self)
            except Exception:
                if self._log is not None:
                    self._log.exception("bus.slow_consumer_callback_failed", subscription=self.name)

    def _wake_publisher(self) -> None:
        if self._space and len(self._queue) < self.buffer:
            self._space.popleft().set()

    # -- consumer side ---------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        queue = self._queue
        if queue:
            await anyio.lowlevel.checkpoint_if_cancelled()
        else:
            while not queue:
                if self._closed:
                    raise StopAsyncIteration
                ready = self._ready
                if ready is None:
                    ready = self._ready = Signal()
                await ready.wait()
        return self._take()

    async def receive(self, timeout: float | None = None) -> Message:
        """The next message; ``TransportError(bus.subscription_closed)`` once closed and drained,
        ``OperationTimeoutError(bus.receive_timeout)`` after ``timeout`` seconds."""
        return await receive_next(self, timeout, pattern=self.pattern, context={"subscription": self.name})

    def receive_nowait(self) -> Message | None:
        """The next queued message, or ``None`` if the queue is empty."""
        return self._take() if self._queue else None

    def _take(self) -> Message:
        """Pop the oldest queued message, make room for a waiting publisher, count the latency."""
        msg, t0 = self._queue.popleft()
        self._full_since = 0.0
        self._metrics.deliver_latency.record(_perf_counter() - t0)
        if self._space:
            self._space.popleft().set()
        return msg

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether this subscription no longer receives messages."""
        return self._closed

    @property
    def depth(self) -> int:
        """Messages waiting in the queue."""
        return len(self._queue)

    def close(self) -> None:
        """Unsubscribe: no new deliveries; queued messages can still be drained."""
        if self._closed:
            return
        self._closed = True
        self._owner._detach(self)
        ready = self._ready
        if ready is not None:
            self._ready = None
            ready.set()
        while self._space:
            self._space.popleft().set()

    async def aclose(self) -> None:
        """Async spelling of :meth:`close`."""
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """This subscription's figures (JSON-safe)."""
        return {
            "name": self.name,
            "pattern": self.pattern,
            "policy": self.policy,
            "buffer": self.buffer,
            "depth": len(self._queue),
            "delivered": self.delivered,
            "dropped": self.dropped,
            "rejected": self.rejected,
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"depth={len(self._queue)}"
        return f"<{type(self).__name__} {self.name!r} {self.pattern!r} {self.policy} {state}>"


Callback = Callable[[Message], Any]


class CallbackSubscription(Subscription):
    """A subscription that calls ``callback(msg)`` instead of being iterated.

    A plain function is called inline, inside ``publish`` (the cheapest delivery there is: keep
    it short). An ``async def`` function gets the bounded queue of an ordinary subscription
    and a worker task in the bus's task group that awaits it once per message, in order.
    Exceptions from the callback are logged and counted (``callback_errors``), never passed
    to the publisher.
    """

    __slots__ = ("callback", "is_async")

    def __init__(self, owner: Any, pattern: str, callback: Callback, **kw: Any) -> None:
        if not callable(callback):
            raise ValidationError(
                f"callback must be callable, not {callback!r}",
                code="bus.bad_subscription",
                context={"pattern": pattern},
            )
        super().__init__(owner, pattern, **kw)
        self.callback = callback
        self.is_async = inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
            getattr(callback, "__call__", None)  # noqa: B004
        )

    def _offer(self, msg: Message, t0: float) -> bool:
        if self.is_async:
            return super()._offer(msg, t0)
        if self._closed or (self.filter is not None and not self._accepts(msg)):
            return True
        self.delivered += 1
        try:
            result = self.callback(msg)
        except Exception:
            self._callback_failed(msg)
            return True
        if result is not None and inspect.isawaitable(result):
            # A plain function that returned a coroutine: it was never going to run. Say so.
            close = getattr(result, "close", None)
            if close is not None:
                close()
            self._metrics.callback_errors += 1
            if self._log is not None:
                self._log.error(
                    "bus.callback_returned_awaitable",
                    subscription=self.name,
                    type=msg.type,
                    hint="declare the callback 'async def' so the bus awaits it in a worker task",
                )
        return True

    def _callback_failed(self, msg: Message) -> None:
        self._metrics.callback_errors += 1
        if self._log is not None:
            self._log.exception("bus.callback_failed", subscription=self.name, type=msg.type, id=msg.id)

    async def _work(self) -> None:
        """Worker loop for an async callback (run by the bus in its task group)."""
        fn: Callable[[Message], Awaitable[Any]] = self.callback
        async for msg in self:
            try:
                await fn(msg)
            except Exception:
                self._callback_failed(msg)
