"""A run in its own process, for the kill -9 tests: ``dag_runner.py STATE LOG RUN_ID start|resume``."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import dag_nodes

from symphony_dag_tracker import DagTracker
from symphony_workflow import Edge, Node, Workflow

LAYERS, WIDTH = 10, 5


def workflow(log: str) -> Workflow:
    """Input x feeds ``WIDTH`` columns of ``LAYERS`` nodes, inline (counted) and async (double) mixed."""
    nodes: list[Node] = [Node.input_node("x", "integer")]
    edges = []
    for layer in range(LAYERS):
        for w in range(WIDTH):
            nid = f"n{layer}_{w}"
            kind = "counted" if (layer + w) % 2 == 0 else "double"
            config: dict[str, Any] = {"log": log, "i": nid, "sleep": 0.02}
            nodes.append(Node.operator(nid, kind, inputs={"x": "integer"}, outputs={"y": "integer"}, config=config))
            edges.append(Edge.data("x" if layer == 0 else f"n{layer - 1}_{w}", "value" if layer == 0 else "y", nid, "x"))
    for w in range(WIDTH):
        nodes.append(Node.output_node(f"out{w}", "integer"))
        edges.append(Edge.data(f"n{LAYERS - 1}_{w}", "y", f"out{w}", "value"))
    return Workflow("killme", nodes=nodes, edges=edges, id="00000000-0000-4000-8000-00000000000a", created=dag_nodes.CREATED)


async def main(state: str, log: str, run_id: str, mode: str) -> None:
    tracker = DagTracker(state, node_types=dag_nodes.registry())
    wf = workflow(log)
    if mode == "start":
        handle = tracker.prepare(wf, inputs={"x": 1}, run_id=run_id)
    else:
        handle = tracker.resume(run_id, wf)
    print("started", flush=True)
    result = await handle.run()
    print(result.state, result.executed, result.restored, sorted(result.outputs.items()), flush=True)
    tracker.close()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:5])
