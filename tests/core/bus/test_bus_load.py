"""Sustained load: 100 endpoints and 1,000 subscriptions, no message lost, bounded memory."""

from __future__ import annotations

import tracemalloc
from collections import Counter

import anyio
import pytest

from symphony.bus import Bus, LocalEndpoint, Message, Subscription
from symphony.bus._topics import topic_matches

pytestmark = pytest.mark.anyio

SUSTAIN_SECONDS = 0.75  # the load phase; the whole test stays well under 3 s per backend
MIN_PUBLISHES = 60  # each one fans out to ~330 subscriptions
MIN_REQUESTS = 100
MEMORY_BOUND = 24 * 1024 * 1024  # peak traced allocations; measured ~5 MB, independent of duration


def _pattern(i: int) -> str:
    kind = i % 4
    if kind == 0:
        return f"load.ev.g{i % 10}.*"
    if kind == 1:
        return f"load.ev.*.t{i % 5}"
    if kind == 2:
        return "load.ev.#"
    return f"load.ev.g{i % 10}.t{i % 5}"


async def test_100_endpoints_1000_subscriptions_sustained() -> None:
    tracemalloc.start()
    try:
        bus = Bus(config={"default_timeout": 30})
        endpoints = [
            LocalEndpoint(
                f"ep{i}", handler=lambda m, i=i: {"ep": i, "n": m.payload}, capabilities={f"shard:{i % 10}"}
            )
            for i in range(100)
        ]
        for ep in endpoints:
            await bus.endpoints.register(ep)
            bus.handle(f"load.req.{ep.name}", ep.name)
        assert len(bus.endpoints.with_capability("shard:3")) == 10

        received: dict[str, int] = {}
        iter_subs: list[Subscription] = []
        lossy_subs: list[Subscription] = []
        callback_subs = []
        for i in range(1000):
            name = f"s{i}"
            received[name] = 0
            if i % 10 == 9:  # 100 telemetry-style subscriptions that may drop (and count it)
                lossy_subs.append(bus.subscribe(_pattern(i), buffer=4, policy="drop-oldest", name=name))
            elif i % 2:
                iter_subs.append(bus.subscribe(_pattern(i), buffer=32, policy="wait", name=name))
            else:

                def count(msg: Message, name: str = name) -> None:
                    received[name] += 1

                callback_subs.append(bus.subscribe_callback(_pattern(i), count, name=name))
        assert len(bus.subscriptions()) == 1000

        async def consume(sub: Subscription) -> None:
            async for _ in sub:
                received[sub.name] += 1

        async def consume_slowly(sub: Subscription) -> None:
            async for _ in sub:
                received[sub.name] += 1
                await anyio.sleep(0)

        topics: list[str] = []
        answers: list[tuple[int, int]] = []
        async with bus, anyio.create_task_group() as consumers:
            for sub in iter_subs:
                consumers.start_soon(consume, sub)
            for sub in lossy_subs:
                consumers.start_soon(consume_slowly, sub)

            async def requester(worker: int) -> None:
                k = worker
                while not stop.is_set():
                    reply = await bus.request(f"load.req.ep{k % 100}", k)
                    answers.append((reply.payload["ep"], reply.payload["n"]))
                    k += 4

            stop = anyio.Event()
            async with anyio.create_task_group() as load:
                for w in range(4):
                    load.start_soon(requester, w)
                deadline = anyio.current_time() + SUSTAIN_SECONDS
                k = 0
                # time-bounded, with a floor of work so a slow machine still exercises the load
                while anyio.current_time() < deadline or k < MIN_PUBLISHES or len(answers) < MIN_REQUESTS:
                    topic = f"load.ev.g{k % 10}.t{k % 5}"
                    topics.append(topic)
                    await bus.publish(Message(topic, {"k": k}))
                    k += 1
                stop.set()
            # let every queue drain, then end the consumers
            with anyio.fail_after(30):
                while any(sub.depth for sub in bus.subscriptions()):
                    await anyio.sleep(0.001)
            bus.unsubscribe_all()

        assert len(topics) >= MIN_PUBLISHES and len(answers) >= MIN_REQUESTS
        # every request got its own endpoint's answer
        assert all(ep == n % 100 for ep, n in answers)
        assert len(bus.pending) == 0
        # no message lost: each lossless subscription saw exactly what matched it ...
        per_topic = Counter(topics)
        per_pattern = {
            p: sum(n for t, n in per_topic.items() if topic_matches(p, t))
            for p in {_pattern(i) for i in range(1000)}
        }
        expected = {f"s{i}": per_pattern[_pattern(i)] for i in range(1000)}
        lossless = [s.name for s in iter_subs] + [s.name for s in callback_subs]
        assert {n: received[n] for n in lossless} == {n: expected[n] for n in lossless}
        # ... and each drop-oldest one accounts for every message: received + dropped
        for sub in lossy_subs:
            assert received[sub.name] + sub.dropped == expected[sub.name]
        snap = bus.metrics.snapshot()
        assert snap["counters"]["published"] == len(topics) + 100  # + the registration events
        assert snap["counters"]["delivered"] == sum(expected.values())
        assert snap["counters"]["dropped"] == sum(s.dropped for s in lossy_subs)
        assert snap["counters"]["requests"] == snap["counters"]["responses"] == len(answers)
        _, peak = tracemalloc.get_traced_memory()
        assert peak < MEMORY_BOUND, f"peak traced memory {peak / 1e6:.1f} MB"
    finally:
        tracemalloc.stop()
