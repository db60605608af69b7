"""Bounded busy polling: a socket reader that awaits an answer keeps the loop turning briefly.

When a task waits on a socket and nothing else is runnable, the event loop sleeps in
``epoll_wait`` and the CPU goes idle. Waking it again when the peer's bytes arrive costs a
context switch and, on a virtual machine, an idle exit -- tens of microseconds, often more
than the whole request path. For request/response traffic the answer usually comes back
sooner than that, so a reader that expects an answer *soon* does better to keep the loop
turning for a short window (``busy_poll`` seconds, 100 µs by default) before it parks.

This is busy polling in the sense of Linux's ``SO_BUSY_POLL``, done cooperatively: each turn
is an ordinary checkpoint (:func:`anyio.lowlevel.checkpoint`), so every other task still runs,
timers still fire and cancellation still lands; and each turn also offers the CPU to other
processes (``sched_yield``), so a peer sharing the CPU is never held up by the poller.

**The bound.** A stream's reader polls only while both hold:

- this side has at least one request outstanding on the connection: the link calls
  :meth:`BusyPoll.expect` when it sends a request and :meth:`BusyPoll.settle` when that
  request is over (answered, failed, timed out or cancelled); and
- less than one window has passed since the last request went out.

With nothing outstanding the reader parks at once, however fast messages arrive (a server that
only answers, or a subscriber of a busy stream of events, never polls); and the CPU spent
polling is at most one window per request sent, plus at most one loop turn of overshoot.

It is also *adaptive*: after a parked wait for an answer that took longer than
:data:`RESUME_FACTOR` windows (a slow peer), the reader stops polling until a parked wait is
short again, so even one window per request is spared when polling would not catch the answer.

Set it per transport with the ``busy_poll`` option (seconds; ``0`` turns it off), or for
``symphony serve`` with ``[bus] busy_poll``. The request/response benchmark prints the latency
with and without it, and the CPU each costs per request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.lowlevel

__all__ = ["DEFAULT_BUSY_POLL", "RESUME_FACTOR", "BusyPoll", "BusyPollAttribute"]

DEFAULT_BUSY_POLL: Final = 100e-6
"""Default polling window of socket streams, in seconds (100 µs)."""

RESUME_FACTOR: Final = 2.0
"""A parked wait for an answer at most this many windows long turns polling back on."""

_clock = time.perf_counter
# Between turns, let another process on this CPU run: the peer we wait for may be sharing it,
# and a poller that never gives the CPU up would delay the very answer it polls for.
_sched_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


class BusyPoll:
    """The busy-poll state of one stream's reader: its window, the requests outstanding on the
    stream, and whether polling has been paying off (see the module documentation)."""

    __slots__ = ("_until", "awaiting", "paying", "turns", "window")

    def __init__(self, window: float = DEFAULT_BUSY_POLL) -> None:
        self.window = float(window)
        self.awaiting = 0
        """Requests sent on this stream whose answer is still awaited."""
        self.paying = True
        """Whether the last parked wait for an answer was short enough for polling to catch."""
        self.turns = 0
        """Loop turns spent polling so far (what tests and diagnostics count)."""
        self._until = 0.0  # the clock time the window opened by the last request closes

    def expect(self) -> None:
        """A request went out on this stream: its answer is awaited, and the reader may poll
        for one window from now."""
        self.awaiting += 1
        self._until = _clock() + self.window

    def settle(self) -> None:
        """A request :meth:`expect` counted is over (answered, failed, timed out, cancelled)."""
        if self.awaiting > 0:
            self.awaiting -= 1

    def polling(self) -> bool:
        """Whether a reader about to wait should poll first: an answer is awaited, the window
        of the last request is still open, and polling has been paying off."""
        return self.awaiting > 0 and self.paying and _clock() < self._until

    async def wait(self, ready: Callable[[], bool], park: Callable[[], Awaitable[None]]) -> None:
        """Wait until the stream has input: poll ``ready`` after each turn of the event loop
        while :meth:`polling` allows, then, if nothing came, ``await park()`` (which returns
        when the stream is readable). Only a park while an answer is awaited teaches whether
        polling pays."""
        if self.polling():
            checkpoint = anyio.lowlevel.checkpoint
            while True:
                await checkpoint()
                self.turns += 1
                if ready():
                    return
                if self.awaiting <= 0 or _clock() >= self._until:
                    break
                _sched_yield()
        if self.awaiting <= 0:
            await park()
            return
        started = _clock()
        await park()
        self.paying = _clock() - started <= RESUME_FACTOR * self.window


class BusyPollAttribute(anyio.TypedAttributeSet):
    """The typed attribute by which a byte stream whose reader busy-polls offers its
    :class:`BusyPoll` (``stream.extra(BusyPollAttribute.busy_poll, None)``), so the link
    running over it can say when a request is outstanding."""

    busy_poll: BusyPoll = anyio.typed_attribute()
