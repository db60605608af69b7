"""Pausing the cyclic garbage collector: off inside, back on after, never touched when the
host already turned it off, nestable, and restored whatever the wrapped code raises."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator

import pytest

from symphony.commons.gcpause import gc_paused, without_gc


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@without_gc
def _state(inner: bool = False) -> tuple[bool, bool]:
    """(collector on here, collector on inside a nested pause)"""
    here = gc.isenabled()
    if inner:
        with gc_paused():
            return here, gc.isenabled()
    return here, here


def test_the_collector_is_off_inside_and_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert _state() == (False, False)
    assert gc.isenabled()


def test_nested_pauses_leave_the_switch_to_the_outermost() -> None:
    assert _state(inner=True) == (False, False)
    assert gc.isenabled()
    with gc_paused():
        assert _state() == (False, False)
        assert not gc.isenabled()  # the inner pause did not switch it back on
    assert gc.isenabled()


def test_a_collector_the_host_turned_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert _state() == (False, False)
    assert not gc.isenabled()


def test_the_collector_comes_back_whatever_is_raised() -> None:
    @without_gc
    def boom() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        boom()
    assert gc.isenabled()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("x")
    assert gc.isenabled()


def test_the_decorator_keeps_the_function_s_face() -> None:
    def documented(a: int, *, b: str = "x") -> str:
        """Docs."""
        return f"{a}{b}"

    wrapped = without_gc(documented)
    assert wrapped(1, b="y") == "1y"
    assert wrapped.__name__ == "documented" and wrapped.__doc__ == "Docs."
    assert inspect.signature(wrapped) == inspect.signature(documented)
