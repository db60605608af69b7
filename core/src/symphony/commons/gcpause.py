"""Pause CPython's cyclic garbage collector while a large object graph is built or walked.

The cyclic collector runs whenever allocations outnumber deallocations by 700 (its gen-0
threshold), and every so often it walks *every* tracked object in the process. Building or
checking a 10,000-node workflow allocates hundreds of thousands of short-lived containers --
none of them in reference cycles, all freed by reference counting -- so the collector runs
dozens of times for nothing, and now and then walks the whole heap in the middle of the call.
``make bench`` measures the gain on the workflow benchmarks.

Pausing is the standard remedy (``gc.disable()`` around bulk work); these helpers make it
safe to nest and to use from libraries:

- they touch nothing when the collector is already off (the host may have turned it off on
  purpose; an outer pause owns the switch);
- they always switch it back on, whatever the wrapped code raises;
- nothing is lost: collection simply resumes at the next allocation after the pause.

The switch is process-wide. Another thread running during a pause runs without the cyclic
collector for that long (reference counting still frees everything that is not in a cycle).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

__all__ = ["gc_paused", "without_gc"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def gc_paused() -> Iterator[None]:
    """``with gc_paused(): ...`` -- the block runs with the cyclic collector off (see module docs)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def without_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: each call of ``fn`` runs with the cyclic collector off (see module docs)."""

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with gc_paused():
            return fn(*args, **kwargs)

    return paused
