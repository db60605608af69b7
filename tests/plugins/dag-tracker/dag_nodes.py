"""Node implementations the DAG-tracker tests run (module level, so worker processes import them)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from symphony_sdk import Instrument, NodeContext, NodeImplementation, Operator
from symphony_workflow import Edge, Node, NodeTypeRegistry, Port, Workflow

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed creation time, so two builds of the same test workflow are equal (as two loads of a file are)."""


def _append(path: str | None, line: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class Add(Operator):
    """a + b; appends its node id to config["log"] when given (counts executions)."""

    name = "math.add"

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"sum": inputs["a"] + inputs["b"]}

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        _append(context.config.get("log"), context.node_id)
        return self.run(inputs)


class Counted(NodeImplementation):
    """Passes ``x`` through (plus 1); logs each execution; optional sleep; pure."""

    pure = True

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        _append(context.config.get("log"), context.node_id)
        delay = context.config.get("sleep", 0)
        if delay:
            time.sleep(delay)
        return {"y": (inputs.get("x") or 0) + 1}


class Noop(NodeImplementation):
    """Returns ``{"out": None}`` (not pure: always runs)."""

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        return {"out": None}


class Boom(NodeImplementation):
    """Raises ValueError until config["succeed_on"] attempts (counted in config["log"])."""

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        _append(context.config.get("log"), f"{context.node_id}:{context.attempt}")
        if context.attempt < context.config.get("succeed_on", 1_000_000):
            raise ValueError(f"boom on attempt {context.attempt}")
        return {"y": context.attempt}


class Hang(NodeImplementation):
    """Sleeps forever (async); records start and end in config["log"]."""

    async def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        _append(context.config.get("log"), f"start {context.node_id}")
        try:
            await anyio.sleep_forever()
        finally:
            _append(context.config.get("log"), f"end {context.node_id}")
        return {}


class Wrong(NodeImplementation):
    """Returns the outputs given in config["returns"] (or a non-mapping)."""

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Any:
        return context.config.get("returns")


class AsyncDouble(NodeImplementation):
    """Async: y = 2 * x, after an optional sleep; tracks the concurrency peak in config["log"]."""

    running = 0
    peak = 0

    async def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            _append(context.config.get("log"), context.node_id)
            await anyio.sleep(context.config.get("sleep", 0))
        finally:
            cls.running -= 1
        return {"y": 2 * (inputs.get("x") or 0)}


class Square(NodeImplementation):
    """CPU work in a worker process: y = x * x, plus the worker's pid."""

    executor = "process"
    pure = True

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        return {"y": inputs["x"] * inputs["x"], "pid": os.getpid()}


class SlowProcess(NodeImplementation):
    """Sleeps in a worker process (for cancellation and timeouts); writes its pid to config["log"]."""

    executor = "process"

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        _append(context.config.get("log"), str(os.getpid()))
        time.sleep(60)
        return {}


class Blocking(NodeImplementation):
    """A blocking call on the thread executor: y = x + 100."""

    executor = "thread"

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        time.sleep(0.01)
        return {"y": inputs["x"] + 100}


class Talker(Instrument):
    """Streams the words of its prompt."""

    async def stream(self, inputs: Mapping[str, Any], context: NodeContext) -> AsyncIterator[Any]:
        for word in inputs["prompt"].split():
            await anyio.sleep(0)
            yield word

    def collect(self, chunks: list[Any]) -> Mapping[str, Any]:
        return {"text": " ".join(chunks), "count": len(chunks)}


def registry() -> NodeTypeRegistry:
    """A registry with every test node type."""
    reg = NodeTypeRegistry()
    with reg.providing("tests"):
        reg.add("math.add", kind="operator", inputs={"a": "number", "b": "number"}, outputs={"sum": "number"},
                implementation=Add())
        reg.add("counted", kind="operator", inputs={"x": "integer"}, outputs={"y": "integer"}, implementation=Counted())
        reg.add("noop", kind="operator", implementation=Noop())
        reg.add("boom", kind="operator", outputs={"y": "integer"}, implementation=Boom())
        reg.add("hang", kind="operator", implementation=Hang())
        reg.add("wrong", kind="operator", outputs={"y": "integer"}, implementation=Wrong())
        reg.add("double", kind="operator", inputs={"x": "integer"}, outputs={"y": "integer"},
                implementation=AsyncDouble())
        reg.add("square", kind="operator", inputs={"x": "integer"}, outputs={"y": "integer", "pid": "integer"},
                implementation=Square())
        reg.add("slow.process", kind="operator", implementation=SlowProcess())
        reg.add("blocking", kind="operator", inputs={"x": "integer"}, outputs={"y": "integer"},
                implementation=Blocking())
        reg.add("talker", kind="instrument", inputs={"prompt": "text"}, outputs={"text": "text", "count": "integer"},
                implementation=Talker())
        reg.add("metadata.only", kind="operator")
    return reg


def chain(n: int, log: str | None = None, *, sleep: float = 0.0, name: str = "chain") -> Workflow:
    """input x -> counted c0 -> ... -> c{n-1} -> output y."""
    config: dict[str, Any] = {}
    if log:
        config["log"] = log
    if sleep:
        config["sleep"] = sleep
    nodes = [Node.input_node("x", "integer")]
    edges = []
    prev, port = "x", "value"
    for i in range(n):
        nid = f"c{i}"
        nodes.append(Node.operator(nid, "counted", inputs={"x": "integer"}, outputs={"y": "integer"}, config=dict(config)))
        edges.append(Edge.data(prev, port, nid, "x"))
        prev, port = nid, "y"
    nodes.append(Node.output_node("y", "integer"))
    edges.append(Edge.data(prev, port, "y", "value"))
    return Workflow(name, nodes=nodes, edges=edges, id="00000000-0000-4000-8000-000000000001", created=CREATED)


def diamond_layers(layers: int, width: int, log: str | None = None) -> Workflow:
    """``layers`` x ``width`` counted nodes, each fed by two of the layer before (logged)."""
    nodes = []
    edges = []
    config = {"log": log} if log else {}
    for layer in range(layers):
        for w in range(width):
            nid = f"n{layer}_{w}"
            nodes.append(
                Node.operator(
                    nid, "math.add", inputs=[Port("a", "number", required=False, default=0),
                                             Port("b", "number", required=False, default=1)],
                    outputs={"sum": "number"}, config=dict(config),
                )
            )
            if layer:
                edges.append(Edge.data(f"n{layer - 1}_{w}", "sum", nid, "a"))
                edges.append(Edge.data(f"n{layer - 1}_{(w + 1) % width}", "sum", nid, "b"))
    return Workflow("layers", nodes=nodes, edges=edges, id="00000000-0000-4000-8000-000000000002", created=CREATED)


def lines(path: Path) -> list[str]:
    """The lines a node appended to ``path`` (none if it does not exist)."""
    return path.read_text().splitlines() if path.exists() else []
