"""Stale manager benchmarks (symphony-stale-manager), each figure beside its anchor in the same run.

- a gc plan over 100,000 artifacts (target < 2 s): read the index (rows, 10,000 ref versions,
  50,000 lineage edges, keep tags), collect 1,000 roots, mark what the rules keep, and decide
  trash / purge / restore / warm / cold for every artifact with the rule that decided it;
  beside the floor under it: reading the same 100,000 rows with ``ArtifactStore.scan`` and
  deciding nothing;
- the same plan from a snapshot already in memory (the planner alone), beside a Python loop
  that only compares each row's time against the grace window.

The index of a real store is filled directly with SQL (putting 100,000 artifacts one by one
would only measure 100,000 fsyncs): the rows are exactly what the planner reads.
Run: ``.venv/bin/python tests/benchmarks/bench_stale_manager.py`` (JSON lines on stdout).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, median

from symphony_artifact_store import ArtifactStore, hash_bytes
from symphony_stale_manager import StaleManager, StalePolicy, make_plan

COUNT = 100_000
DAY = 86400.0


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fill(store: ArtifactStore, rng: random.Random) -> list[str]:
    """100,000 rows with ages over 120 days, pins, keep tags, 5 % trashed, refs with history, lineage."""
    now = time.time()
    digests = [hash_bytes("blake3", i.to_bytes(8, "little")) for i in range(COUNT)]
    rows = []
    for i, d in enumerate(digests):
        put = now - rng.random() * 120 * DAY
        accessed = min(now, put + rng.random() * 30 * DAY)
        trashed = rng.random() < 0.05
        inline = i % 3 == 0
        rows.append((i + 1, str(d), int(d.hex[:16], 16) - (1 << 63), 9000, 9000, rng.choice(["hot", "hot", "warm"]),
                     int(inline), "trashed" if trashed else "present", int(rng.random() < 0.01), put, put, accessed,
                     (put + rng.random() * (now - put)) if trashed else None))  # fmt: skip
    texts = [str(d) for d in digests]
    refs = []
    history = []
    for r in range(2000):
        versions = rng.sample(texts, 5)
        for v, target in enumerate(versions, 1):
            history.append((f"refs/r{r}", v, target, now - (6 - v) * DAY, ""))
        refs.append((f"refs/r{r}", versions[-1], 5, now - DAY, ""))
    edges = {(texts[i], texts[rng.randrange(i)]) for i in rng.sample(range(1, COUNT), 50_000)}
    with sqlite3.connect(store.index.path) as db:
        db.executemany(
            "INSERT INTO objects(id, digest, k, algorithm, size, stored_size, tier, inline, state, pinned, created,"
            " last_put, accessed, trashed_at) VALUES (?, ?, ?, 'blake3', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany(
            "INSERT INTO tags(tag, id) VALUES ('keep', ?)",
            [(i,) for i in rng.sample(range(1, COUNT + 1), 2000)],
        )
        db.executemany("INSERT INTO lineage(child, parent) VALUES (?, ?)", sorted(edges))
        db.executemany("INSERT INTO refs(name, digest, version, time, message) VALUES (?, ?, ?, ?, ?)", refs)
        db.executemany(
            "INSERT INTO ref_history(name, version, digest, time, message) VALUES (?, ?, ?, ?, ?)", history
        )
    return texts


def bench_plan(work: Path) -> None:
    rng = random.Random(11)
    root = work / "store-gc"
    with ArtifactStore(root, cold_root=work / "cold") as store:
        start = time.perf_counter()
        texts = fill(store, rng)
        log(f"# filled 100,000 rows in {time.perf_counter() - start:.1f} s")
        roots = {t: "checkpoint" for t in rng.sample(texts, 1000)}
        manager = StaleManager(store, StalePolicy(grace=14 * DAY, keep_within=7 * DAY), roots=lambda: [roots])
        plan = manager.plan()
        assert plan.scanned == COUNT
        counts = plan.counts()
        assert counts["trash"] > 10_000 and counts["warm"] > 0 and counts["cold"] > 0, counts
        ours, anchor = [], []
        for i in range(7):
            first, second = (manager.plan, lambda: list(store.scan()))[:: 1 if i % 2 == 0 else -1]
            a, b = timed(first), timed(second)
            ours.append(a if i % 2 == 0 else b)
            anchor.append(b if i % 2 == 0 else a)
        emit(
            "stale gc plan, 100,000 artifacts (read index + mark + decide)", median(ours), "s",
            baseline="ArtifactStore.scan of the same 100,000 rows, deciding nothing", baseline_value=median(anchor),
            target="< 2 s", check=lambda v, r: v < 2.0, counts=counts, kept=dict(plan.kept),
        )  # fmt: skip
        snapshot = manager.snapshot()
        now = time.time()
        grace_cut = now - 14 * DAY
        ours, anchor = [], []
        for _ in range(7):
            ours.append(timed(lambda: make_plan(snapshot, manager.policy, now)))
            anchor.append(timed(lambda: [r.digest for r in snapshot.rows if r.last_put <= grace_cut]))
        emit(
            "stale planner alone, 100,000 artifacts (snapshot in memory)", median(ours), "s",
            baseline="a Python loop comparing each row's time with the grace window", baseline_value=median(anchor),
        )  # fmt: skip


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-stale-", dir=os.environ.get("BENCH_TMP")))
    try:
        bench_plan(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
