"""Batching: gather items and flush them together, by size or by age.

Sending one frame per message caps one-way throughput at what a syscall per message allows;
:class:`Batcher` groups items and hands each group to an async ``flush(items)`` callback::

    async def send_frames(batch: list[Message]) -> None:
        await stream.send(b"".join(frame(codec.encode(m)) for m in batch))

    async with Batcher(max_size=256, max_delay=0.002, flush=send_frames) as batcher:
        for msg in messages:
            await batcher.add(msg)
    # leaving the block flushed what was left

A batch is flushed when it reaches ``max_size`` items (inside the ``add`` that filled it, so a
slow ``flush`` slows the producer: backpressure), when its oldest item is ``max_delay``
seconds old (by a timer task that runs inside ``async with``; without it only size and
explicit flushes happen), on :meth:`Batcher.flush`, and on close. Flushes never overlap and
keep the order items were added in. Nothing is lost on close: :meth:`Batcher.aclose` flushes
the remainder before returning. If ``flush`` raises, the error reaches the caller of
``add``/``flush``/``aclose``; an error in a timed flush stops the timer and is raised by the
next ``add``/``flush``/``aclose`` -- never silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from symphony.commons.errors import TransportError, ValidationError

__all__ = ["Batcher"]

T = TypeVar("T")


class Batcher(Generic[T]):
    """Size- and time-bounded batching with no loss on close (see the module docs)."""

    def __init__(self, max_size: int, max_delay: float, flush: Callable[[list[T]], Awaitable[None]]) -> None:
        if max_size.__class__ is not int or max_size < 1:
            raise ValidationError(
                f"max_size must be an integer >= 1, not {max_size!r}",
                code="bus.bad_batching",
                context={"max_size": repr(max_size)},
            )
        if not isinstance(max_delay, (int, float)) or max_delay < 0:
            raise ValidationError(
                f"max_delay must be a number of seconds >= 0, not {max_delay!r}",
                code="bus.bad_batching",
                context={"max_delay": repr(max_delay)},
            )
        self.max_size = max_size
        self.max_delay = float(max_delay)
        self._flush_fn = flush
        self._items: list[T] = []
        self._first_at = 0.0
        self._lock = anyio.Lock()
        self._wakeup = anyio.Event()
        self._tg: TaskGroup | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.batches = 0
        self.flushed = 0

    @property
    def pending(self) -> int:
        """Items waiting for the next flush."""
        return len(self._items)

    async def add(self, item: T) -> None:
        """Queue ``item``; flushes here when the batch reaches ``max_size``."""
        if self._closed:
            raise TransportError("the batcher is closed", code="bus.batcher_closed")
        self._raise_timer_error()
        items = self._items
        items.append(item)
        if len(items) == 1:
            self._first_at = anyio.current_time()
            self._wakeup.set()
        if len(items) >= self.max_size:
            await self.flush()

    def _raise_timer_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    async def flush(self) -> None:
        """Flush whatever is queued now (no-op when empty)."""
        self._raise_timer_error()
        async with self._lock:
            if not self._items:
                return
            batch, self._items = self._items, []
            self.batches += 1
            self.flushed += len(batch)
            await self._flush_fn(batch)

    async def _timer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            while self._items:
                first_at = self._first_at
                await anyio.sleep_until(first_at + self.max_delay)
                if self._items and self._first_at == first_at:
                    try:
                        await self.flush()
                    except Exception as exc:  # handed to the next add/flush/aclose
                        self._error = exc
                        return

    async def __aenter__(self) -> Batcher[T]:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._timer)
        return self

    async def aclose(self) -> None:
        """Stop taking items and flush the remainder."""
        self._closed = True
        await self.flush()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None
        try:
            if exc_type is None:
                await self.aclose()
            else:
                # Still try not to lose what was queued, but let the original error win.
                with anyio.CancelScope(shield=True):
                    try:
                        await self.aclose()
                    except Exception:
                        pass
        finally:
            # The timer never raises, so the task group never cancels the body: the body's own
            # exception (or an outer cancellation) propagates untouched.
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
