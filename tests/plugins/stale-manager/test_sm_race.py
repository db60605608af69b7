"""git's lesson, tested with real processes on one real store: a collector racing writers that
put the same content again must never lose what a writer just stored.

With a one-second grace window, a collector process runs gc (at once, or sweeping a plan made
up to 0.2 s before) and empties the trash in a loop, so artifacts age into the trash and out of
the store all the time, while writer processes keep putting the same contents again and reading
each back at once. A read that starts less than the grace window after its put began must find
the bytes: a put, once returned, is never undone by a collector that had planned (or started)
to delete the same object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from symphony_artifact_store import ArtifactStore

GRACE = 1.0
COUNT = 300

WRITER = r"""
import json, random, sys, time
from symphony_artifact_store import ArtifactStore
root, out = sys.argv[1], sys.argv[6]
seed, count, seconds, grace = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rng = random.Random(seed)
checked = late = 0
lost = []
end = time.time() + seconds
with ArtifactStore(root) as store:
    while time.time() < end:
        i = rng.randrange(count)
        data = (b"%06d" % i) * ((100 if i % 2 else 9000) // 6)
        start = time.time()
        digest = store.put(data)
        try:
            ok = store.get(digest) == data
        except Exception as exc:
            ok = False
        if time.time() - start >= grace:
            late += 1  # too slow to say anything: the grace window had passed
        elif ok:
            checked += 1
        else:
            lost.append(str(digest))
        time.sleep(rng.random() * 0.02)
open(out, "w").write(json.dumps({"checked": checked, "late": late, "lost": lost}))
"""

COLLECTOR = r"""
import os, random, sys, time
from symphony_artifact_store import ArtifactStore
from symphony_stale_manager import StaleManager, StalePolicy
root, stop, grace = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = random.Random(7)
runs = trashed = purged = 0
with ArtifactStore(root) as store:
    policy = StalePolicy(grace=grace, keep_within=0, trash_retention=0, warm_after=0, cold_after=0)
    manager = StaleManager(store, policy)
    while not os.path.exists(stop):
        kind = runs % 3
        if kind == 0:  # plan and sweep at once
            done = manager.gc().trashed
        else:  # a slow collector: the plan is stale by the time it sweeps
            plan = manager.plan()
            time.sleep(rng.random() * 0.2)
            if kind == 1:
                done = manager.apply(plan).trashed
            else:  # the sweep primitive gc relies on, without the fresh re-plan
                done = store.trash_many([a.digest for a in plan.of("trash")], grace=grace)
        trashed += len(done)
        purged += len(manager.empty_trash())
        runs += 1
print(runs, trashed, purged)
"""


@pytest.mark.slow
def test_collector_racing_writers_never_undoes_a_put(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ArtifactStore(root).close()
    stop = tmp_path / "stop"
    collector = subprocess.Popen(
        [sys.executable, "-c", COLLECTOR, str(root), str(stop), str(GRACE)], stdout=subprocess.PIPE, text=True
    )
    outs = [tmp_path / f"w{n}.json" for n in range(3)]
    try:
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(root), str(n), str(COUNT), "4", str(GRACE), str(out)]
            )
            for n, out in enumerate(outs)
        ]
        for w in writers:
            assert w.wait(timeout=120) == 0
    finally:
        stop.touch()
        stdout, _ = collector.communicate(timeout=120)
    assert collector.returncode == 0
    runs, trashed, purged = map(int, stdout.split())
    results = [json.loads(out.read_text()) for out in outs]
    assert [r["lost"] for r in results] == [[], [], []]
    assert sum(r["checked"] for r in results) > 50
    # the collector really did delete while the writers wrote: the race was run, not avoided
    assert runs > 9 and trashed > 0 and purged > 0
    with ArtifactStore(root) as store:
        assert store.verify().ok
