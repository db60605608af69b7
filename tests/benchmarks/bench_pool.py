"""Pool manager: lease of a hot model (p99), beside an OrderedDict LRU hit in the same async loop;
1,000 concurrent leases of one model, counted right.

Target (DESIGN.md §6, issue 13): hot lease < 20 µs p99; 1,000 concurrent leases correct.
Run: ``.venv/bin/python tests/benchmarks/bench_pool.py``
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, percentile

from symphony.commons.gcpause import gc_paused
from symphony_pool_manager import ModelPool, PoolConfig, ResourceEstimate

N = 20_000
CONCURRENT = 1_000


class TinyModel:
    """A loader whose instance is a small table (the lease path does not touch it)."""

    def estimate(self) -> ResourceEstimate:
        return ResourceEstimate(memory=1 << 20)

    def load(self) -> dict[str, int]:
        return {"the": 0, "cat": 1}

    def unload(self, instance: Any) -> None:
        instance.clear()

    def health(self, instance: Any) -> bool:
        return True


class _LruLease:
    """The anchor: an OrderedDict LRU hit with a reference count, as an async context manager."""

    def __init__(self, cache: OrderedDict[str, list[Any]], key: str) -> None:
        self.cache = cache
        self.key = key

    async def __aenter__(self) -> Any:
        entry = self.cache[self.key]
        self.cache.move_to_end(self.key)
        entry[1] += 1
        return entry[0]

    async def __aexit__(self, *exc: object) -> None:
        self.cache[self.key][1] -= 1


async def hot_leases() -> tuple[list[float], list[float]]:
    pool = ModelPool(PoolConfig(measure_memory=False))
    for i in range(50):
        pool.register(f"m{i}", TinyModel())
    await pool.prewarm("m7")
    cache: OrderedDict[str, list[Any]] = OrderedDict((f"m{i}", [{}, 0]) for i in range(50))
    ours: list[float] = []
    anchor: list[float] = []
    clock = time.perf_counter_ns
    with gc_paused():
        for _ in range(N):
            t0 = clock()
            async with pool.lease("m7", owner="run-1") as model:
                pass
            t1 = clock()
            async with _LruLease(cache, "m7") as model:
                pass
            t2 = clock()
            ours.append((t1 - t0) / 1000)
            anchor.append((t2 - t1) / 1000)
    del model
    return ours, anchor


async def concurrent() -> tuple[bool, float]:
    pool = ModelPool(PoolConfig(measure_memory=False))
    pool.register("shared", TinyModel())
    await pool.prewarm("shared")
    peak = 0
    all_in = anyio.Event()
    entered = 0

    async def hold(i: int) -> None:
        nonlocal peak, entered
        async with pool.lease("shared", owner=f"run-{i % 10}"):
            entered += 1
            peak = max(peak, pool.refs("shared"))
            if entered == CONCURRENT:
                all_in.set()
            await all_in.wait()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(CONCURRENT):
            tg.start_soon(hold, i)
    elapsed = time.perf_counter() - start
    ok = peak == CONCURRENT and pool.refs("shared") == 0 and pool.status()["metrics"]["hits"] == CONCURRENT
    return ok, elapsed


def main() -> None:
    for backend in ("asyncio", "trio"):
        log(f"hot leases on {backend} ...")
        ours, anchor = anyio.run(hot_leases, backend=backend)
        p99, base99 = percentile(ours, 99), percentile(anchor, 99)
        emit(
            f"pool.hot_lease_p99[{backend}]",
            p99,
            "us",
            baseline="OrderedDict LRU hit + refcount as an async context manager, p99",
            baseline_value=base99,
            target="< 20 us p99",
            check=lambda v, r: v < 20,
            p50=round(percentile(ours, 50), 3),
            baseline_p50=round(percentile(anchor, 50), 3),
            samples=N,
        )
        ok, elapsed = anyio.run(concurrent, backend=backend)
        emit(
            f"pool.concurrent_leases_1000[{backend}]",
            elapsed * 1e6 / CONCURRENT,
            "us/lease",
            target="1,000 concurrent leases of one hot model, all counted and released",
            check=lambda v, r, ok=ok: ok,
            correct=ok,
        )


if __name__ == "__main__":
    main()
