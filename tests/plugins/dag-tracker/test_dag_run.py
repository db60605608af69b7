"""Running workflows: values, control nodes, priorities, limits, memoization, executors, instruments."""

from __future__ import annotations

from pathlib import Path

import attrs
import dag_nodes
import pytest
from dag_nodes import lines

from symphony.commons.errors import NotFoundError, OperationTimeoutError, ValidationError
from symphony_dag_tracker import DagTracker, TrackerSettings, retried
from symphony_workflow import Edge, Node, NodePolicy, NodeTypeRegistry, Port, Workflow, WorkflowBuilder

pytestmark = pytest.mark.anyio


async def test_a_chain_runs_and_returns_its_output(tracker: DagTracker) -> None:
    result = await tracker.run(dag_nodes.chain(4), inputs={"x": 10})
    assert result.ok and result.outputs == {"y": 14}
    assert result.executed == 4 and result.cached == 0
    status = result.nodes["c3"]
    assert status.state == "completed" and status.attempts == 1 and not status.cached
    assert set(status.digests) == {"y"} and status.digests["y"].startswith("blake3:")


async def test_memoized_across_trackers_and_runs(tmp_path: Path, registry) -> None:
    log = tmp_path / "log.txt"
    wf = dag_nodes.chain(3, str(log))
    first = DagTracker(tmp_path / "state", node_types=registry)
    r1 = await first.run(wf, inputs={"x": 1})
    first.close()
    second = DagTracker(tmp_path / "state", node_types=registry)  # a new process would see the same file
    r2 = await second.run(wf, inputs={"x": 1})
    assert r1.outputs == r2.outputs == {"y": 4}
    assert r2.cached == 3 and r2.executed == 0
    assert all(r2.nodes[f"c{i}"].cached for i in range(3))
    assert lines(log) == ["c0", "c1", "c2"]  # executed once, in the first run only
    # x=2: c0 now sees what c1 saw (2) and c1 what c2 saw (3): same type, config and input
    # digests, so their outputs are reused; only c2 (input 4) is new
    r3 = await second.run(wf, inputs={"x": 2})
    assert r3.outputs == {"y": 5} and (r3.executed, r3.cached) == (1, 2)
    assert lines(log) == ["c0", "c1", "c2", "c2"]
    second.close()


async def test_memo_key_covers_config_version_and_cache_policy(tmp_path: Path, registry) -> None:
    tracker = DagTracker(tmp_path / "state", node_types=registry)
    wf = dag_nodes.chain(1, str(tmp_path / "a.log"))
    assert (await tracker.run(wf, inputs={"x": 1})).executed == 1
    assert (await tracker.run(wf, inputs={"x": 1})).cached == 1
    other = dag_nodes.chain(1, str(tmp_path / "b.log"))  # config differs
    assert (await tracker.run(other, inputs={"x": 1})).executed == 1
    off = dag_nodes.chain(1, str(tmp_path / "a.log"))
    node = off.node("c0")
    off.replace_node(attrs.evolve(node, policy=NodePolicy(cache=False)))
    r = await tracker.run(off, inputs={"x": 1})
    assert (r.executed, r.cached) == (1, 0)
    salted = dag_nodes.chain(1, str(tmp_path / "a.log"))
    salted.replace_node(attrs.evolve(node, policy=NodePolicy(cache_salt="v2")))
    assert (await tracker.run(salted, inputs={"x": 1})).executed == 1  # a new salt: a new key
    assert (await tracker.run(salted, inputs={"x": 1})).cached == 1
    # retries, timeout and optional do not change what a node computes: same key, cached
    patient = dag_nodes.chain(1, str(tmp_path / "a.log"))
    patient.replace_node(attrs.evolve(node, policy=NodePolicy(retries=3, timeout=30, optional=True)))
    assert (await tracker.run(patient, inputs={"x": 1})).cached == 1
    tracker.close()

    class CountedV2(dag_nodes.Counted):
        version = "2"

    bumped = NodeTypeRegistry()
    bumped.add("counted", kind="operator", inputs={"x": "integer"}, outputs={"y": "integer"}, implementation=CountedV2())
    tracker = DagTracker(tmp_path / "state", node_types=bumped)
    r = await tracker.run(wf, inputs={"x": 1})
    tracker.close()
    assert (r.executed, r.cached) == (1, 0)


async def test_unknown_node_type_names_it_and_what_is_installed(tracker: DagTracker) -> None:
    wf = Workflow("u", nodes=[Node.operator("a", "no.such.type")])
    with pytest.raises(NotFoundError) as info:
        tracker.prepare(wf)
    message = str(info.value)
    assert "no.such.type" in message and "math.add" in message and "counted" in message


async def test_metadata_only_type_fails_the_node_naming_it(tracker: DagTracker) -> None:
    result = await tracker.run(Workflow("m", nodes=[Node.operator("a", "metadata.only")]))
    assert result.state == "failed"
    assert "metadata.only" in result.nodes["a"].error and "no implementation" in result.nodes["a"].error


async def test_a_value_not_matching_its_port_type_fails_the_node(tracker: DagTracker) -> None:
    wf = Workflow(
        "t",
        nodes=[Node.input_node("x", "any"), Node.operator("c", "counted", inputs={"x": "integer"}, outputs={"y": "integer"})],
        edges=[Edge.data("x", "value", "c", "x")],
    )
    result = await tracker.run(wf, inputs={"x": "not a number"})
    assert result.state == "failed"
    error = result.nodes["c"].error
    assert "expects integer" in error and "got str" in error
    # an input node checks its own type too
    typed = dag_nodes.chain(1)
    result = await tracker.run(typed, inputs={"x": 1.5})
    assert result.state == "failed" and "expects integer" in result.nodes["x"].error


@pytest.mark.parametrize(
    ("returns", "fragment"),
    [
        ({"y": "text"}, "expects integer"),
        ({}, "missing y"),
        ({"y": 1, "z": 2}, "unknown z"),
        ([1, 2], "not a mapping"),
    ],
)
async def test_wrong_outputs_fail_the_node(tracker: DagTracker, returns, fragment) -> None:
    wf = Workflow("w", nodes=[Node.operator("w", "wrong", outputs={"y": "integer"}, config={"returns": returns})])
    result = await tracker.run(wf)
    assert result.state == "failed"
    assert fragment in result.nodes["w"].error


async def test_an_implementation_that_raises_keeps_its_traceback(tracker: DagTracker, tmp_path: Path) -> None:
    wf = Workflow("b", nodes=[Node.operator("b", "boom", outputs={"y": "integer"})])
    result = await tracker.run(wf)
    assert result.state == "failed"
    status = result.nodes["b"]
    assert status.state == "failed" and "ValueError: boom on attempt 1" in status.error
    assert "Traceback" in status.traceback and "dag_nodes.py" in status.traceback
    assert "node 'b' failed" in result.error


async def test_retries_per_policy_then_succeed(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "tries.log"
    policy = NodePolicy(retries=2, backoff="exponential", retry_delay=0.001, retry_jitter=0.5)
    wf = Workflow("r", nodes=[Node.operator("b", "boom", outputs={"y": "integer"},
                                             config={"log": str(log), "succeed_on": 3}, policy=policy)])
    result = await tracker.run(wf)
    assert result.ok, result.error
    assert lines(log) == ["b:1", "b:2", "b:3"]
    assert result.nodes["b"].attempts == 3


async def test_retries_exhausted_and_error_filter(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "tries.log"
    wf = Workflow("r", nodes=[Node.operator("b", "boom", outputs={"y": "integer"}, config={"log": str(log)},
                                             policy=NodePolicy(retries=1, retry_delay=0))])
    result = await tracker.run(wf)
    assert result.state == "failed" and lines(log) == ["b:1", "b:2"]
    log.unlink()
    only_timeouts = NodePolicy(retries=4, retry_delay=0, retry_on=("timeout",))
    wf = Workflow("r", nodes=[Node.operator("b", "boom", outputs={"y": "integer"}, config={"log": str(log)},
                                             policy=only_timeouts)])
    result = await tracker.run(wf)
    assert result.state == "failed" and lines(log) == ["b:1"]  # a ValueError is not retried
    log.unlink()
    hang = Node.operator("h", "hang", config={"log": str(log)},
                         policy=NodePolicy(retries=1, retry_delay=0, timeout=0.05, retry_on=("dag.node",)))
    result = await tracker.run(Workflow("h", nodes=[hang]))
    # dag.node selects the code dag.node.timeout: timed out twice, each attempt cancelled
    assert result.state == "failed" and lines(log) == ["start h", "end h"] * 2
    assert result.nodes["h"].attempts == 2


async def test_retry_on_selects_by_category_code_and_code_prefix() -> None:
    timeout = OperationTimeoutError("late", code="dag.node.timeout")
    assert retried(NodePolicy(retry_on=("timeout",)), timeout)
    assert retried(NodePolicy(retry_on=("dag.node.timeout",)), timeout)
    assert retried(NodePolicy(retry_on=("dag",)), timeout)
    assert not retried(NodePolicy(retry_on=("dag.no",)), timeout)
    assert not retried(NodePolicy(retry_on=("validation",)), timeout)
    assert retried(NodePolicy(), ValueError("any error"))
    assert not retried(NodePolicy(retry_on=("timeout",)), ValueError("no code, no category"))


async def test_a_hanging_node_times_out(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "hang.log"
    wf = Workflow("h", nodes=[Node.operator("h", "hang", config={"log": str(log)}, policy=NodePolicy(timeout=0.05))])
    result = await tracker.run(wf)
    assert result.state == "failed"
    assert "timed out after 0.05 s" in result.nodes["h"].error
    assert lines(log) == ["start h", "end h"]  # cancelled, not orphaned


async def test_fallback_value_and_fallback_node(tracker: DagTracker) -> None:
    wf = (
        WorkflowBuilder("f")
        .input("x", "integer")
        .operator("v", "boom", outputs={"y": "integer"})
        .fallback(value={"y": 42})
        .operator("n", "boom", inputs={"x": "integer"}, outputs={"y": "integer"})
        .fallback("stand_in")
        .connect("x.value", "n.x")
        # the stand-in also runs as a node of its own (x + 1); in n's place it sees n's inputs
        .operator("stand_in", "counted", inputs={"x": "integer"}, outputs={"y": "integer"})
        .connect("x.value", "stand_in.x")
        .output("out_v", "integer").connect("v.y", "out_v.value")
        .output("out_n", "integer").connect("n.y", "out_n.value")
        .output("out_s", "integer").connect("stand_in.y", "out_s.value")
        .build()
    )
    result = await tracker.run(wf, inputs={"x": 10})
    assert result.ok, result.error
    assert result.outputs == {"out_v": 42, "out_n": 11, "out_s": 11}
    assert "fallback after ValueError" in result.nodes["v"].reason
    assert "fallback after ValueError" in result.nodes["n"].reason


async def test_a_fallback_value_leaves_unnamed_outputs_null_and_a_failing_stand_in_fails_the_node(
    tracker: DagTracker,
) -> None:
    wf = (
        WorkflowBuilder("f2")
        .operator("v", "boom", outputs={"y": "any", "z": "any"})
        .fallback(value={"y": 1})
        .output("out_z", "any").connect("v.z", "out_z.value")
        .build()
    )
    result = await tracker.run(wf)
    assert result.ok and result.outputs == {"out_z": None}
    failing = Workflow("f3", nodes=[
        Node.operator("a", "boom", outputs={"y": "integer"}, policy=NodePolicy(fallback="b")),
        Node.operator("b", "boom", outputs={"y": "integer"}, policy=NodePolicy(optional=True)),
    ])
    result = await tracker.run(failing)
    assert result.state == "failed" and result.nodes["a"].state == "failed"
    assert "ValueError" in result.nodes["a"].error and result.nodes["b"].state == "skipped"


async def test_optional_node_is_skipped_and_dependents_see_its_default(tracker: DagTracker) -> None:
    wf = Workflow(
        "o",
        nodes=[
            Node.operator("b", "boom", outputs={"y": "integer"}, policy=NodePolicy(optional=True)),
            # c's input port default is what it sees in place of the failed optional node's output
            Node.operator("c", "counted", inputs=[Port("x", "integer", default=5)], outputs={"y": "integer"}),
            Node.output_node("out", "integer"),
        ],
        edges=[Edge.data("b", "y", "c", "x"), Edge.data("c", "y", "out", "value")],
    )
    result = await tracker.run(wf)
    assert result.ok, result.error
    assert result.outputs == {"out": 6}
    assert result.nodes["b"].state == "skipped" and "optional node failed" in result.nodes["b"].reason


async def test_continue_mode_runs_independent_nodes_then_fails(tmp_path: Path, registry) -> None:
    log = tmp_path / "c.log"
    tracker = DagTracker(tmp_path / "s", node_types=registry, settings=TrackerSettings(fail_fast=False))
    wf = Workflow(
        "k",
        nodes=[
            Node.operator("b", "boom", outputs={"y": "integer"}),
            Node.operator("after", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}, config={"log": str(log)}),
            Node.operator("free", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}, config={"log": str(log)}),
        ],
        edges=[Edge.data("b", "y", "after", "x")],
    )
    wf.replace_node(Node.operator("free", "counted", inputs=[Port("x", "integer", required=False)],
                                  outputs={"y": "integer"}, config={"log": str(log)}))
    result = await tracker.run(wf)
    tracker.close()
    assert result.state == "failed" and "1 node(s) failed: b" in result.error
    assert lines(log) == ["free"]
    assert result.nodes["after"].state == "cancelled"


async def test_branch_merge_join_parallel(tracker: DagTracker) -> None:
    wf = (
        WorkflowBuilder("route")
        .input("n", "integer")
        .branch("route")
        .connect("n", "route")
        .operator("small", "counted", inputs={"x": "integer"}, outputs={"y": "integer"})
        .operator("big", "double", inputs={"x": "integer"}, outputs={"y": "integer"})
        .when("route.out", "small.x", "n.value < 10")
        .when("route.out", "big.x", "n.value >= 10")
        .merge("done")
        .connect("small.y", "done")
        .connect("big.y", "done")
        .output("result", "integer")
        .connect_from("done")
        .build(node_types={"counted", "double"})
    )
    low = await tracker.run(wf, inputs={"n": 3})
    assert low.ok and low.outputs == {"result": 4}
    assert low.nodes["big"].state == "skipped" and "condition" in low.nodes["big"].reason
    high = await tracker.run(wf, inputs={"n": 30})
    assert high.ok and high.outputs == {"result": 60}
    assert high.nodes["small"].state == "skipped"

    fan = Workflow(
        "fan",
        nodes=[
            Node.input_node("n", "integer"),
            Node.control("split", "parallel"),
            Node.operator("a", "double", inputs={"x": "integer"}, outputs={"y": "integer"}),
            Node.operator("b", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}),
            Node.control("all", "join"),
            Node.output_node("out", "list[any]"),
        ],
        edges=[
            Edge.data("n", "value", "split", "in"),
            Edge.data("split", "out", "a", "x"),
            Edge.data("split", "out", "b", "x"),
            Edge.data("a", "y", "all", "in", priority=1),
            Edge.data("b", "y", "all", "in"),
            Edge.data("all", "out", "out", "value"),
        ],
    )
    result = await tracker.run(fan, inputs={"n": 5})
    assert result.ok and result.outputs == {"out": [10, 6]}


async def test_priority_orders_ready_nodes(tmp_path: Path, registry) -> None:
    log = tmp_path / "p.log"
    tracker = DagTracker(tmp_path / "s", node_types=registry, settings=TrackerSettings(max_concurrency=1))
    nodes = [
        Node.operator(f"n{p}", "counted", inputs=[Port("x", "integer", required=False)], outputs={"y": "integer"},
                      config={"log": str(log), "i": p}, metadata={"priority": p})
        for p in (1, 5, 3, 4, 2)
    ]
    result = await tracker.run(Workflow("prio", nodes=nodes))
    tracker.close()
    assert result.ok
    assert lines(log) == ["n5", "n4", "n3", "n2", "n1"]


async def test_concurrency_limits_global_and_per_type(tmp_path: Path, registry) -> None:
    def fan(n: int) -> Workflow:
        return Workflow("fan", nodes=[
            Node.operator(f"d{i}", "double", inputs=[Port("x", "integer", required=False)], outputs={"y": "integer"},
                          config={"sleep": 0.01, "i": i})
            for i in range(n)
        ])

    for settings, expected in ((TrackerSettings(max_concurrency=3), 3),
                               (TrackerSettings(type_limits={"double": 2}), 2)):
        dag_nodes.AsyncDouble.peak = 0
        tracker = DagTracker(tmp_path / f"s{expected}", node_types=registry, settings=settings)
        result = await tracker.run(fan(12))
        tracker.close()
        assert result.ok and result.executed == 12
        assert dag_nodes.AsyncDouble.peak == expected


async def test_thread_and_process_executors(tracker: DagTracker) -> None:
    import os

    wf = Workflow(
        "ex",
        nodes=[
            Node.input_node("x", "integer"),
            Node.operator("t", "blocking", inputs={"x": "integer"}, outputs={"y": "integer"}),
            Node.operator("p", "square", inputs={"x": "integer"}, outputs={"y": "integer", "pid": "integer"}),
            Node.output_node("ty", "integer"),
            Node.output_node("py", "integer"),
            Node.output_node("pid", "integer"),
        ],
        edges=[
            Edge.data("x", "value", "t", "x"),
            Edge.data("x", "value", "p", "x"),
            Edge.data("t", "y", "ty", "value"),
            Edge.data("p", "y", "py", "value"),
            Edge.data("p", "pid", "pid", "value"),
        ],
    )
    result = await tracker.run(wf, inputs={"x": 7})
    await tracker.executors["process"].aclose()
    assert result.ok, result.error
    assert result.outputs["ty"] == 107 and result.outputs["py"] == 49
    assert result.outputs["pid"] != os.getpid()


async def test_an_instrument_streams_chunks(tracker: DagTracker) -> None:
    wf = (
        WorkflowBuilder("talk")
        .input("prompt", "text")
        .instrument("talk", "talker", inputs={"prompt": "text"}, outputs={"text": "text", "count": "integer"})
        .connect_from("prompt")
        .output("said", "text")
        .connect_from("talk.text")
        .build(node_types={"talker"})
    )
    result = await tracker.run(wf, inputs={"prompt": "hello  there world"})
    assert result.ok and result.outputs == {"said": "hello there world"}


async def test_large_values_go_to_the_artifact_store(tracker: DagTracker) -> None:
    wf = dag_nodes.chain(0)
    wf2 = Workflow("big", nodes=[Node.input_node("x", "text"), Node.output_node("y", "text")],
                   edges=[Edge.data("x", "value", "y", "value")])
    big = "x" * 100_000
    result = await tracker.run(wf2, inputs={"x": big})
    assert result.ok and result.outputs == {"y": big}
    digest = result.nodes["x"].digests["value"]
    assert tracker.store.exists(digest)
    assert wf.name == "chain"


async def test_bad_inputs_are_refused_before_running(tracker: DagTracker) -> None:
    with pytest.raises(ValidationError, match="not an input node"):
        tracker.prepare(dag_nodes.chain(1), inputs={"c0": 1})


async def test_port_defaults_are_part_of_the_memo_key(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    nodes = [
        Node.operator(name, "counted", inputs=[Port("x", "integer", required=False, default=default)],
                      outputs={"y": "integer"}, config={"log": str(log)})
        for name, default in (("a", 1), ("b", 2), ("c", 1))
    ]
    result = await tracker.run(Workflow("defaults", nodes=nodes))
    assert result.ok and (result.executed, result.cached) == (2, 1)
    assert sorted(lines(log)) == ["a", "b"] or sorted(lines(log)) == ["b", "c"]


async def test_an_executor_hint_in_metadata_overrides_the_implementations(tracker: DagTracker) -> None:
    import os

    def square(hint: object) -> Workflow:
        return (
            WorkflowBuilder("hint")
            .input("x", "integer")
            .operator("p", "square", inputs={"x": "integer"}, outputs={"y": "integer", "pid": "integer"},
                      metadata={"executor": hint})
            .connect("x.value", "p.x")
            .output("pid", "integer").connect("p.pid", "pid.value")
            .build()
        )

    result = await tracker.run(square("thread"), inputs={"x": 9})  # a process node run on a thread
    assert result.ok, result.error
    assert result.outputs["pid"] == os.getpid()
    result = await tracker.run(square("gpu"), inputs={"x": 10})
    assert result.state == "failed"
    assert "metadata['executor'] must name an executor" in result.nodes["p"].error
