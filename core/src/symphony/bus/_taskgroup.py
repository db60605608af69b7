"""Start a long-running service in a task group of its own (for ``async with`` entry points)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc


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
