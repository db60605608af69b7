"""DAG tracker benchmarks (symphony-dag-tracker), each figure beside its anchor in the same run.

- per-node overhead on 10,000 no-op nodes (100 layers x 100, each node fed by two nodes of the
  layer before), checkpoints on and off, beside ``dask.threaded.get`` on the same graph
  (target with checkpoints on: <= 0.5 x Dask); rounds alternate and each side keeps its best;
- 100,000 no-op nodes complete in a fresh process, with its peak RSS beside a 10,000-node run
  in another fresh process (target < 1 GiB, growth at most linear);
- a fully cached re-run of a 1,000-node workflow by a new tracker on the same checkpoint
  database (target < 0.5 s), beside the first run that computed it.

Run: ``.venv/bin/python tests/benchmarks/bench_dag_tracker.py`` (JSON lines on stdout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import anyio
from _report import emit, log

from symphony_dag_tracker import DagTracker, TrackerSettings
from symphony_sdk import NodeContext, NodeImplementation
from symphony_workflow import Edge, Node, NodeTypeRegistry, Port, Workflow, dumps

LAYERS, WIDTH = 100, 100
ROUNDS = 3


class Noop(NodeImplementation):
    """Does nothing: returns its one output."""

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        return {"out": None}


class PureNoop(Noop):
    """The same, declared pure: memoized."""

    pure = True


def registry() -> NodeTypeRegistry:
    """``noop`` and ``noop.pure``."""
    reg = NodeTypeRegistry()
    for name, impl in (("noop", Noop()), ("noop.pure", PureNoop())):
        reg.add(name, kind="operator", inputs={"a": "any", "b": "any"}, outputs={"out": "any"}, implementation=impl)
    return reg


def layered(layers: int, width: int, node_type: str = "noop") -> Workflow:
    """``layers`` x ``width`` nodes, each fed by two nodes of the layer before (distinct configs)."""
    ports = [Port("a", "any", required=False), Port("b", "any", required=False)]
    nodes, edges = [], []
    for layer in range(layers):
        for w in range(width):
            nid = f"n{layer}_{w}"
            nodes.append(Node.operator(nid, node_type, inputs=ports, outputs={"out": "any"}, config={"i": nid}))
            if layer:
                edges.append(Edge.data(f"n{layer - 1}_{w}", "out", nid, "a"))
                edges.append(Edge.data(f"n{layer - 1}_{(w + 1) % width}", "out", nid, "b"))
    return Workflow._from_checked(nodes=nodes, edges=edges, name="bench")


def dask_seconds() -> float:
    """One ``dask.threaded.get`` of the same graph (2 workers: the machine's cores)."""
    import dask.threaded

    def noop(*args: Any) -> None:
        return None

    graph: dict[str, Any] = {}
    for layer in range(LAYERS):
        for w in range(WIDTH):
            key = f"n{layer}_{w}"
            graph[key] = (noop,) if layer == 0 else (noop, f"n{layer - 1}_{w}", f"n{layer - 1}_{(w + 1) % WIDTH}")
    keys = [f"n{LAYERS - 1}_{w}" for w in range(WIDTH)]
    start = time.perf_counter()
    dask.threaded.get(graph, keys, num_workers=2)
    return time.perf_counter() - start


def tracker_seconds(wf: Workflow, document: str, settings: TrackerSettings) -> float:
    """prepare + run of ``wf`` by a fresh tracker (the document given, as the conductor does)."""
    with tempfile.TemporaryDirectory() as state:
        tracker = DagTracker(state, node_types=registry(), settings=settings)
        start = time.perf_counter()
        handle = tracker.prepare(wf, document=document)
        result = anyio.run(handle.run)
        elapsed = time.perf_counter() - start
        tracker.close()
    assert result.ok and result.executed == len(wf), result.error
    return elapsed


def per_node_overhead() -> None:
    """Checkpoints on and off beside Dask's threaded scheduler, alternating rounds."""
    wf = layered(LAYERS, WIDTH)
    document = dumps(wf)
    n = len(wf)
    best: dict[str, float] = {"dask": float("inf"), "on": float("inf"), "off": float("inf")}
    for _ in range(ROUNDS):
        best["dask"] = min(best["dask"], dask_seconds())
        best["on"] = min(best["on"], tracker_seconds(wf, document, TrackerSettings()))
        best["off"] = min(best["off"], tracker_seconds(wf, document, TrackerSettings(checkpoints=False)))
    dask_us = best["dask"] / n * 1e6
    emit(
        "dag.per_node.10k.checkpoints_on", best["on"] / n * 1e6, "us/node",
        baseline="dask.threaded.get", baseline_value=dask_us,
        target="<= 0.5 x dask threaded", check=lambda v, r: r is not None and r <= 0.5,
    )
    emit(
        "dag.per_node.10k.checkpoints_off", best["off"] / n * 1e6, "us/node",
        baseline="dask.threaded.get", baseline_value=dask_us,
    )


_CHILD = """
import resource, sys, time, tempfile, anyio
sys.path.insert(0, {here!r})
import bench_dag_tracker as b
from symphony_dag_tracker import DagTracker
layers = int(sys.argv[1])
wf = b.layered(layers, 100)
state = tempfile.mkdtemp()
tracker = DagTracker(state, node_types=b.registry())
start = time.perf_counter()
result = anyio.run(tracker.prepare(wf).run)
elapsed = time.perf_counter() - start
tracker.close()
import json
print(json.dumps({{"ok": result.ok, "nodes": len(wf), "seconds": elapsed,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""


def _child(layers: int) -> dict[str, Any]:
    code = _CHILD.format(here=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code, str(layers)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def big_run_memory() -> None:
    """100,000 no-op nodes in a fresh process: completes, peak RSS beside a 10,000-node run."""
    small = _child(100)
    big = _child(1000)
    assert small["ok"] and big["ok"]
    emit(
        "dag.100k.peak_rss", big["rss"] / 2**20, "MiB",
        baseline="10k nodes, same process kind", baseline_value=small["rss"] / 2**20,
        target="< 1024 MiB and at most linear growth (ratio <= 10)",
        check=lambda v, r: v < 1024 and (r is None or r <= 10),
        seconds=round(big["seconds"], 3), nodes=big["nodes"],
    )
    log(f"100k nodes: {big['seconds']:.1f} s (including serializing the workflow for the checkpoint)")


def cached_rerun() -> None:
    """A 1,000-node workflow computed once, then re-run entirely from the memo table by a new tracker."""
    wf = layered(10, 100, "noop.pure")
    with tempfile.TemporaryDirectory() as state:
        tracker = DagTracker(state, node_types=registry())
        start = time.perf_counter()
        first = anyio.run(tracker.prepare(wf).run)
        first_s = time.perf_counter() - start
        tracker.close()
        best = float("inf")
        for _ in range(3):
            again = DagTracker(state, node_types=registry())
            start = time.perf_counter()
            result = anyio.run(again.prepare(wf).run)
            best = min(best, time.perf_counter() - start)
            again.close()
            assert result.ok and result.cached == len(wf) and result.executed == 0
    assert first.ok and first.executed == len(wf)
    emit(
        "dag.cached_rerun.1k", best, "s",
        baseline="first run (computing every node)", baseline_value=first_s,
        target="< 0.5 s", check=lambda v, r: v < 0.5,
    )


def main() -> None:
    """Every figure of this file."""
    per_node_overhead()
    cached_rerun()
    big_run_memory()


if __name__ == "__main__":
    main()
