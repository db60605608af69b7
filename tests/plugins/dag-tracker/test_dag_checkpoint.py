"""Durable checkpoints: kill -9 and resume, refusals, corrupted databases; nothing is lost."""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import attrs
import dag_nodes
import dag_runner
import pytest
from dag_nodes import lines

from symphony.commons.errors import ConflictError, NotFoundError
from symphony_dag_tracker import CheckpointError, DagTracker
from symphony_workflow import Edge, Node, NodePolicy

HERE = Path(__file__).parent


def _spawn(state: Path, log: Path, run_id: str, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(HERE / "dag_runner.py"), str(state), str(log), run_id, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _committed(state: Path, run_id: str, registry) -> dict[str, dict[str, str]]:
    tracker = DagTracker(state, node_types=registry)
    try:
        return tracker.completed_outputs(run_id)
    finally:
        tracker.close()


@pytest.mark.slow
def test_killed_at_random_points_and_resumed(tmp_path: Path, registry) -> None:
    rng = random.Random(1234)
    expected = None
    killed_after: list[int] = []
    for trial in range(20):
        state, log, run_id = tmp_path / f"s{trial}", tmp_path / f"log{trial}.txt", f"run{trial}"
        proc = _spawn(state, log, run_id, "start")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, "the run ended before the kill: make it longer"
        # (nodes committed as completed at a kill, how many executions the log had then)
        kills = [(set(_committed(state, run_id, registry)), len(lines(log)))]
        killed_after.append(len(kills[0][0]))
        for attempt in range(3):  # a resume may be killed too; the last one finishes
            proc = _spawn(state, log, run_id, "resume")
            if attempt < 2 and rng.random() < 0.3:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
                time.sleep(rng.uniform(0.0, 0.2))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills.append((set(_committed(state, run_id, registry)), len(lines(log))))
                continue
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            break
        final = out.strip().splitlines()[-1]
        assert final.startswith("completed"), final
        expected = expected or final.split(" ", 3)[3]
        assert final.split(" ", 3)[3] == expected  # same outputs whatever the kill point
        counts = Counter(lines(log))
        operators = {f"n{layer}_{w}" for layer in range(dag_runner.LAYERS) for w in range(dag_runner.WIDTH)}
        assert set(counts) == operators
        executions = lines(log)
        for done, offset in kills:  # nothing completed before a kill ran after it
            again = done.intersection(executions[offset:])
            assert not again, f"trial {trial}: completed nodes ran again: {sorted(again)}"
        # nothing is lost: every completed node's outputs can be read back
        tracker = DagTracker(state, node_types=registry)
        stored = tracker.completed_outputs(run_id)
        assert operators <= set(stored)
        for digests in stored.values():
            for digest in digests.values():
                assert digest.startswith("blake3:")
        tracker.close()
    assert max(killed_after) > 0 and min(killed_after) < len(operators)  # kills landed mid-run


@pytest.mark.anyio
async def test_resume_refuses_unknown_finished_and_changed_runs(tracker: DagTracker, tmp_path: Path) -> None:
    wf = dag_nodes.chain(2)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        tracker.resume("nope", wf)
    result = await tracker.run(wf, inputs={"x": 1})
    with pytest.raises(ConflictError, match="already finished"):
        tracker.resume(result.run_id, wf)
    handle = tracker.prepare(wf, inputs={"x": 1})  # recorded, never run: as if killed at once
    changed = dag_nodes.chain(2)
    changed.add_node(Node.operator("extra", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}))
    changed.add_edge(Edge.data("c1", "y", "extra", "x"))
    old = changed.node("c0")
    changed.replace_node(attrs.evolve(old, config={"sleep": 0}))
    with pytest.raises(ConflictError) as info:
        tracker.resume(handle.id, changed)
    message = str(info.value)
    assert "workflow changed" in message and "+ node extra" in message and "~ node c0: config" in message
    stricter = dag_nodes.chain(2)
    stricter.replace_node(attrs.evolve(stricter.node("c1"), policy=NodePolicy(retries=2, timeout=5)))
    with pytest.raises(ConflictError, match="~ node c1: policy"):  # the policy is part of the workflow
        tracker.resume(handle.id, stricter)
    resumed = tracker.resume(handle.id, wf)
    assert (await resumed.run()).outputs == {"y": 3}


def test_a_corrupted_checkpoint_database_is_a_clear_error(tmp_path: Path, registry) -> None:
    state = tmp_path / "s"
    tracker = DagTracker(state, node_types=registry)
    for x in range(20):
        result = anyio.run(functools.partial(tracker.run, dag_nodes.chain(30), inputs={"x": x}))
        assert result.ok
    tracker.close()
    db = state / "checkpoints.db"
    size = db.stat().st_size
    with open(db, "r+b") as fh:  # scribble over the middle of the file
        fh.seek(size // 2)
        fh.write(os.urandom(4096))
    with pytest.raises(CheckpointError) as info:
        DagTracker(state, node_types=registry)
    assert "checkpoints.db" in str(info.value) and "unreadable" in str(info.value)
    assert db.stat().st_size >= size  # not recreated

    garbage = tmp_path / "g"
    garbage.mkdir()
    (garbage / "checkpoints.db").write_bytes(b"this is not a database at all" * 10)
    with pytest.raises(CheckpointError, match="not an SQLite database"):
        DagTracker(garbage, node_types=registry)


@pytest.mark.anyio
async def test_nothing_is_lost_when_a_run_fails_or_is_cancelled(tracker: DagTracker, tmp_path: Path) -> None:
    big = "word " * 2000  # larger than inline_max: goes to the artifact store
    wf = dag_nodes.chain(2)
    wf.add_node(Node.input_node("t", "text"))
    wf.add_node(Node.operator("b", "boom", outputs={"y": "integer"}))
    wf.add_edge(Edge.control("c1", "b"))
    result = await tracker.run(wf, inputs={"x": 1, "t": big})
    assert result.state == "failed"
    values = tracker.completed_values(result.run_id)
    assert values["c0"] == {"y": 2} and values["c1"] == {"y": 3} and values["t"] == {"value": big}
    assert tracker.store.exists(result.nodes["t"].digests["value"])
    assert set(values) == {n for n, s in result.nodes.items() if s.state == "completed"}
