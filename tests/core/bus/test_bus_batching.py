"""Batching: flush on size, on age, on demand and on close; order kept; nothing lost."""

from __future__ import annotations

import anyio
import pytest

from symphony.bus import Batcher
from symphony.commons.errors import TransportError, ValidationError

pytestmark = pytest.mark.anyio


async def test_flush_on_size() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        batches.append(items)

    async with Batcher(max_size=3, max_delay=60, flush=flush) as batcher:
        for i in range(7):
            await batcher.add(i)
        assert batches == [[0, 1, 2], [3, 4, 5]] and batcher.pending == 1
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]  # closing flushed the rest
    assert (batcher.batches, batcher.flushed) == (3, 7)


async def test_flush_on_age() -> None:
    flushed = anyio.Event()
    batches: list[list[str]] = []

    async def flush(items: list[str]) -> None:
        batches.append(items)
        flushed.set()

    async with Batcher(max_size=1000, max_delay=0.01, flush=flush) as batcher:
        await batcher.add("a")
        await batcher.add("b")
        with anyio.fail_after(10):
            await flushed.wait()
        assert batches == [["a", "b"]] and batcher.pending == 0
        # a later item starts a new timed batch
        flushed = anyio.Event()
        await batcher.add("c")
        with anyio.fail_after(10):
            await flushed.wait()
    assert batches == [["a", "b"], ["c"]]


async def test_no_loss_and_order_under_concurrent_producers() -> None:
    got: list[int] = []

    async def flush(items: list[int]) -> None:
        await anyio.sleep(0)  # a flush that yields, so flushes could interleave if unguarded
        got.extend(items)

    async with Batcher(max_size=16, max_delay=0.001, flush=flush) as batcher:

        async def produce(base: int) -> None:
            for i in range(250):
                await batcher.add(base + i)
                if i % 7 == 0:
                    await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            for p in range(4):
                tg.start_soon(produce, p * 1000)
    assert sorted(got) == sorted(p * 1000 + i for p in range(4) for i in range(250))
    for p in range(4):  # each producer's items stay in order
        mine = [x for x in got if p * 1000 <= x < (p + 1) * 1000]
        assert mine == sorted(mine)


async def test_manual_flush_and_closed_batcher() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        batches.append(items)

    batcher: Batcher[int] = Batcher(max_size=10, max_delay=60, flush=flush)
    await batcher.add(1)  # works without the timer (size and manual flushes only)
    await batcher.flush()
    await batcher.flush()  # empty: no call
    assert batches == [[1]]
    await batcher.aclose()
    with pytest.raises(TransportError) as info:
        await batcher.add(2)
    assert info.value.code == "bus.batcher_closed"


async def test_flush_errors_reach_the_caller() -> None:
    async def flush(items: list[int]) -> None:
        raise TransportError("peer gone", code="transport.closed")

    batcher: Batcher[int] = Batcher(max_size=2, max_delay=60, flush=flush)
    await batcher.add(1)
    with pytest.raises(TransportError):
        await batcher.add(2)


async def test_body_error_wins_but_remainder_is_still_flushed() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        batches.append(items)

    with pytest.raises(KeyError):
        async with Batcher(max_size=10, max_delay=60, flush=flush) as batcher:
            await batcher.add(1)
            raise KeyError("body failed")
    assert batches == [[1]]


@pytest.mark.parametrize(("size", "delay"), [(0, 1.0), (1.5, 1.0), (1, -1), (1, "soon")])
def test_bad_settings(size: object, delay: object) -> None:
    async def flush(items: list[object]) -> None:
        return None

    with pytest.raises(ValidationError):
        Batcher(size, delay, flush)  # type: ignore[arg-type]


async def test_timed_flush_error_is_raised_by_the_next_call() -> None:
    failed = anyio.Event()

    async def flush(items: list[int]) -> None:
        failed.set()
        raise TransportError("peer gone", code="transport.closed")

    with pytest.raises(TransportError) as info:
        async with Batcher(max_size=100, max_delay=0.001, flush=flush) as batcher:
            await batcher.add(1)
            with anyio.fail_after(10):
                await failed.wait()
            await batcher.add(2)
    assert info.value.code == "transport.closed"
