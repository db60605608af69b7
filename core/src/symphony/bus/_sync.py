"""Synchronisation helpers the bus and its transports share: :class:`Signal` and
:func:`start_in_own_task_group`.

``Signal`` is a one-shot event like :class:`anyio.Event`, cheaper to set and to wait on.

The bus sets one of these per waiting subscriber on every delivery, and one per request on
every answer, so their cost multiplies: fanning a message out to 1,000 waiting subscribers
sets 1,000 of them. :class:`anyio.Event` wraps :class:`asyncio.Event` (a Python-level
waiter deque and a check per waiter) or :class:`trio.Event` (a parking lot); a ``Signal``
parks the waiting task on the backend's own lowest-level primitive instead: a bare future
on asyncio, :func:`trio.lowlevel.wait_task_rescheduled` on trio. Setting it wakes the
waiter directly, so a wake-up costs less than an :class:`anyio.Event`'s on either backend
(``make bench`` measures fan-out through the bus). Only public APIs are used:
:func:`asyncio.get_running_loop` and :mod:`trio.lowlevel`.

Semantics are anyio's: ``wait()`` returns at once (after a checkpoint) when the signal is
already set, is cancellable, and any number of tasks may wait. Waiting on a signal from
two different event loops is not supported (nor is it for ``anyio.Event``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["Signal", "start_in_own_task_group"]

_get_running_loop = asyncio.get_running_loop
_Future = asyncio.Future
_trio_lowlevel: Any = None


def _trio() -> Any:
    global _trio_lowlevel
    if _trio_lowlevel is None:
        import trio.lowlevel

        _trio_lowlevel = trio.lowlevel
    return _trio_lowlevel


def _wake(waiter: Any) -> None:
    if isinstance(waiter, _Future):
        if not waiter.done():
            waiter.set_result(None)
    else:
        _trio().reschedule(waiter)


class Signal:
    """A one-shot event: :meth:`set` once, :meth:`wait` until it is set (see module docs)."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: Any = None  # None, one waiter, or a list of them

    def is_set(self) -> bool:
        """Whether :meth:`set` was called."""
        return self._flag

    def set(self) -> None:
        """Set the signal and wake every waiting task (idempotent)."""
        if self._flag:
            return
        self._flag = True
        waiters = self._waiters
        if waiters is None:
            return
        self._waiters = None
        if waiters.__class__ is _Future:  # the usual case: one task waiting, on asyncio
            if not waiters.done():
                waiters.set_result(None)
        elif waiters.__class__ is list:
            for waiter in waiters:
                _wake(waiter)
        else:
            _wake(waiters)

    def _add(self, waiter: Any) -> None:
        waiters = self._waiters
        if waiters is None:
            self._waiters = waiter
        elif waiters.__class__ is list:
            waiters.append(waiter)
        else:
            self._waiters = [waiters, waiter]

    def _discard(self, waiter: Any) -> None:
        waiters = self._waiters
        if waiters is waiter:
            self._waiters = None
        elif waiters.__class__ is list:
            try:
                waiters.remove(waiter)
            except ValueError:
                pass

    async def wait(self) -> None:
        """Wait until the signal is set (a checkpoint either way)."""
        if self._flag:
            await anyio.lowlevel.checkpoint()
            return
        try:
            loop = _get_running_loop()
        except RuntimeError:  # not on asyncio: trio
            loop = None
        if loop is not None:
            future = loop.create_future()
            self._add(future)
            try:
                await future
            finally:
                if not self._flag:
                    self._discard(future)  # cancelled before anyone set it
            return
        lowlevel = _trio()
        task = lowlevel.current_task()
        self._add(task)

        def abort(_: Any) -> Any:
            self._discard(task)
            return lowlevel.Abort.SUCCEEDED

        await lowlevel.wait_task_rescheduled(abort)

    def __repr__(self) -> str:
        return f"<Signal {'set' if self._flag else 'unset'}>"


async def start_in_own_task_group(start: Callable[..., Coroutine[Any, Any, Any]]) -> anyio.abc.TaskGroup:
    """Open a task group, ``tg.start(start)`` in it, and return the open group.

    If starting fails, the group is cancelled and exited before the error propagates, so the
    caller's ``__aenter__`` leaks nothing. The caller exits the group in its ``__aexit__``.
    """
    tg = anyio.create_task_group()
    await tg.__aenter__()
    try:
        await tg.start(start)
    except BaseException as exc:
        tg.cancel_scope.cancel()
        await tg.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    return tg
