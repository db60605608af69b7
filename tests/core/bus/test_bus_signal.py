"""``Signal``: the bus's cheaper one-shot event, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from symphony.bus._sync import Signal

pytestmark = pytest.mark.anyio


async def test_set_wakes_every_waiter_once() -> None:
    signal = Signal()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await signal.wait()
        woken.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(waiter, n)
            await anyio.wait_all_tasks_blocked()
            assert woken == [] and not signal.is_set()
            signal.set()
            signal.set()  # idempotent
    assert sorted(woken) == list(range(5)) and signal.is_set()


async def test_wait_on_a_set_signal_returns_but_is_a_checkpoint() -> None:
    signal = Signal()
    signal.set()
    await signal.wait()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await signal.wait()  # a checkpoint: the pending cancellation lands here
        pytest.fail("wait() on a set signal must still be a checkpoint")
    assert scope.cancelled_caught


async def test_a_cancelled_waiter_leaves_and_the_others_still_wake() -> None:
    signal = Signal()
    woken: list[str] = []

    async def stays() -> None:
        await signal.wait()
        woken.append("stays")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stays)
            with anyio.move_on_after(0.02) as scope:
                await signal.wait()
            assert scope.cancelled_caught
            signal.set()
    assert woken == ["stays"]
    assert signal._waiters is None


async def test_the_last_waiter_cancelled_leaves_nothing_behind() -> None:
    signal = Signal()
    for _ in range(3):
        with anyio.move_on_after(0.01):
            await signal.wait()
    assert signal._waiters is None
    signal.set()
    assert "set" in repr(signal)
