"""Adaptive busy polling: keep a socket reader awake for a moment before it parks.

When a task waits on a socket and nothing else is runnable, the event loop sleeps in
``epoll_wait`` and the CPU goes idle. Waking it again when the peer's bytes arrive costs a
context switch and, on a virtual machine, an idle exit -- tens of microseconds, often more
than the whole request path. For request/response traffic the answer usually comes back
sooner than that, so a reader that expects bytes *soon* does better to keep the loop turning
for a short window (``busy_poll`` seconds, 100 µs by default) before it parks.

This is busy polling in the sense of Linux's ``SO_BUSY_POLL``, done cooperatively: each turn
is an ordinary checkpoint (:func:`anyio.lowlevel.checkpoint`), so every other task still runs,
timers still fire and cancellation still lands; and each turn also offers the CPU to other
processes (``sched_yield``), so a peer sharing the CPU is never held up by the poller.

It is *adaptive*: a stream polls only while the gaps it waits for are short. After a wait
that outlasted the window, it parks at once until it sees a short gap again, so an idle or
slow connection costs no CPU. At worst a stream spends one window of CPU per message, and
only while messages come within about three windows of each other. On the request/response
benchmark it *saves* CPU: a process that never sleeps pays for no wake-ups.

Set it per transport with the ``busy_poll`` option (seconds; ``0`` turns it off), or for
``symphony serve`` with ``[bus] busy_poll``. The request/response benchmark prints the latency
with and without it, and the CPU each costs per request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Final, TypeVar

import anyio.lowlevel

__all__ = ["DEFAULT_BUSY_POLL", "RESUME_FACTOR", "BusyPoll"]

DEFAULT_BUSY_POLL: Final = 100e-6
"""Default polling window of socket streams, in seconds (100 µs)."""

RESUME_FACTOR: Final = 2.0
"""A parked wait at most this many windows long turns polling back on."""

_T = TypeVar("_T")
_clock = time.perf_counter
# Between turns, let another process on this CPU run: the peer we wait for may be sharing it,
# and a poller that never gives the CPU up would delay the very answer it polls for.
_sched_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


class BusyPoll:
    """The busy-poll state of one stream's reader: its window and whether polling pays off."""

    __slots__ = ("paying", "window")

    def __init__(self, window: float = DEFAULT_BUSY_POLL) -> None:
        self.window = float(window)
        self.paying = True  # whether the last wait was short enough for polling to catch

    async def poll(self, attempt: Callable[[], _T | None]) -> _T | None:
        """Call ``attempt`` after each turn of the event loop until it returns something other
        than ``None`` (returned), or until the window is over (``None``). Returns ``None`` at
        once when polling is off or has not been paying off."""
        if not self.paying or self.window <= 0:
            return None
        end = _clock() + self.window
        checkpoint = anyio.lowlevel.checkpoint
        while True:
            await checkpoint()
            result = attempt()
            if result is not None:
                return result
            if _clock() >= end:
                return None
            _sched_yield()

    def start_park(self) -> float:
        """Note that the reader is about to park; pass the result to :meth:`end_park`."""
        return _clock()

    def end_park(self, started: float) -> None:
        """The reader woke up: poll next time only if this wait was short -- at most
        :data:`RESUME_FACTOR` windows, since a parked wait includes the wake-up it would have
        saved."""
        self.paying = _clock() - started <= RESUME_FACTOR * self.window
