"""The execution-state API: state machines, commands as data, progress, events, audit log."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_workflow import Execution, ExecutionEvent, Node, Workflow
from symphony_workflow._audit import AuditEntry, AuditLog, JsonlAuditStorage
from symphony_workflow._errors import InvalidTransitionError
from symphony_workflow._events import CallbackSink, EventHub, EventKind
from symphony_workflow._execution import (
    NODE_TRANSITIONS,
    RUN_TRANSITIONS,
    Cancel,
    NodeRunState,
    Pause,
    RetryNode,
    RunState,
    SkipNode,
    Start,
    command_from_dict,
    command_to_dict,
)


class Clock:
    """A controllable clock: each reading moves one microsecond on; ``advance`` jumps ahead."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def ten_nodes() -> Workflow:
    wf = Workflow("ten")
    for i in range(10):
        wf.add_node(Node.operator(f"n{i}", "op.step" if i % 2 else "op.other"))
    return wf


def run_node(ex: Execution, node_id: str, output: Any = None, clock: Clock | None = None) -> None:
    ex.node_queued(node_id)
    ex.node_started(node_id)
    if clock is not None:
        clock.advance(2.0)
    ex.node_completed(node_id, output)


def test_ten_nodes_three_done_is_thirty_percent() -> None:
    clock = Clock()
    ex = Execution(ten_nodes(), clock=clock)
    assert ex.progress().eta_seconds is None  # nothing measured yet
    ex.start()
    for nid in ("n0", "n1", "n2"):
        run_node(ex, nid, clock=clock)
    p = ex.progress()
    assert p.percent == 30.0 and p.done == 3 and p.total == 10
    assert p.counts["completed"] == 3 and p.counts["pending"] == 7
    assert p.eta_seconds == pytest.approx(7 * 2.0, abs=1e-3)  # every node took two seconds


def test_full_lifecycle_and_history() -> None:
    clock = Clock()
    ex = Execution(ten_nodes(), execution_id="run-1", clock=clock)
    assert ex.state is RunState.PENDING and ex.duration is None
    ex.start()
    for i in range(10):
        run_node(ex, f"n{i}", {"i": i}, clock=clock)
    ex.complete({"ok": True})
    assert ex.state is RunState.COMPLETED and ex.is_terminal and ex.result == {"ok": True}
    runs = [t for t in ex.history() if t.node_id is None]
    assert [(t.source, t.target) for t in runs] == [("pending", "running"), ("running", "completed")]
    node_history = ex.history("n3")
    assert [t.target for t in node_history] == ["queued", "running", "completed"]
    assert all(a.at < b.at for a, b in itertools.pairwise(node_history))
    assert ex.node("n3").output == {"i": 3} and ex.node("n3").duration == pytest.approx(2.0, abs=1e-3)
    assert ex.duration is not None and ex.duration > 0
    with pytest.raises(InvalidTransitionError) as info:
        ex.start()
    assert info.value.context == {"execution": "run-1", "from": "completed", "to": "running"}
    assert "finished" in info.value.message


@pytest.mark.parametrize("state", list(RunState))
def test_workflow_transition_table_is_enforced(state: RunState) -> None:
    assert (not RUN_TRANSITIONS[state]) is state.terminal
    assert RunState.RUNNING not in RUN_TRANSITIONS[RunState.COMPLETED]


def test_pause_lets_running_nodes_finish_but_starts_nothing() -> None:
    ex = Execution(ten_nodes())
    ex.start()
    ex.node_started("n0")
    ex.apply(Pause())
    ex.node_completed("n0")
    with pytest.raises(InvalidTransitionError) as info:
        ex.node_started("n1")
    assert info.value.context["node"] == "n1"
    assert ex.available_commands() == ["resume", "cancel", "skip_node"]
    ex.resume()
    ex.node_started("n1")
    assert ex.node("n1").state is NodeRunState.RUNNING


def test_retry_and_skip() -> None:
    ex = Execution(ten_nodes())
    ex.start()
    ex.node_started("n0")
    ex.node_failed("n0", "boom")
    assert ex.node("n0").error == "boom" and "retry_node" in ex.available_commands()
    with pytest.raises(InvalidTransitionError):
        ex.complete()
    ex.retry_node("n0")
    run = ex.node("n0")
    assert run.state is NodeRunState.PENDING and run.error is None and run.attempts == 1
    ex.node_started("n0")
    assert ex.node("n0").attempts == 2
    ex.node_failed("n0", "again")
    ex.apply(SkipNode("n0", "giving up"))
    assert ex.node("n0").state is NodeRunState.SKIPPED and ex.node("n0").reason == "giving up"
    with pytest.raises(InvalidTransitionError) as info:
        ex.retry_node("n0")
    assert info.value.context["from"] == "skipped"
    with pytest.raises(NotFoundError):
        ex.retry_node("ghost")
    ex.node_skipped("n1", "condition false")
    for i in range(2, 10):
        run_node(ex, f"n{i}")
    ex.complete()
    assert ex.progress().percent == 100.0


def test_illegal_node_transitions_are_rejected_and_change_nothing() -> None:
    ex = Execution(ten_nodes())
    with pytest.raises(InvalidTransitionError):
        ex.node_started("n0")  # not started yet
    ex.start()
    with pytest.raises(InvalidTransitionError) as info:
        ex.node_completed("n0")
    assert info.value.context == {"execution": ex.id, "node": "n0", "from": "pending", "to": "completed"}
    with pytest.raises(InvalidTransitionError):
        ex.node_progress("n0", 10)
    ex.node_started("n0")
    with pytest.raises(ValidationError):
        ex.node_progress("n0", 101)
    ex.node_progress("n0", 40, "reading")
    assert ex.node("n0").progress == 40.0 and ex.node("n0").message == "reading"
    run_before = ex.node("n0")
    with pytest.raises(InvalidTransitionError):
        ex.node_queued("n0")
    assert ex.node("n0") == run_before
    for state in NodeRunState:
        assert (not NODE_TRANSITIONS[state]) is (state.terminal)


def test_cancel_and_fail_cancel_unfinished_nodes() -> None:
    ex = Execution(ten_nodes())
    ex.cancel("not needed")  # a pending execution may be cancelled
    assert ex.state is RunState.CANCELLED
    assert {r.state for r in ex.nodes().values()} == {NodeRunState.CANCELLED}
    ex = Execution(ten_nodes())
    ex.start()
    run_node(ex, "n0")
    ex.node_started("n1")
    ex.fail("disk full")
    states = {nid: r.state for nid, r in ex.nodes().items()}
    assert states["n0"] is NodeRunState.COMPLETED and states["n1"] is NodeRunState.CANCELLED
    assert ex.error == "disk full"
    with pytest.raises(InvalidTransitionError):
        ex.cancel()


def test_waiting_for_input() -> None:
    ex = Execution(ten_nodes())
    ex.start()
    ex.wait_for_input("Which language?", node_id="n0")
    assert ex.state is RunState.WAITING_FOR_INPUT and ex.prompt == "Which language?"
    assert ex.available_commands() == ["cancel", "skip_node", "provide_input"]
    with pytest.raises(InvalidTransitionError):
        ex.resume()
    ex.provide_input("fr")
    assert ex.state is RunState.RUNNING and ex.provided_input == "fr" and ex.prompt is None


def test_commands_are_data() -> None:
    for cmd in (Start(), Pause(), Cancel("why"), RetryNode("n1"), SkipNode("n2", "r")):
        assert command_from_dict(command_to_dict(cmd)) == cmd
    ex = Execution(ten_nodes())
    ex.apply({"command": "start"}, actor="alice")
    assert ex.history()[-1].actor == "alice"
    for bad, code in (
        ({"command": "explode"}, "workflow.command.unknown"),
        ({"command": "retry_node"}, "workflow.command.malformed"),
        ({"command": "pause", "extra": 1}, "workflow.command.malformed"),
        ({"command": "skip_node", "node_id": 3}, "workflow.command.malformed"),
        ([1], "workflow.command.malformed"),
    ):
        with pytest.raises(ValidationError) as info:
            command_from_dict(bad)  # type: ignore[arg-type]
        assert info.value.code == code
    assert ex.can(Pause()) and not ex.can(Start())


def test_sinks_get_every_event_in_order_and_a_failing_sink_is_isolated() -> None:
    seen: list[ExecutionEvent] = []
    errors: list[str] = []

    def explode(event: ExecutionEvent) -> None:
        raise RuntimeError("observer bug")

    ex = Execution(
        ten_nodes(),
        sinks=[CallbackSink(explode), CallbackSink(seen.append)],
        on_sink_error=lambda sink, exc: errors.append(str(exc)),
    )
    ex.start()
    run_node(ex, "n0", 5)
    ex.log("warning", "slow disk", node_id="n0")
    kinds = [e.kind for e in seen]
    assert kinds[:3] == [EventKind.COMMAND, EventKind.STATE_CHANGED, EventKind.STARTED]
    assert EventKind.NODE_COMPLETED in kinds and kinds[-1] is EventKind.LOG
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert ex.sink_errors == len(seen) == len(errors)
    assert ExecutionEvent.from_dict(seen[-1].to_dict()) == seen[-1]
    assert seen[-1].topic == "workflow.log"
    with pytest.raises(ValidationError):
        ex.log("loud", "x")
    with pytest.raises(ValidationError):
        ExecutionEvent.from_dict({"kind": "nope"})


def test_transitions_are_atomic_across_threads() -> None:
    wf = Workflow("many")
    for i in range(200):
        wf.add_node(Node.operator(f"n{i}", "op"))
    ex = Execution(wf)
    ex.start()

    def worker(offset: int) -> None:
        for i in range(offset, 200, 4):
            run_node(ex, f"n{i}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ex.progress().counts["completed"] == 200
    ex.complete()


@pytest.mark.anyio
async def test_event_hub_fans_out_with_filters_and_bounded_buffers() -> None:
    hub = EventHub(history=50)
    ex = Execution(ten_nodes(), sinks=[hub])
    everything = hub.subscribe()
    completions = hub.subscribe(kinds=["node_completed"])
    node_one = hub.subscribe(node_ids=["n1"])
    errors_only = hub.subscribe(kinds=[EventKind.LOG], min_level="error")
    tiny = hub.subscribe(buffer=1)
    ex.start()
    run_node(ex, "n0")
    run_node(ex, "n1")
    ex.log("info", "fine")
    ex.log("error", "bad")
    got = [(await completions.receive()).node_id for _ in range(2)]
    assert got == ["n0", "n1"]
    assert {(await node_one.receive()).node_id for _ in range(4)} == {"n1"}
    assert (await errors_only.receive()).data["message"] == "bad"
    with pytest.raises(anyio.WouldBlock):
        errors_only.receive_nowait()
    assert tiny.delivered == 1 and tiny.dropped > 0
    assert everything.dropped == 0 and everything.delivered == len(hub.history()) == 15
    assert len(hub.history(kinds=["node_completed"])) == 2 and hub.history(node_id="n0")
    late = hub.subscribe(kinds=["started"], replay=True)
    assert (await late.receive()).kind is EventKind.STARTED
    async with hub.subscribe() as sub:
        assert hub.subscribers == 7
    assert hub.subscribers == 6
    completions.close()
    run_node(ex, "n2")
    hub.close()
    count = 0
    async for _ in everything:
        count += 1
    assert count == everything.delivered
    with pytest.raises(ValidationError):
        hub.subscribe()
    assert sub is not None


@pytest.mark.anyio
async def test_subscribers_in_tasks_receive_events_as_they_happen() -> None:
    hub = EventHub()
    ex = Execution(ten_nodes(), sinks=[hub])
    received: list[list[str]] = [[], [], []]

    async def listen(k: int, sub: Any) -> None:
        async for event in sub:
            if event.kind is EventKind.NODE_COMPLETED:
                received[k].append(event.node_id)

    async with anyio.create_task_group() as tg:
        for k in range(3):
            tg.start_soon(listen, k, hub.subscribe())
        await anyio.sleep(0)
        ex.start()
        for i in range(10):
            run_node(ex, f"n{i}")
            await anyio.sleep(0)
        hub.close()
    assert received == [[f"n{i}" for i in range(10)]] * 3


def test_subscribe_argument_errors() -> None:
    hub = EventHub()
    for kwargs in ({"kinds": ["bogus"]}, {"min_level": "loud"}, {"buffer": 0}):
        with pytest.raises(ValidationError):
            hub.subscribe(**kwargs)  # type: ignore[arg-type]


def test_audit_log_records_queries_and_exports(tmp_path: Path) -> None:
    clock = Clock()
    audit = AuditLog(JsonlAuditStorage(tmp_path / "audit" / "log.jsonl"))
    ex = Execution(ten_nodes(), audit=audit, clock=clock)
    ex.apply(Start(), actor="alice")
    run_node(ex, "n0", {"x": 1})
    ex.apply(Pause(), actor="bob")
    other = Execution(ten_nodes(), audit=audit, clock=clock)
    other.start()
    entries = audit.by_execution(ex.id)
    assert entries and all(e.execution_id == ex.id for e in entries)
    commands = audit.query(execution_id=ex.id, types=["command"])
    assert [(e.actor, e.details["command"]) for e in commands] == [("alice", "start"), ("bob", "pause")]
    assert audit.query(types=["node_completed"])[0].details == {"output": {"x": 1}}
    middle = entries[3].at
    assert all(e.at >= middle for e in audit.query(since=middle))
    assert all(e.at < middle for e in audit.query(until=middle))
    assert len(audit.query(limit=2, offset=1)) == 2
    assert audit.query(actor="bob")[0].type == "command"
    assert audit.query(node_id="n0")
    everything = audit.query()
    assert AuditLog.import_json(AuditLog.export_json(everything)) == everything
    assert AuditLog.import_csv(AuditLog.export_csv(everything)) == everything
    reopened = AuditLog(JsonlAuditStorage(tmp_path / "audit" / "log.jsonl"))
    assert reopened.query() == everything


@pytest.mark.anyio
async def test_audit_async_query() -> None:
    audit = AuditLog()
    ex = Execution(ten_nodes(), audit=audit)
    ex.start()
    assert [e.type for e in await audit.aquery(types=["started"])] == ["started"]


def test_audit_bad_input_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    entry = AuditEntry(execution_id="e", workflow_id="w", at=datetime.now(UTC), type="t")
    storage = JsonlAuditStorage(path)
    storage.append(entry)
    with path.open("a") as fh:
        fh.write('{"torn": ')  # a crash mid-write
    assert [e.id for e in storage.entries()] == [entry.id]
    path.write_text("garbage\n" + path.read_text())
    with pytest.raises(ValidationError) as info:
        list(storage.entries())
    assert info.value.context["line"] == 1
    for bad in ("{", "{}", "[1]", '[{"id": 1}]'):
        with pytest.raises(ValidationError):
            AuditLog.import_json(bad)
    with pytest.raises(ValidationError):
        AuditLog.import_csv("a,b\n1,2\n")
    with pytest.raises(ValidationError) as info:
        AuditLog.import_csv(AuditLog.export_csv([entry]).replace(",{}\n", ",{oops\n"))
    assert info.value.context["line"] == 2
    with pytest.raises(ValidationError):
        AuditLog().query(limit=-1)
