"""Steering a run: pause, resume, cancel (nothing left running), retry or skip a node, provide input."""

from __future__ import annotations

from pathlib import Path

import anyio
import dag_nodes
import pytest
from dag_nodes import lines

from symphony.commons.errors import ConflictError
from symphony_dag_tracker import DagTracker, TrackerSettings
from symphony_workflow import Edge, Node, NodePolicy, Port, Workflow

pytestmark = pytest.mark.anyio


async def _until(predicate, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


def _hangers(n: int, log: Path) -> Workflow:
    return Workflow("hang", nodes=[Node.operator(f"h{i}", "hang", config={"log": str(log), "i": i}) for i in range(n)])


async def test_cancel_cancels_running_nodes_and_leaves_none_running(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "h.log"
    handle = tracker.prepare(_hangers(5, log))
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: len(lines(log)) == 5)
        handle.cancel("user pressed ctrl-c")
    result = handle.result
    assert result is not None and result.state == "cancelled"
    started = sorted(x for x in lines(log) if x.startswith("start"))
    ended = sorted(x for x in lines(log) if x.startswith("end"))
    assert len(started) == 5 and [e.replace("end", "start") for e in ended] == started
    assert all(s.state == "cancelled" for s in result.nodes.values())
    assert tracker.run_record(handle.id).state == "cancelled"


async def test_cancelling_the_callers_scope_cancels_the_run(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "h.log"
    handle = tracker.prepare(_hangers(2, log))
    with anyio.move_on_after(0.2):
        await handle.run()
    assert handle.execution.state.value == "cancelled"
    assert len([x for x in lines(log) if x.startswith("end")]) == 2
    assert tracker.run_record(handle.id).state == "cancelled"


async def test_process_nodes_are_killed_on_cancel(tracker: DagTracker, tmp_path: Path) -> None:
    import os

    log = tmp_path / "pids.log"
    wf = Workflow("p", nodes=[Node.operator("s", "slow.process", config={"log": str(log)})])
    handle = tracker.prepare(wf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: bool(lines(log)), timeout=60)
        handle.cancel()
    pid = int(lines(log)[0])

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    await _until(lambda: not alive())
    await tracker.executors["process"].aclose()


async def test_pause_lets_running_nodes_finish_and_starts_nothing(tmp_path: Path, registry) -> None:
    log = tmp_path / "d.log"
    tracker = DagTracker(tmp_path / "s", node_types=registry, settings=TrackerSettings(max_concurrency=1))
    wf = Workflow("p", nodes=[
        Node.operator(f"d{i}", "double", inputs=[Port("x", "integer", required=False)], outputs={"y": "integer"},
                      config={"log": str(log), "sleep": 0.05, "i": i})
        for i in range(4)
    ])
    handle = tracker.prepare(wf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: len(lines(log)) == 1)
        handle.pause()
        await anyio.sleep(0.2)
        assert len(lines(log)) == 1  # the running one finished, nothing new started
        assert handle.node_status("d0").state == "completed"
        handle.resume()
    assert handle.result is not None and handle.result.ok
    assert len(lines(log)) == 4
    tracker.close()


async def test_retry_and_skip_a_failed_node(tmp_path: Path, registry) -> None:
    log = tmp_path / "b.log"
    tracker = DagTracker(tmp_path / "s", node_types=registry, settings=TrackerSettings(fail_fast=False, wait_on_failure=True))
    wf = Workflow(
        "r",
        nodes=[
            Node.operator("b", "boom", outputs={"y": "integer"}, config={"log": str(log), "succeed_on": 2}),
            Node.operator("c", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}),
            Node.output_node("out", "integer"),
            Node.operator("b2", "boom", outputs={"y": "integer"}, config={"i": 2}),
            Node.operator("w", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}),
        ],
        edges=[Edge.data("b", "y", "c", "x"), Edge.data("c", "y", "out", "value"), Edge.data("b2", "y", "w", "x")],
    )
    handle = tracker.prepare(wf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: handle.node_status("b").state == "failed")
        assert handle.node_status("c").state == "pending"  # its dependent waits
        handle.retry_node("b")  # attempt 2 succeeds
        await _until(lambda: handle.node_status("c").state == "completed")
        handle.skip_node("w", "not needed")  # pending: it will never run
        handle.skip_node("b2")
    result = handle.result
    assert result is not None and result.ok, result and result.error
    assert result.outputs == {"out": 3}
    assert lines(log) == ["b:1", "b:2"]
    assert result.nodes["w"].state == "skipped" and result.nodes["w"].reason == "not needed"
    tracker.close()


async def test_skipping_a_failed_node_skips_its_dependents(tmp_path: Path, registry) -> None:
    tracker = DagTracker(tmp_path / "s", node_types=registry, settings=TrackerSettings(fail_fast=False, wait_on_failure=True))
    wf = Workflow(
        "s",
        nodes=[
            Node.operator("b", "boom", outputs={"y": "integer"}),
            Node.operator("w", "hang"),
            Node.operator("c", "counted", inputs={"x": "integer"}, outputs={"y": "integer"}),
        ],
        edges=[Edge.data("b", "y", "c", "x")],
    )
    handle = tracker.prepare(wf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: handle.node_status("b").state == "failed")
        handle.skip_node("b")
        await _until(lambda: handle.node_status("c").state == "skipped")
        handle.cancel()
    result = handle.result
    assert result is not None
    assert result.nodes["c"].state == "skipped" and "'b' was skipped" in result.nodes["c"].reason
    tracker.close()


async def test_a_run_waits_for_input_and_continues_when_given(tracker: DagTracker) -> None:
    handle = tracker.prepare(dag_nodes.chain(2))
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: handle.execution.state.value == "waiting_for_input")
        assert "input 'x'" in (handle.execution.prompt or "")
        with pytest.raises(ConflictError):
            handle.provide_input(1, node_id="c0")
        handle.provide_input(40, node_id="x")
    assert handle.result is not None and handle.result.outputs == {"y": 42}


async def test_a_run_cannot_be_run_twice(tracker: DagTracker) -> None:
    handle = tracker.prepare(dag_nodes.chain(1))
    handle.inputs["x"] = 1
    await handle.run()
    with pytest.raises(ConflictError):
        await handle.run()


async def test_a_run_paused_when_its_last_node_finishes_completes_on_resume(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    wf = Workflow("one", nodes=[Node.operator("d", "double", inputs=[Port("x", "integer", required=False)],
                                              outputs={"y": "integer"}, config={"log": str(log), "sleep": 0.05})])
    handle = tracker.prepare(wf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: bool(lines(log)))
        handle.pause()
        await _until(lambda: handle.node_status("d").state == "completed")
        await anyio.sleep(0.05)
        assert handle.execution.state.value == "paused"
        handle.resume()
    assert handle.result is not None and handle.result.ok


async def test_a_retry_waits_while_the_run_is_paused(tracker: DagTracker, tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    policy = NodePolicy(retries=1, backoff="constant", retry_delay=0.05)
    wf = Workflow("r", nodes=[Node.operator("b", "boom", outputs={"y": "integer"},
                                             config={"log": str(log), "succeed_on": 2}, policy=policy)])
    handle = tracker.prepare(wf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(handle.run)
        await _until(lambda: lines(log) == ["b:1"])
        handle.pause()
        await anyio.sleep(0.2)
        assert lines(log) == ["b:1"]  # the second attempt waits for resume
        handle.resume()
    assert handle.result is not None and handle.result.ok and lines(log) == ["b:1", "b:2"]


async def test_a_process_timeout_fails_the_other_nodes_of_the_pool_instead_of_hanging(tmp_path: Path, registry) -> None:
    tracker = DagTracker(tmp_path / "s", node_types=registry, settings=TrackerSettings(fail_fast=False))
    wf = Workflow("pp", nodes=[
        Node.operator("p1", "slow.process", config={"i": 1}, policy=NodePolicy(timeout=3)),
        Node.operator("p2", "slow.process", config={"i": 2}),
    ])
    with anyio.fail_after(60):
        result = await tracker.run(wf)
    await tracker.aclose()
    assert result.state == "failed"
    assert "timed out" in result.nodes["p1"].error
    assert "worker pool was stopped" in result.nodes["p2"].error
