"""The pool with real (instrument-like) loaders: leases, budgets, eviction, keep-alive, loads, faults."""

from __future__ import annotations

import gc
from pathlib import Path

import anyio
import pytest
from pool_helpers import (
    FakeClock,
    GreedyLoader,
    HangingLoader,
    MiB,
    RaisingLoader,
    WordVectors,
    embed,
)

from symphony.commons.errors import SymphonyError, ValidationError
from symphony_pool_manager import (
    BudgetExceededError,
    BudgetTimeoutError,
    LoadFailedError,
    LoadTimeoutError,
    ModelPool,
    ModelState,
    PoolConfig,
    TransitionReason,
    UnknownModelError,
)

pytestmark = pytest.mark.anyio


def make_pool(clock: FakeClock, **config: object) -> ModelPool:
    config.setdefault("measure_memory", False)
    config.setdefault("backoff_base", 5.0)
    return ModelPool(PoolConfig(**config), clock=clock)  # type: ignore[arg-type]


async def test_lease_loads_once_then_hits(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    loader = WordVectors(vectors_file)
    pool.register("vec", loader)
    assert pool.state("vec") is ModelState.COLD
    async with pool.lease("vec") as model:
        assert embed(model, "the cat") == pytest.approx((0.3, 0.15, 0.15))
        assert pool.refs("vec") == 1
    for _ in range(3):
        async with pool.lease("vec") as model:
            assert "mat" in model
    assert loader.loads == 1 and pool.state("vec") is ModelState.HOT and pool.refs("vec") == 0
    metrics = pool.status()["metrics"]
    assert metrics["hits"] == 3 and metrics["misses"] == 1 and metrics["hit_rate"] == 0.75
    assert [(t.source.value, t.target.value, t.reason) for t in pool.history("vec")] == [
        ("cold", "warming", TransitionReason.USER_REQUEST),
        ("warming", "hot", TransitionReason.USER_REQUEST),
    ]


async def test_concurrent_cold_leases_share_one_load(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    loader = WordVectors(vectors_file)
    pool.register("vec", loader)
    seen: list[int] = []

    async def use() -> None:
        async with pool.lease("vec") as model:
            seen.append(id(model))
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(use)
    assert loader.loads == 1 and len(set(seen)) == 1 and len(seen) == 50
    assert pool.refs("vec") == 0


async def test_many_concurrent_leases_are_counted(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    pool.register("vec", WordVectors(vectors_file))
    await pool.prewarm("vec")
    leases = [await pool.acquire("vec", owner=f"run-{i % 7}") for i in range(1000)]
    assert pool.refs("vec") == 1000
    assert not await pool.unload("vec")  # leased: never cooled
    for lease in leases[:500]:
        await lease.release()
        await lease.release()  # twice is harmless
    assert pool.refs("vec") == 500
    for lease in leases[500:]:
        await lease.release()
    assert pool.refs("vec") == 0 and await pool.unload("vec")


async def test_count_budget_evicts_least_recently_used(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, count_budget=2)
    for key in ("a", "b", "c"):
        pool.register(key, WordVectors(vectors_file))
    async with pool.lease("a"):
        pass
    clock.advance(1)
    async with pool.lease("b"):
        pass
    clock.advance(1)
    async with pool.lease("a"):  # a is now more recent than b
        pass
    clock.advance(1)
    async with pool.lease("c"):
        pass
    assert pool.state("b") is ModelState.COLD and pool.state("a") is ModelState.HOT
    assert pool.history("b")[-1].reason is TransitionReason.MEMORY_PRESSURE
    assert pool.status()["metrics"]["evictions"] == {"memory-pressure": 1}


async def test_priority_weights_eviction(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, count_budget=2, priority_factor=4.0)
    pool.register("important", WordVectors(vectors_file), priority=1)
    pool.register("casual", WordVectors(vectors_file))
    pool.register("new", WordVectors(vectors_file))
    await pool.prewarm("important")
    clock.advance(30)
    await pool.prewarm("casual")
    clock.advance(10)  # important idle 40 s (looks like 10 s), casual idle 10 s
    await pool.prewarm("new")
    assert pool.state("important") is ModelState.HOT and pool.state("casual") is ModelState.COLD


async def test_forever_models_are_evicted_last(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, count_budget=2)
    pool.register("pinned", WordVectors(vectors_file), keep_alive="forever")
    pool.register("x", WordVectors(vectors_file))
    pool.register("y", WordVectors(vectors_file))
    await pool.prewarm("pinned")
    clock.advance(100)
    await pool.prewarm("x")
    await pool.prewarm("y")
    assert pool.state("pinned") is ModelState.HOT and pool.state("x") is ModelState.COLD


async def test_memory_budget_never_exceeded_and_leased_never_evicted(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, memory_budget=10 * MiB, acquire_timeout=0.05)
    pool.register("big", WordVectors(vectors_file, declared=6 * MiB))
    pool.register("big2", WordVectors(vectors_file, declared=6 * MiB))
    async with pool.lease("big"):
        with pytest.raises(BudgetTimeoutError) as info:
            async with pool.lease("big2"):
                pass
        err = info.value
        assert err.context["budget"] == "memory" and err.context["limit"] == 10 * MiB
        assert err.context["held_by_leases"] == 6 * MiB and err.context["requested"] == 6 * MiB
        assert "memory budget" in err.message
        assert pool.state("big") is ModelState.HOT
    async with pool.lease("big2"):  # big is idle now: evicted to make room
        assert pool.state("big") is ModelState.COLD
        assert pool.used["memory"] <= 10 * MiB


async def test_waiter_gets_room_when_lease_ends(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, memory_budget=10 * MiB, acquire_timeout=5)
    pool.register("big", WordVectors(vectors_file, declared=6 * MiB))
    pool.register("big2", WordVectors(vectors_file, declared=6 * MiB))
    got = anyio.Event()
    lease = await pool.acquire("big")

    async def second() -> None:
        async with pool.lease("big2"):
            got.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.sleep(0.05)
        assert not got.is_set()
        await lease.release()
        with anyio.fail_after(5):
            await got.wait()
    assert pool.status()["metrics"]["evictions"] == {"memory-pressure": 1}


async def test_request_larger_than_whole_budget(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, memory_budget=4 * MiB)
    pool.register("huge", WordVectors(vectors_file, declared=5 * MiB))
    pool.register("ok", WordVectors(vectors_file))
    with pytest.raises(BudgetExceededError) as info:
        async with pool.lease("huge"):
            pass
    assert info.value.code == "pool.budget.exceeded" and info.value.context["budget"] == "memory"
    assert pool.state("huge") is ModelState.COLD
    async with pool.lease("ok") as model:  # the pool keeps serving
        assert "cat" in model


async def test_keep_alive_duration_forever_and_now(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, keep_alive=60)
    pool.register("default", WordVectors(vectors_file))
    pool.register("forever", WordVectors(vectors_file), keep_alive=-1)
    now_loader = WordVectors(vectors_file)
    pool.register("now", now_loader, keep_alive="now")
    for key in ("default", "forever", "now"):
        async with pool.lease(key):
            pass
    assert pool.state("now") is ModelState.COLD and now_loader.unloads == 1
    clock.advance(59)
    assert await pool.reap() == []
    clock.advance(2)
    assert await pool.reap() == ["default"]
    assert pool.history("default")[-1].reason is TransitionReason.IDLE_TIMEOUT
    clock.advance(10**6)
    assert await pool.reap() == [] and pool.state("forever") is ModelState.HOT


async def test_keep_alive_per_request(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, keep_alive=600)
    pool.register("m", WordVectors(vectors_file))
    async with pool.lease("m", keep_alive="10s"):
        pass
    clock.advance(11)
    assert await pool.reap() == ["m"]
    async with pool.lease("m", keep_alive=0):
        pass
    assert pool.state("m") is ModelState.COLD
    with pytest.raises(ValidationError):
        pool.lease("m", keep_alive="soon")


async def test_load_raising_backs_off_and_others_keep_serving(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, backoff_base=5.0, backoff_max=60.0)
    bad = RaisingLoader(vectors_file)
    pool.register("bad", bad)
    pool.register("good", WordVectors(vectors_file))
    with pytest.raises(LoadFailedError) as info:
        async with pool.lease("bad"):
            pass
    assert info.value.code == "pool.load.failed" and "weights file is corrupt" in info.value.message
    assert pool.state("bad") is ModelState.COLD
    assert [t.target for t in pool.history("bad")] == [ModelState.WARMING, ModelState.FAILED, ModelState.COLD]
    with pytest.raises(LoadFailedError) as info:  # backing off: no second load attempt
        async with pool.lease("bad"):
            pass
    assert info.value.code == "pool.load.backoff" and bad.loads == 1
    clock.advance(5.1)
    with pytest.raises(LoadFailedError):
        async with pool.lease("bad"):
            pass
    assert bad.loads == 2
    clock.advance(5.1)  # second failure doubled the back-off to 10 s
    with pytest.raises(LoadFailedError) as info:
        async with pool.lease("bad"):
            pass
    assert info.value.code == "pool.load.backoff" and info.value.context["failures"] == 2
    async with pool.lease("good") as model:
        assert "the" in model
    assert pool.used == {"memory": 1 * MiB, "gpu_memory": 0, "count": 1}


async def test_load_hanging_times_out(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, load_timeout=0.1)
    hang = HangingLoader(vectors_file)
    pool.register("hang", hang)
    pool.register("good", WordVectors(vectors_file))
    try:
        with pytest.raises(LoadTimeoutError) as info:
            async with pool.lease("hang"):
                pass
        assert info.value.context == {"key": "hang", "timeout": 0.1}
        assert pool.state("hang") is ModelState.COLD and pool.used["count"] == 0
        async with pool.lease("good"):
            pass
    finally:
        hang.release.set()
    # the abandoned thread unloads what it eventually built
    with anyio.fail_after(5):
        while hang.unloads == 0:
            await anyio.sleep(0.01)


async def test_load_cancelled_by_caller(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    hang = HangingLoader(vectors_file)
    pool.register("hang", hang)
    try:
        with anyio.move_on_after(0.1):
            async with pool.lease("hang"):
                pass
        assert pool.state("hang") is ModelState.COLD and pool.used["count"] == 0
        assert pool.history("hang")[-2].metadata["error"] == "cancelled"
    finally:
        hang.release.set()


async def test_model_using_more_memory_than_declared(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, memory_budget=24 * MiB, measure_memory=True)
    greedy = GreedyLoader(vectors_file, actual=64 * MiB)
    pool.register("greedy", greedy)
    pool.register("good", WordVectors(vectors_file))
    with pytest.raises(BudgetExceededError) as info:
        async with pool.lease("greedy"):
            pass
    err = info.value
    assert err.code == "pool.load.over_declared" and err.context["declared"] == 1 * MiB
    assert err.context["measured"] >= 32 * MiB and err.context["budget"] == "memory"
    assert pool.state("greedy") is ModelState.COLD and greedy.unloads == 1
    assert pool.status()["metrics"]["over_estimates"] == 1
    async with pool.lease("good"):
        assert pool.used["memory"] <= 24 * MiB


async def test_measured_use_is_charged_when_it_fits(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, memory_budget=1 << 30, measure_memory=True)
    pool.register("greedy", GreedyLoader(vectors_file, actual=64 * MiB))
    gc.collect()  # earlier tests' garbage freed during the load would lower the RSS delta
    async with pool.lease("greedy"):
        status = pool.status()["models"][0]
        # RSS deltas are process-wide (other threads and the allocator move it too): well above
        # the declared 1 MiB is what shows the measurement was charged
        assert status["measured"]["memory"] >= 32 * MiB
        assert status["charged"]["memory"] == status["measured"]["memory"]
    assert pool.demand("greedy")["memory"] >= 32 * MiB


async def test_release_owner_reclaims_crashed_leases(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, keep_alive=0)
    pool.register("a", WordVectors(vectors_file))
    pool.register("b", WordVectors(vectors_file))
    crashed = [await pool.acquire("a", owner="run-1"), await pool.acquire("b", owner="run-1")]
    other = await pool.acquire("a", owner="run-2")
    assert pool.leases_of("run-1") == ["a", "b"]
    assert await pool.release_owner("run-1") == 2
    assert all(lease.reclaimed and not lease.active for lease in crashed)
    assert pool.refs("a") == 1 and pool.state("b") is ModelState.COLD  # keep-alive now: unloaded
    await crashed[0].release()  # the crashed node's late exit changes nothing
    assert pool.refs("a") == 1 and await pool.release_owner("run-1") == 0
    await other.release()
    assert pool.state("a") is ModelState.COLD


async def test_unknown_model_and_bad_loader(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    with pytest.raises(UnknownModelError) as info:
        async with pool.lease("nope"):
            pass
    assert info.value.context["key"] == "nope"
    with pytest.raises(ValidationError, match="lacks estimate, load, unload, health"):
        pool.register("x", object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        pool.register("", WordVectors(vectors_file))


async def test_health_failure_recovery_policies(vectors_file: Path, clock: FakeClock) -> None:
    for policy, final in (("reload", ModelState.HOT), ("cold", ModelState.COLD), ("manual", ModelState.FAILED)):
        pool = make_pool(clock, health_failures=2, recovery=policy)
        loader = WordVectors(vectors_file)
        pool.register("m", loader)
        await pool.prewarm("m")
        assert await pool.check_health() == {"m": "healthy"}
        loader.healthy = False
        assert await pool.check_health() == {"m": "degraded"}
        await pool.check_health()
        assert pool.state("m") is final, policy
        reasons = [t.reason for t in pool.history("m")]
        assert TransitionReason.HEALTH_FAILURE in reasons
        if policy == "manual":
            with pytest.raises(SymphonyError) as info:
                async with pool.lease("m"):
                    pass
            assert info.value.code == "pool.model.failed"
            loader.healthy = True
            await pool.recover("m")
            async with pool.lease("m"):
                pass


async def test_unhealthy_leased_model_fails_after_last_release(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock, health_failures=1, recovery="cold")
    loader = WordVectors(vectors_file)
    pool.register("m", loader)
    lease = await pool.acquire("m")
    loader.healthy = False
    assert await pool.check_health() == {"m": "unhealthy"}
    assert pool.state("m") is ModelState.HOT  # leased: never failed under its holder
    await lease.release()
    assert pool.state("m") is ModelState.COLD and loader.unloads == 1


async def test_health_check_timeout_counts_as_failure(vectors_file: Path, clock: FakeClock) -> None:
    class SlowHealth(WordVectors):
        def health(self, instance: object) -> bool:
            import time

            time.sleep(0.5)
            return True

    pool = make_pool(clock, health_failures=1, health_timeout=0.05, recovery="cold")
    pool.register("slow", SlowHealth(vectors_file))
    await pool.prewarm("slow")
    assert await pool.check_health() == {"slow": "unknown"}  # failed, recovered to cold
    assert pool.state("slow") is ModelState.COLD


async def test_listeners_see_every_transition(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    seen: list[str] = []
    pool.add_listener(lambda t: seen.append(f"{t.key}:{t.source.value}>{t.target.value}"))
    pool.add_listener(lambda t: 1 / 0)  # a broken listener is logged and skipped
    pool.register("m", WordVectors(vectors_file))
    await pool.prewarm("m")
    await pool.unload("m")
    assert seen == ["m:cold>warming", "m:warming>hot", "m:hot>cooling", "m:cooling>cold"]


async def test_run_reaps_in_the_background(vectors_file: Path) -> None:
    pool = ModelPool(PoolConfig(keep_alive=0.05, measure_memory=False, health_interval=0, predict_interval=0))
    pool.register("m", WordVectors(vectors_file))
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run)
        async with pool.lease("m"):
            pass
        with anyio.fail_after(5):
            while pool.state("m") is not ModelState.COLD:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert pool.history("m")[-1].reason is TransitionReason.IDLE_TIMEOUT


async def test_status_reports_time_in_states_and_load_times(vectors_file: Path, clock: FakeClock) -> None:
    pool = make_pool(clock)
    pool.register("m", WordVectors(vectors_file))
    await pool.prewarm("m")
    clock.advance(7)
    status = pool.status()
    assert status["models"][0]["time_in_states"]["hot"] == 7
    assert status["metrics"]["load_seconds"]["count"] == 1
    assert status["budgets"]["memory"] == {"limit": None, "used": 1 * MiB}


async def test_single_load_while_an_eviction_is_in_progress(vectors_file: Path, clock: FakeClock) -> None:
    class SlowUnload(WordVectors):
        def unload(self, instance: object) -> None:
            import time

            time.sleep(0.05)
            super().unload(instance)

    pool = make_pool(clock, count_budget=1)
    pool.register("old", SlowUnload(vectors_file))
    new = WordVectors(vectors_file)
    pool.register("new", new)
    await pool.prewarm("old")

    async def use() -> None:
        async with pool.lease("new") as model:
            assert "cat" in model

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(use)
    assert new.loads == 1 and pool.status()["metrics"]["evictions"] == {"memory-pressure": 1}
