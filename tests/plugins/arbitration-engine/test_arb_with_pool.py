"""Arbitration and the real pool together, as a conductor will use them around an instrument node.

The instrument is a small real one: a tokenizer that builds its vocabulary from a text file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony_arbitration_engine import (
    ArbitrationConfig,
    ArbitrationEngine,
    DenialReason,
    DeniedError,
    Owner,
    PreemptedError,
    Resources,
    WaitTimeoutError,
    admitted,
    request_for,
)
from symphony_pool_manager import ModelPool, PoolConfig, ResourceEstimate, TransitionReason

pytestmark = pytest.mark.anyio
MiB = 1 << 20


class Tokenizer:
    """An instrument-like model: a vocabulary read from a corpus file, ids for words."""

    def __init__(self, corpus: Path, declared: int) -> None:
        self.corpus = corpus
        self.declared = declared
        self.loads = 0
        self.lock = threading.Lock()

    def estimate(self) -> ResourceEstimate:
        return ResourceEstimate(memory=self.declared)

    def load(self) -> dict[str, int]:
        with self.lock:
            self.loads += 1
        words = sorted(set(self.corpus.read_text().split()))
        return {w: i for i, w in enumerate(words)}

    def unload(self, instance: Any) -> None:
        instance.clear()

    def health(self, instance: Any) -> bool:
        return bool(instance)


def encode(vocab: dict[str, int], text: str) -> list[int]:
    return [vocab.get(w, -1) for w in text.split()]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog " * 50)
    return path


def setup(corpus: Path, *, preemption: bool) -> tuple[ArbitrationEngine, ModelPool]:
    pool = ModelPool(PoolConfig(memory_budget=100 * MiB, measure_memory=False, keep_alive="5m"))
    pool.register("batch-llm", Tokenizer(corpus, 60 * MiB))
    pool.register("chat", Tokenizer(corpus, 60 * MiB))
    engine = ArbitrationEngine(
        ArbitrationConfig(capacity=Resources(memory=100 * MiB, cpu_slots=2), preemption=preemption)
    )
    engine.add_owner(Owner("batch-run", kind="run"))
    engine.add_owner(Owner("user", kind="user"))
    return engine, pool


async def test_interactive_request_gets_its_model_within_one_eviction(corpus: Path) -> None:
    engine, pool = setup(corpus, preemption=False)
    nodes_done: list[int] = []
    interactive_started = anyio.Event()
    seen: dict[str, Any] = {}

    async def background_worker(worker: int) -> None:
        # three workers on two CPU slots: one background request is always queued
        for i in range(15):
            request = request_for(pool, "batch-run", "batch-llm", priority="background", cpu_slots=1)
            async with admitted(engine, pool, request) as admission:
                assert encode(admission.instance, "the lazy fox")[0] == admission.instance["the"]
                await anyio.sleep(0.005)
            nodes_done.append(i)
            if len(nodes_done) == 6:
                interactive_started.set()
            await anyio.sleep(0)

    async def background_batch() -> None:
        async with anyio.create_task_group() as tg:
            for worker in range(3):
                tg.start_soon(background_worker, worker)

    async def interactive() -> None:
        await interactive_started.wait()
        evictions_before = sum(pool.evictions.values())
        batch_nodes_before = len(nodes_done)
        request = request_for(pool, "user", "chat", priority="high", cpu_slots=1)
        async with admitted(engine, pool, request) as admission:
            seen["evictions"] = sum(pool.evictions.values()) - evictions_before
            seen["batch_nodes_meanwhile"] = len(nodes_done) - batch_nodes_before
            seen["tokens"] = encode(admission.instance, "quick brown")
            seen["batch_state"] = pool.state("batch-llm").value

    async with anyio.create_task_group() as tg:
        tg.start_soon(background_batch)
        tg.start_soon(interactive)
    assert seen["evictions"] == 1
    assert seen["batch_nodes_meanwhile"] <= 2  # at most the nodes that were running: none of the queued
    assert seen["batch_state"] == "cold" and seen["tokens"] == [6, 0]
    assert pool.history("batch-llm")[2].reason is TransitionReason.MEMORY_PRESSURE
    assert len(nodes_done) == 45  # the batch carries on afterwards
    assert engine.grants() == [] and pool.refs("chat") == pool.refs("batch-llm") == 0


async def test_preemption_cancels_a_long_background_node(corpus: Path) -> None:
    engine, pool = setup(corpus, preemption=True)
    outcome: dict[str, Any] = {}
    holding = anyio.Event()

    async def long_background_node() -> None:
        request = request_for(pool, "batch-run", "batch-llm", priority="background", cpu_slots=1)
        try:
            async with admitted(engine, pool, request):
                holding.set()
                await anyio.sleep(30)
                outcome["batch"] = "finished"
        except PreemptedError as err:
            outcome["batch"] = err.code

    async def interactive() -> None:
        await holding.wait()
        before = sum(pool.evictions.values())
        request = request_for(pool, "user", "chat", priority="high", cpu_slots=1)
        with anyio.fail_after(10):
            async with admitted(engine, pool, request) as admission:
                outcome["evictions"] = sum(pool.evictions.values()) - before
                outcome["tokens"] = encode(admission.instance, "dog")

    async with anyio.create_task_group() as tg:
        tg.start_soon(long_background_node)
        tg.start_soon(interactive)
    assert outcome == {"batch": "arbitration.preempted", "evictions": 1, "tokens": [1]}
    assert engine.grants() == [] and pool.refs("batch-llm") == 0


async def test_both_are_released_whatever_the_outcome(corpus: Path) -> None:
    engine, pool = setup(corpus, preemption=False)
    request = request_for(pool, "user", "chat", priority="normal", cpu_slots=1)
    with pytest.raises(ZeroDivisionError):
        async with admitted(engine, pool, request):
            assert pool.refs("chat") == 1 and len(engine.grants()) == 1
            1 / 0  # noqa: B018
    assert pool.refs("chat") == 0 and engine.grants() == []
    with anyio.move_on_after(0.05):
        async with admitted(engine, pool, request_for(pool, "user", "chat", cpu_slots=1)):
            await anyio.sleep(1)
    assert pool.refs("chat") == 0 and engine.grants() == []


async def test_denied_or_timed_out_requests_never_touch_the_pool(corpus: Path) -> None:
    engine, pool = setup(corpus, preemption=False)
    with pytest.raises(DeniedError) as info:
        async with admitted(engine, pool, request_for(pool, "stranger", "chat", cpu_slots=1)):
            pass
    assert info.value.decision.reason is DenialReason.UNKNOWN_OWNER and info.value.context["owner"] == "stranger"
    async with admitted(engine, pool, request_for(pool, "user", "chat", cpu_slots=2)):
        with pytest.raises(WaitTimeoutError):
            async with admitted(engine, pool, request_for(pool, "batch-run", "batch-llm", cpu_slots=1), timeout=0.05):
                pass
        assert engine.pending() == []  # the timed-out request was withdrawn
    assert pool.state("batch-llm").value == "cold"


async def test_release_owner_reclaims_a_run_that_never_returned(corpus: Path) -> None:
    _, pool = setup(corpus, preemption=False)
    lease = await pool.acquire("chat", owner="run-9")  # a node that crashed without exiting
    assert pool.leases_of("run-9") == ["chat"]
    assert await pool.release_owner("run-9") == 1 and pool.refs("chat") == 0 and not lease.active
    assert await pool.unload("chat")
