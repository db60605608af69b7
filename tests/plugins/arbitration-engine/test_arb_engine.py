"""The engine's stages, decisions, conflicts and bad input, on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from symphony.commons.errors import NotFoundError, SymphonyError, ValidationError
from symphony_arbitration_engine import (
    ArbitrationConfig,
    ArbitrationEngine,
    ConflictKind,
    DenialReason,
    Outcome,
    Owner,
    PriorityClass,
    Request,
    Resources,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def engine(clock: Clock, *owners: Owner, **config: Any) -> ArbitrationEngine:
    config.setdefault("capacity", Resources(cpu_slots=4, memory=100))
    eng = ArbitrationEngine(ArbitrationConfig(**config), clock=clock)
    for owner in owners or (Owner("a"), Owner("b")):
        eng.add_owner(owner)
    return eng


def req(owner: str, cpu: float = 1, priority: str = "normal", **demand: Any) -> Request:
    return Request.make(owner, {"cpu_slots": cpu, **demand}, priority=priority)


def test_denials_name_their_reason_and_the_engine_keeps_serving() -> None:
    clock = Clock()
    eng = engine(clock, Owner("a"), Owner("zero", quota=Resources(cpu_slots=0), zero_quota=frozenset({"cpu_slots"})),
                 Owner("small", quota=Resources(cpu_slots=2)))
    cases = [
        (req("nobody"), DenialReason.UNKNOWN_OWNER, "owner 'nobody' is not registered"),
        (req("a", cpu=5), DenialReason.EXCEEDS_CAPACITY, "more than the whole capacity 4"),
        (req("zero"), DenialReason.QUOTA_EXCEEDED, "a quota of zero"),
        (req("small", cpu=3), DenialReason.QUOTA_EXCEEDED, "above the quota 2"),
    ]
    for request, reason, words in cases:
        d = eng.submit(request)
        assert d.outcome is Outcome.DENIED and d.reason is reason and words in d.rationale, d
    assert eng.submit(req("a")).granted
    assert eng.status()["used"]["cpu_slots"] == 1


def test_bad_requests_raise_validation_errors() -> None:
    for bad in (
        lambda: Request.make("a", {"cpu_slots": -1}),
        lambda: Request.make("a", {"gpus": 1}),
        lambda: Request.make("a", {"memory": "lots"}),
        lambda: Request.make("a", priority="urgent"),
        lambda: Request.make("", {}),
        lambda: Request.make("a", deadline=float("nan")),
        lambda: Owner("a", weight=0),
        lambda: Owner("a", kind="robot"),
    ):
        with pytest.raises(ValidationError):
            bad()
    eng = engine(Clock())
    with pytest.raises(ValidationError):
        eng.submit("not a request")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        eng.release("r999")
    eng.submit(Request.make("a", {"cpu_slots": 1}, id="x"))
    with pytest.raises(ValidationError, match="already pending or granted"):
        eng.submit(Request.make("a", {"cpu_slots": 1}, id="x"))


def test_quota_defers_until_the_owner_releases() -> None:
    clock = Clock()
    eng = engine(clock, Owner("a", quota=Resources(cpu_slots=2)), Owner("b"))
    assert eng.submit(req("a", 2)).granted
    d = eng.submit(req("a", 1))
    assert d.outcome is Outcome.DEFERRED and d.stage == "quota"
    assert eng.submit(req("b", 1)).granted  # a's quota does not block b
    granted = eng.release("r1")
    assert [x.request for x in granted] == ["r2"]


def test_priority_class_goes_first_and_drf_orders_owners_within_a_class() -> None:
    clock = Clock()
    eng = engine(clock, Owner("a"), Owner("b"), Owner("c", weight=3), aging=0)
    assert eng.submit(req("a", 4)).granted
    order = []
    eng.add_listener(lambda d: order.append((d.request, d.owner)) if d.granted else None)
    eng.submit(req("b", 1, "low"))  # r2
    eng.submit(req("b", 1, "normal"))  # r3
    eng.submit(req("c", 1, "normal"))  # r4
    eng.submit(req("b", 1, "high"))  # r5
    clock.now += 1
    eng.release("r1")
    # high first; then normal: b holds 1 of 4 (share .25), c holds 0 -> c, then b; low last
    assert order == [("r5", "b"), ("r4", "c"), ("r3", "b"), ("r2", "b")]


def test_weighted_drf_gives_heavier_owners_more() -> None:
    clock = Clock()
    eng = engine(clock, Owner("light"), Owner("heavy", weight=3), capacity=Resources(cpu_slots=8), aging=0)
    blocker = eng.submit(req("light", 8))
    for _ in range(8):
        eng.submit(req("light", 1))
        eng.submit(req("heavy", 1))
    eng.release(blocker.request)
    held = eng.status()["owners"]
    assert held["heavy"]["held"]["cpu_slots"] == 6 and held["light"]["held"]["cpu_slots"] == 2


def test_drf_uses_the_dominant_resource() -> None:
    clock = Clock()
    # Ghodsi et al.'s example: 9 CPUs, 18 GB; A needs <1 CPU, 4 GB>, B needs <3 CPU, 1 GB>
    eng = engine(clock, Owner("A"), Owner("B"), capacity=Resources(cpu_slots=9, memory=18), aging=0)
    first = eng.submit(req("A", 9))
    for _ in range(6):
        eng.submit(Request.make("A", {"cpu_slots": 1, "memory": 4}))
        eng.submit(Request.make("B", {"cpu_slots": 3, "memory": 1}))
    eng.release(first.request)
    owners = eng.status()["owners"]
    assert owners["A"]["held"] == {"cpu_slots": 3, "memory": 12}  # three tasks of A
    assert owners["B"]["held"] == {"cpu_slots": 6, "memory": 2}  # two tasks of B
    assert owners["A"]["dominant_share"] == pytest.approx(2 / 3) == owners["B"]["dominant_share"]


def test_token_bucket_defers_with_an_estimated_wait() -> None:
    clock = Clock()
    eng = engine(clock, Owner("api", calls_per_minute=60, burst=10))
    assert eng.submit(req("api", 0, calls_per_minute=8)).granted
    d = eng.submit(req("api", 0, calls_per_minute=5))
    assert d.outcome is Outcome.DEFERRED and d.stage == "rate" and d.wait == pytest.approx(3.0)
    clock.now += 2.9
    assert eng.tick() == []
    clock.now += 0.2
    assert [x.request for x in eng.tick()] == ["r2"]
    too_many = eng.submit(req("api", 0, calls_per_minute=11))
    assert too_many.reason is DenialReason.RATE_LIMITED


def test_money_is_limited_per_owner_and_globally() -> None:
    clock = Clock()
    eng = engine(clock, Owner("a", quota=Resources(money=10)), Owner("b"), cost_limit=15, window=60)
    assert eng.submit(req("a", 0, money=8)).granted
    d = eng.submit(req("a", 0, money=5))
    assert d.outcome is Outcome.DEFERRED and d.stage == "cost"
    assert [c.kind for c in d.conflicts] == [ConflictKind.COST_LIMIT]
    assert eng.submit(req("b", 0, money=20)).reason is DenialReason.COST_LIMIT
    eng.release("r1", spent=3)  # refunds 5: a has spent 3, the window 3
    assert eng.grants() == ["r2"]
    clock.now += 61
    assert eng.submit(req("b", 0, money=15)).granted  # the window forgot the old spend


def test_deadline_and_cancel_and_queue_full() -> None:
    clock = Clock()
    eng = engine(clock, Owner("a"), Owner("q"), max_pending=2)
    eng.submit(req("a", 4))
    assert eng.submit(Request.make("a", {"cpu_slots": 1}, deadline=clock.now)).reason is DenialReason.DEADLINE_EXPIRED
    late = eng.submit(Request.make("q", {"cpu_slots": 1}, deadline=clock.now + 5))
    assert late.outcome is Outcome.DEFERRED
    eng.submit(req("q"))
    assert eng.submit(req("q")).reason is DenialReason.QUEUE_FULL
    clock.now += 6
    expired = eng.tick()
    assert [(d.request, d.reason) for d in expired] == [(late.request, DenialReason.DEADLINE_EXPIRED)]
    cancelled = eng.cancel(eng.pending()[0])
    assert cancelled is not None and cancelled.reason is DenialReason.CANCELLED
    assert eng.cancel("nope") is None and eng.pending() == []


def test_aging_prevents_starvation() -> None:
    clock = Clock()
    eng = engine(clock, Owner("batch"), Owner("user"), capacity=Resources(cpu_slots=1), aging=10)
    eng.submit(req("user"))
    starving = eng.submit(req("batch", 1, "background"))
    granted_at = None
    for step in range(100):  # a steady stream of normal work
        eng.submit(req("user"))
        clock.now += 1
        for d in eng.release(eng.grants()[0]):
            if d.request == starving.request:
                granted_at = step
        if granted_at is not None:
            break
    # background -> low -> normal after 20 s: then it is the oldest normal request and goes next
    assert granted_at is not None and 19 <= granted_at <= 21
    assert "aged from background" in next(
        r["decision"]["rationale"] for r in eng.audit.records  # type: ignore[union-attr]
        if r["kind"] == "decision" and r["decision"]["request"] == starving.request and r["decision"]["outcome"] == "granted"
    )


def test_preemption_takes_back_background_grants() -> None:
    clock = Clock()
    eng = engine(clock, Owner("batch"), Owner("user"), preemption=True, aging=0)
    b1, b2 = eng.submit(req("batch", 2, "background")), eng.submit(req("batch", 2, "background"))
    assert b1.granted and b2.granted
    preempted = []
    eng.add_listener(lambda d: preempted.append(d.request) if d.reason is DenialReason.PREEMPTED else None)
    d = eng.submit(req("user", 2, "high"))
    assert d.outcome is Outcome.DEFERRED and preempted == [b2.request]  # the youngest only
    assert eng.is_preempted(b2.request) and not eng.is_preempted(b1.request)
    assert [x.request for x in eng.release(b2.request)] == [d.request]
    # without preemption, a high request simply waits
    eng2 = engine(Clock(), Owner("batch"), Owner("user"), aging=0)
    eng2.submit(req("batch", 4, "background"))
    assert eng2.submit(req("user", 2, "high")).outcome is Outcome.DEFERRED and not eng2.is_preempted("r1")


def test_same_model_is_shared_and_conflicts_are_named() -> None:
    clock = Clock()
    eng = engine(clock, capacity=Resources(cpu_slots=4, memory=100, model_instances=1))
    first = eng.submit(Request.make("a", {"cpu_slots": 1, "memory": 60, "model_instances": 1}, model="chat"))
    second = eng.submit(Request.make("b", {"cpu_slots": 1, "memory": 60, "model_instances": 1}, model="chat"))
    assert first.granted and second.granted  # one instance, accounted once
    assert [c.kind for c in second.conflicts] == [ConflictKind.SAME_MODEL]
    other = Request.make("b", {"cpu_slots": 3, "memory": 35, "model_instances": 1}, model="embed")
    kinds = {c.kind for c in eng.would_conflict(other)}
    assert kinds == {ConflictKind.MEMORY_PRESSURE, ConflictKind.CPU_SATURATION}
    d = eng.submit(other)
    assert d.outcome is Outcome.DEFERRED and "model_instances 1/1" in d.rationale
    assert set(eng.detect()) == {d.request}
    eng.release(first.request)
    assert eng.status()["used"]["memory"] == 60  # still held by the second grant
    assert [x.request for x in eng.release(second.request)] == [d.request]


def test_fcfs_policy_ignores_priority() -> None:
    clock = Clock()
    eng = engine(clock, policy="fcfs")
    eng.submit(req("a", 4))
    low, high = eng.submit(req("a", 1, "low")), eng.submit(req("b", 1, "critical"))
    assert low.position == 0 and high.position == 1
    order = [d.request for d in eng.release("r1")]
    assert order == [low.request, high.request]


def test_config_from_mapping_and_errors() -> None:
    config = ArbitrationConfig.from_mapping(
        {"capacity": {"cpu_slots": 8}, "owners": {"alice": {"weight": 2, "quota": {"money": 0}}}, "aging": 5}
    )
    assert config.capacity.cpu_slots == 8 and config.owners[0].limits()[5] == 0
    for bad in ({"policy": "lottery"}, {"aging": -1}, {"capacity": {"gpus": 1}}, {"owners": []}):
        with pytest.raises(SymphonyError):
            ArbitrationConfig.from_mapping(bad)
    assert PriorityClass.parse("Critical") is PriorityClass.CRITICAL
