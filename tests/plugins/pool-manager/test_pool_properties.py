"""Properties: the lifecycle never makes an illegal transition; keep-alive and config parsing reject bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pool_helpers import FakeClock, MiB, WordVectors

from symphony.commons.errors import SymphonyError
from symphony_pool_manager import (
    EDGES,
    Lifecycle,
    LifecycleError,
    ModelPool,
    ModelState,
    PoolConfig,
    TransitionReason,
    parse_keep_alive,
)

states = st.sampled_from(list(ModelState))
reasons = st.sampled_from(list(TransitionReason))


@given(st.lists(st.tuples(states, reasons), max_size=60))
def test_lifecycle_accepts_exactly_the_edges(moves: list[tuple[ModelState, TransitionReason]]) -> None:
    clock = FakeClock()
    life = Lifecycle("m", clock, history=1000)
    accepted = 0
    since = clock.now
    for target, reason in moves:
        before = life.state
        clock.advance(0.5)
        if target in EDGES[before]:
            t = life.move(target, reason)
            accepted += 1
            assert (t.source, t.target, t.reason) == (before, target, reason)
            assert math.isclose(t.duration, clock.now - since)
            since = clock.now
        else:
            with pytest.raises(LifecycleError) as info:
                life.move(target, reason)
            assert info.value.context["from"] == before.value and info.value.context["to"] == target.value
            assert life.state is before
    assert life.transitions == accepted == len(life.history)
    assert all(t.target in EDGES[t.source] for t in life.history)
    assert math.isclose(sum(life.time_in_states().values()), 0.5 * len(moves))


def test_illegal_examples_from_the_issue() -> None:
    life = Lifecycle("m", FakeClock())
    with pytest.raises(LifecycleError, match="cannot go from cold to hot"):
        life.move(ModelState.HOT, TransitionReason.USER_REQUEST)
    life.move(ModelState.WARMING, TransitionReason.USER_REQUEST)
    life.move(ModelState.HOT, TransitionReason.USER_REQUEST)
    with pytest.raises(LifecycleError, match="cannot go from hot to cold"):
        life.move(ModelState.COLD, TransitionReason.IDLE_TIMEOUT)
    assert life.is_stable


ops = st.lists(
    st.tuples(
        st.sampled_from(["lease", "hold", "release", "unload", "reap", "advance", "health", "prewarm"]),
        st.integers(0, 3),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_pool_operations_keep_the_lifecycle_and_budgets_legal(
    vectors_file: Path, steps: list[tuple[str, int]]
) -> None:
    """Random operations on a small pool: every recorded transition is an edge, budgets hold."""

    async def scenario() -> None:
        clock = FakeClock()
        pool = ModelPool(
            PoolConfig(count_budget=2, memory_budget=5 * MiB, measure_memory=False, acquire_timeout=0,
                       keep_alive=10, health_failures=1, recovery="cold"),
            clock=clock,
        )
        loaders = [WordVectors(vectors_file, declared=2 * MiB) for _ in range(4)]
        for i, loader in enumerate(loaders):
            pool.register(f"m{i}", loader)
        held: list[Any] = []
        for op, i in steps:
            key = f"m{i}"
            try:
                if op == "lease":
                    async with pool.lease(key):
                        pass
                elif op == "hold":
                    held.append(await pool.acquire(key))
                elif op == "release" and held:
                    await held.pop(i % len(held)).release()
                elif op == "unload":
                    await pool.unload(key)
                elif op == "reap":
                    await pool.reap()
                elif op == "advance":
                    clock.advance(i * 5)
                elif op == "health":
                    loaders[i].healthy = not loaders[i].healthy
                    await pool.check_health()
                elif op == "prewarm":
                    await pool.prewarm(key)
            except SymphonyError:
                pass
            used = pool.used
            assert used["count"] <= 2 and used["memory"] <= 5 * MiB
            for lease in held:
                assert pool.state(lease.key) is ModelState.HOT
        for k in pool.keys():
            for t in pool.history(k):
                assert t.target in EDGES[t.source]

    for backend in ("asyncio", "trio"):
        anyio.run(scenario, backend=backend)


@given(st.one_of(st.none(), st.booleans(), st.text(max_size=12), st.integers(), st.floats(), st.lists(st.integers())))
def test_parse_keep_alive_raises_only_symphony_errors(value: object) -> None:
    try:
        seconds = parse_keep_alive(value)
    except SymphonyError as err:
        assert err.code == "pool.keep_alive.invalid"
    else:
        assert seconds == -1.0 or 0 <= seconds <= 366 * 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300.0), ("30s", 30.0), ("1.5h", 5400.0), ("forever", -1.0), ("now", 0.0), (-1, -1.0), (0, 0.0),
     ("250ms", 0.25), (" 2d ", 172800.0)],
)
def test_parse_keep_alive_examples(text: object, seconds: float) -> None:
    assert parse_keep_alive(text) == seconds


@given(st.dictionaries(st.sampled_from(["memory_budget", "recovery", "keep_alive", "models", "bogus", "predictors"]),
                       st.one_of(st.integers(-5, 10**16), st.text(max_size=6), st.none(), st.floats(),
                                 st.dictionaries(st.text(max_size=3), st.integers()))))
def test_pool_config_raises_only_symphony_errors(section: dict[str, Any]) -> None:
    try:
        PoolConfig.from_mapping(section)
    except SymphonyError:
        pass
