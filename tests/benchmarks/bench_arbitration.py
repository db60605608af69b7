"""Arbitration: decision latency with 100 owners and 1,000 pending, and a 50-owner simulation,
each beside first-come-first-served (the engine's ``fcfs`` policy) on the same trace.

Targets (DESIGN.md §6, issue 13): decision < 1 ms p99 with 100 owners and 1,000 pending; the
simulation (50 owners, mixed priorities, 100,000 requests) reports Gini of wait and of share,
max deviation from fair share and p99 wait per class, staged policy against FCFS.
Run: ``.venv/bin/python tests/benchmarks/bench_arbitration.py [REQUESTS]``
"""

from __future__ import annotations

import heapq
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, percentile

from symphony.commons.gcpause import gc_paused
from symphony_arbitration_engine import (
    ArbitrationConfig,
    ArbitrationEngine,
    AuditLog,
    Owner,
    Request,
    Resources,
    fairness_report,
)

PHASES = ((300.0, 1.8), (300.0, 0.1))
"""Offered load over capacity, in phases (seconds, factor): contention, then a lull that drains
it. The trace ends with a contention phase, where the fairness report is taken."""

CLASSES = (("critical", 0.02), ("high", 0.10), ("normal", 0.48), ("low", 0.20), ("background", 0.20))


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _priority(rng: random.Random) -> str:
    x = rng.random()
    for name, p in CLASSES:
        if x < p:
            return name
        x -= p
    return "background"


# -- decision latency ---------------------------------------------------------------------------


def decision_latency(
    policy: str, *, owners: int = 100, pending: int = 1000, samples: int = 3000
) -> tuple[list[float], list[float]]:
    """Microseconds per submit/release (wall clock, and this thread's CPU time) with
    ``pending`` requests waiting among ``owners`` owners."""
    rng = random.Random(7)
    clock = SimClock()
    engine = ArbitrationEngine(
        ArbitrationConfig(
            capacity=Resources(cpu_slots=64, memory=256), policy=policy, aging=60, max_pending=100_000
        ),
        clock=clock,
        audit=AuditLog(keep=False),
    )
    for i in range(owners):
        engine.add_owner(Owner(f"owner-{i}", weight=1 + i % 3))

    def request() -> Request:
        return Request.make(
            f"owner-{rng.randrange(owners)}",
            {"cpu_slots": rng.randint(1, 4), "memory": rng.randint(1, 16)},
            priority=_priority(rng),
        )

    while len(engine.pending()) < pending:
        engine.submit(request())
        clock.now += 0.001
    times: list[float] = []
    cpu: list[float] = []
    perf = time.perf_counter_ns
    thread = time.thread_time_ns
    with gc_paused():
        for k in range(samples):
            clock.now += 0.01
            if k % 2 == 0:
                r = request()
                c0, t0 = thread(), perf()
                engine.submit(r)
            else:
                grants = engine.grants()
                victim = grants[rng.randrange(len(grants))]
                c0, t0 = thread(), perf()
                engine.release(victim)
            times.append((perf() - t0) / 1000)
            cpu.append((thread() - c0) / 1000)
            if len(engine.pending()) > pending * 1.2:
                engine.cancel(engine.pending()[-1])
    return times, cpu


# -- simulation ---------------------------------------------------------------------------------


def make_trace(n: int, owners: int, seed: int = 11) -> list[tuple[float, str, str, int, int, float]]:
    """(arrival, owner, class, cpu, memory, duration): 10 greedy owners send 4x as much."""
    rng = random.Random(seed)
    weights = [4 if i < 10 else 1 for i in range(owners)]
    names = [f"owner-{i:02d}" for i in range(owners)]
    capacity_cpu = 32
    mean_cpu, mean_duration = 2.5, 1.0
    full = capacity_cpu / (mean_cpu * mean_duration)
    cycle = sum(length for length, _ in PHASES)
    t = 0.0
    trace = []
    for _ in range(n):
        into = t % cycle
        factor = PHASES[0][1] if into < PHASES[0][0] else PHASES[1][1]
        t += rng.expovariate(full * factor)
        owner = rng.choices(names, weights)[0]
        trace.append((t, owner, _priority(rng), rng.randint(1, 4), rng.randint(1, 16), rng.expovariate(1 / mean_duration)))
    return trace


def simulate(trace: list[tuple[float, str, str, int, int, float]], policy: str, owners: int) -> dict[str, Any]:
    clock = SimClock()
    engine = ArbitrationEngine(
        ArbitrationConfig(
            capacity=Resources(cpu_slots=32, memory=128), policy=policy, aging=900, max_pending=1_000_000,
            window=1e6,
        ),
        clock=clock,
        audit=AuditLog(keep=False),
    )
    for i in range(owners):
        engine.add_owner(Owner(f"owner-{i:02d}"))
    durations: dict[str, float] = {}
    events: list[tuple[float, int, str]] = []  # (time, seq, request id to release)
    seq = 0
    cycle = sum(length for length, _ in PHASES)
    report_at = trace[-1][0]
    report_at -= max(0.0, report_at % cycle - PHASES[0][0])  # the end of the last contention phase
    fairness = None
    start = time.perf_counter()

    def granted(d: Any) -> None:  # every grant, also those a submit or release makes for others
        nonlocal seq
        if d.granted:
            seq += 1
            heapq.heappush(events, (clock.now + durations[d.request], seq, d.request))

    engine.add_listener(granted)
    with gc_paused():
        for index, (arrival, owner, cls, cpu, mem, duration) in enumerate(trace):
            if fairness is None and arrival > report_at:
                fairness = fairness_report(engine, window=PHASES[0][0], now=report_at)
            while events and events[0][0] <= arrival:
                clock.now, _, rid = heapq.heappop(events)
                engine.release(rid)
            clock.now = arrival
            rid = f"q{index}"
            durations[rid] = duration
            engine.submit(Request.make(owner, {"cpu_slots": cpu, "memory": mem}, priority=cls, id=rid))
        if fairness is None:
            fairness = fairness_report(engine, window=PHASES[0][0], now=report_at)
        while events:
            clock.now, _, rid = heapq.heappop(events)
            engine.release(rid)
    elapsed = time.perf_counter() - start
    waits: dict[str, list[float]] = {name: [] for name, _ in CLASSES}
    for f in engine.finished:
        if f.granted is not None:
            waits[f.priority.name.lower()].append(f.granted - f.submitted)
    everything = fairness_report(engine, window=clock.now + 1, now=clock.now)
    return {
        "elapsed": elapsed,
        "requests": len(trace),
        "gini_wait": everything.gini_wait,
        "gini_share": fairness.gini_share,
        "max_deviation": fairness.max_deviation,
        "p99_wait": {name: percentile(w, 99) if w else 0.0 for name, w in waits.items()},
        "left_pending": len(engine.pending()),
    }


def main(argv: list[str]) -> None:
    log("decision latency, 100 owners, 1,000 pending ...")
    staged, staged_cpu = decision_latency("staged")
    fcfs, fcfs_cpu = decision_latency("fcfs")
    emit(
        "arbitration.decision_p99",
        percentile(staged, 99),
        "us",
        baseline="first-come-first-served (fcfs policy) on the same trace, p99",
        baseline_value=percentile(fcfs, 99),
        target="< 1000 us p99 with 100 owners and 1,000 pending",
        check=lambda v, r: v < 1000,
        p50=round(percentile(staged, 50), 3),
        baseline_p50=round(percentile(fcfs, 50), 3),
        samples=len(staged),
    )
    emit(
        "arbitration.decision_cpu_p99",
        percentile(staged_cpu, 99),
        "us",
        baseline="fcfs on the same trace, CPU time of this thread, p99",
        baseline_value=percentile(fcfs_cpu, 99),
        note="CPU time leaves out the time other processes of this shared machine took the core",
    )
    n = int(argv[0]) if argv else 100_000
    owners = 50
    log(f"simulation: {owners} owners, {n} requests, staged and fcfs ...")
    trace = make_trace(n, owners)
    ours = simulate(trace, "staged", owners)
    base = simulate(trace, "fcfs", owners)
    log(f"  staged {ours['elapsed']:.1f} s, fcfs {base['elapsed']:.1f} s of wall time")
    emit(
        "arbitration.sim.max_deviation",
        ours["max_deviation"],
        "fraction",
        baseline="fcfs on the same trace",
        baseline_value=base["max_deviation"],
        target="below fcfs (10 greedy owners send 4x the work)",
        check=lambda v, r: v < base["max_deviation"],
        window_s=PHASES[0][0],
    )
    emit(
        "arbitration.sim.gini_share",
        ours["gini_share"],
        "gini",
        baseline="fcfs on the same trace",
        baseline_value=base["gini_share"],
        target="below fcfs",
        check=lambda v, r: v < base["gini_share"],
    )
    emit(
        "arbitration.sim.gini_wait",
        ours["gini_wait"],
        "gini",
        baseline="fcfs on the same trace",
        baseline_value=base["gini_wait"],
        note="priority classes make waits deliberately unequal",
    )
    for name, _ in CLASSES:
        emit(
            f"arbitration.sim.p99_wait[{name}]",
            ours["p99_wait"][name],
            "s",
            baseline="fcfs on the same trace",
            baseline_value=base["p99_wait"][name],
            **(
                {"target": "below fcfs", "check": lambda v, r, b=base["p99_wait"][name]: v < b}
                if name in ("critical", "high")
                else {}
            ),
        )
    emit(
        "arbitration.sim.wall_time",
        ours["elapsed"],
        "s",
        baseline="fcfs policy, same engine, same trace",
        baseline_value=base["elapsed"],
        target=f"< 20 s for {n} requests",
        check=lambda v, r: v < 20,
        requests=n,
        owners=owners,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
