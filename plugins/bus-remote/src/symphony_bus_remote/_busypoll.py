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

**The bound.** A stream's reader polls only within one window of a request/response exchange
on its connection:

- while this side has a request outstanding, for one window from the last request it sent
  (the link calls :meth:`BusyPoll.expect` when it sends a request and :meth:`BusyPoll.settle`
  when that request is over: answered, failed, timed out or cancelled); or
- for one window after this side sent an answer (:meth:`BusyPoll.answered`): a peer in a
  request/response exchange usually asks again at once, and the answering side's wake-up is
  half of the round trip.

Outside those windows the reader parks at once, however fast messages arrive (a subscriber of
a busy stream of events never polls, nor does an idle connection); the CPU spent polling is at
most one window per request or answer sent, plus at most one loop turn of overshoot.

It is also *adaptive*: after a parked wait inside an exchange that took longer than
:data:`RESUME_FACTOR` windows (a slow peer, or requests that come seldom), the reader stops
polling until such a wait is short again, so even one window per message is spared when
polling would not catch what comes next.

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

    __slots__ = ("_answered_until", "_until", "awaiting", "paying", "turns", "window")

    def __init__(self, window: float = DEFAULT_BUSY_POLL) -> None:
        self.window = float(window)
        self.awaiting = 0
        """Requests sent on this stream whose answer is still awaited."""
        self.paying = True
        """Whether the last parked wait for an answer was short enough for polling to catch."""
        self.turns = 0
        """Loop turns spent polling so far (what tests and diagnostics count)."""
        self._until = 0.0  # the clock time the window opened by the last request closes
        self._answered_until = 0.0  # the same for the last answer this side sent

    def expect(self) -> None:
        """A request went out on this stream: its answer is awaited, and the reader may poll
        for one window from now."""
        self.awaiting += 1
        self._until = _clock() + self.window

    def settle(self) -> None:
        """A request :meth:`expect` counted is over (answered, failed, timed out, cancelled)."""
        if self.awaiting > 0:
            self.awaiting -= 1

    def answered(self) -> None:
        """This side sent an answer to its peer's request: the reader may poll for one window
        from now, for the peer's next request."""
        self._answered_until = _clock() + self.window

    def _window_open(self, now: float) -> bool:
        return (self.awaiting > 0 and now < self._until) or now < self._answered_until

    def polling(self) -> bool:
        """Whether a reader about to wait should poll first: a window of an exchange is still
        open (see the module documentation) and polling has been paying off."""
        return self.paying and self._window_open(_clock())

    async def wait(self, ready: Callable[[], bool], park: Callable[[], Awaitable[None]]) -> None:
        """Wait until the stream has input: poll ``ready`` after each turn of the event loop
        while :meth:`polling` allows, then, if nothing came, ``await park()`` (which returns
        when the stream is readable). Only a park inside an exchange (an answer still awaited,
        or begun within the window of an answer sent) teaches whether polling pays."""
        now = _clock()
        after_answer = now < self._answered_until
        if self.paying and self._window_open(now):
            checkpoint = anyio.lowlevel.checkpoint
            while True:
                await checkpoint()
                self.turns += 1
                if ready():
                    return
                if not self._window_open(_clock()):
                    break
                _sched_yield()
        if not (after_answer or self.awaiting > 0):
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
