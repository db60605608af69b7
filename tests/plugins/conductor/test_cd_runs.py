"""Runs through the conductor: in process, events, steering, and the bus API (in process and
through a real client link over memory://) -- real kernel, real DAG tracker and store."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from symphony import Kernel
from symphony.bus import Message
from symphony.commons.errors import ConflictError, NotFoundError, SymphonyError, ValidationError
from symphony.hookspecs import hookimpl
from symphony.plugins.manifest import parse_manifest
from symphony_conductor import Conductor, RunRequest
from symphony_sdk import NodeImplementation
from symphony_sdk.testing import connect_test_client

from .conftest import README_REPORT, TEXT_REPORT

pytestmark = pytest.mark.anyio

DOCS = {"a/README.md": "# Alpha\n\nWords about plugins.\n", "b/README.md": "# Beta\n## Use\nMore words.\n"}


async def _events(kernel: Kernel, run_id: str, sub: Any) -> list[Message]:
    seen: list[Message] = []
    with anyio.fail_after(30):
        while True:
            msg = await sub.receive()
            if msg.payload.get("run_id") == run_id:
                seen.append(msg)
                if msg.type == "run.finished":
                    return seen


async def test_a_run_completes_with_outputs_and_publishes_run_events(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    plan = conductor.prepare(RunRequest(workflow=str(README_REPORT), inputs={"readmes": json.dumps(DOCS)}))
    with kernel.bus.subscribe("run.#", buffer=10_000) as sub:
        run = await conductor.submit(plan)
        events = await _events(kernel, run.id, sub)
    assert run.state == "completed", run.error
    assert run.outputs["report"]["value"].startswith("# 2 documents")
    assert run.outputs["report"]["digest"].startswith("blake3:")
    types = [m.type for m in events]
    assert types[0] == "run.started" and types[-1] == "run.finished"
    done = {m.payload["node"] for m in events if m.type == "run.node" and m.payload["state"] == "completed"}
    assert done == set(plan.workflow.nodes)
    finished = events[-1].payload
    assert finished["state"] == "completed" and finished["progress"]["percent"] == 100.0
    assert set(finished["outputs"]) == {"report", "words"}


async def test_the_same_run_again_takes_every_operator_from_the_memo(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    request = RunRequest(workflow=str(README_REPORT), inputs={"readmes": json.dumps(DOCS)})
    first = await conductor.run(request)
    second = await conductor.run(request)
    assert first.state == second.state == "completed"
    rows = second.node_rows()
    operators = {n for n, r in rows.items() if r["type"] not in ("input", "output")}
    assert operators and all(rows[n]["cached"] for n in operators)
    assert not any(r["cached"] for r in first.node_rows().values())
    assert second.outputs["report"]["value"] == first.outputs["report"]["value"]


async def test_a_run_that_fails_names_the_node_and_error(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    run = await conductor.run(RunRequest(workflow=str(README_REPORT), inputs={"readmes": '{"a.md": 3}'}))
    assert run.state == "failed"
    assert run.error is not None and "prose" in run.error
    assert run.node_rows()["prose"]["state"] == "failed"


async def test_runs_are_listed_and_their_logs_kept(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    run = await conductor.run(RunRequest(workflow=str(TEXT_REPORT), inputs={"document": "a b a"}))
    listed = conductor.list_runs()
    assert listed[0]["run_id"] == run.id and listed[0]["state"] == "completed"
    assert conductor.list_runs(state="failed") == []
    events = [(e["node"], e["event"]) for e in conductor.logs(run.id)]
    assert ("stats", "completed") in events
    with pytest.raises(NotFoundError):
        conductor.logs("no-such-run")


async def test_steering_a_finished_run_is_refused(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    run = await conductor.run(RunRequest(workflow=str(TEXT_REPORT), inputs={"document": "x"}))
    with pytest.raises(ConflictError) as info:
        await conductor.control(run.id, "pause")
    assert info.value.code == "conductor.run_finished"


async def test_the_bus_api_in_process(kernel: Kernel) -> None:
    reply = await kernel.bus.request(
        "run.submit", {"workflow": str(TEXT_REPORT), "inputs": {"document": "one two two"}}, timeout=30
    )
    run_id = reply.payload["run_id"]
    conductor: Conductor = await kernel.aservice("conductor")
    await conductor.wait(run_id)
    status = (await kernel.bus.request("run.status", {"run_id": run_id}, timeout=10)).payload
    assert status["state"] == "completed" and status["nodes"]["stats"]["state"] == "completed"
    listing = (await kernel.bus.request("run.list", {}, timeout=10)).payload
    assert run_id in [r["run_id"] for r in listing]
    with pytest.raises(ValidationError) as bad:
        await kernel.bus.request("run.control", {"run_id": run_id, "command": "explode"}, timeout=10)
    assert bad.value.code == "conductor.unknown_command"


async def test_the_bus_api_through_a_client_link(kernel: Kernel) -> None:
    async with connect_test_client(kernel) as client:
        async with client.subscribe("run.#") as events:
            reply = await client.request(
                "run.submit", {"workflow": str(TEXT_REPORT), "inputs": {"document": "a b"}}, timeout=30
            )
            run_id = reply.payload["run_id"]
            with anyio.fail_after(30):
                async for msg in events:
                    if msg.type == "run.finished" and msg.payload["run_id"] == run_id:
                        assert msg.payload["state"] == "completed"
                        break
        status = (await client.request("run.status", {"run_id": run_id}, timeout=10)).payload
        assert status["outputs"]["report"]["value"]["words"] == 2
        with pytest.raises(NotFoundError) as unknown:
            await client.request(
                "run.submit", {"workflow": str(TEXT_REPORT).replace("text-", "no-")}, timeout=10
            )
        assert unknown.value.code.startswith("fs.") or "no-report" in unknown.value.message
        with pytest.raises(NotFoundError) as missing_type:
            doc = json.loads(TEXT_REPORT.read_text("utf-8"))
            doc["workflow"]["nodes"][1]["type"] = "nope.op"
            await client.request("run.submit", {"workflow": doc, "inputs": {"document": "x"}}, timeout=10)
        assert missing_type.value.code == "conductor.unknown_node_type"
        assert "textstats.analyze" in missing_type.value.message
        with pytest.raises(NotFoundError):
            await client.request("run.status", {"run_id": "nope"}, timeout=10)


# --- steering a live run over the bus -----------------------------------------------------------


class _Wait(NodeImplementation):
    """``test.wait``: waits until the test opens its gate, then passes the text on."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.started: list[str] = []

    async def execute(self, inputs: Any, context: Any) -> dict[str, Any]:
        self.started.append(context.node_id)
        await self.gate.wait()
        return {"text": f"{inputs['text']}+{context.node_id}"}


class _Plugin:
    """A test plugin registering ``impl`` as the node type ``test.wait``."""

    def __init__(self, impl: Any) -> None:
        self.impl = impl

    @hookimpl
    def symphony_register_node_types(self, registry: Any) -> None:
        registry.add(
            "test.wait", kind="operator", inputs={"text": "text"}, outputs={"text": "text"}, implementation=self.impl
        )


_WAIT_MANIFEST = parse_manifest(
    {
        "plugin": {
            "id": "test-wait",
            "version": "0.1.0",
            "kind": "operator",
            "api": ">=0.1,<0.2",
            "summary": "waits for the test",
            "provides": ["node-type:test.wait"],
            "requires": ["symphony-workflow"],
        }
    }
)


def _chain(*ids: str) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "document", "kind": "input", "type": "input", "outputs": [{"name": "value", "type": "text"}]}
    ]
    edges = []
    previous, port = "document", "value"
    for node_id in ids:
        nodes.append(
            {
                "id": node_id,
                "kind": "operator",
                "type": "test.wait",
                "inputs": [{"name": "text", "type": "text"}],
                "outputs": [{"name": "text", "type": "text"}],
            }
        )
        edges.append({"source": previous, "source_port": port, "target": node_id, "target_port": "text"})
        previous, port = node_id, "text"
    nodes.append(
        {"id": "result", "kind": "output", "type": "output", "inputs": [{"name": "value", "type": "text"}]}
    )
    edges.append({"source": previous, "source_port": port, "target": "result", "target_port": "value"})
    workflow = {"id": "0b9e3c1e-5f4a-4d7e-8f0a-3c2d1b0a9e8f", "name": "Chain", "nodes": nodes, "edges": edges}
    return {"schema_version": "1.0", "workflow": workflow}


async def _until(predicate: Any) -> None:
    with anyio.fail_after(20):
        while not predicate():
            await anyio.sleep(0.01)


async def test_pause_resume_and_cancel_over_a_client_link(store_env: Any, templates_env: Any) -> None:
    plugin = _Plugin(_Wait())
    async with (
        Kernel.open(env="test", plugins=[(_WAIT_MANIFEST, plugin)]) as kernel,
        connect_test_client(kernel) as client,
    ):
        reply = await client.request(
            "run.submit", {"workflow": _chain("one", "two"), "inputs": {"document": "go"}}, timeout=30
        )
        run_id = reply.payload["run_id"]
        await _until(lambda: plugin.impl.started == ["one"])
        paused = (
            await client.request("run.control", {"run_id": run_id, "command": "pause"}, timeout=10)
        ).payload
        assert paused["state"] == "paused"
        plugin.impl.gate.set()  # `one` finishes; nothing new starts while paused
        status: dict[str, Any] = {}

        def one_done() -> bool:
            nonlocal status
            conductor = kernel.service("conductor")
            status = conductor.status(run_id)
            return bool(status["nodes"]["one"]["state"] == "completed")

        await _until(one_done)
        await anyio.sleep(0.1)
        assert plugin.impl.started == ["one"] and status["nodes"]["two"]["state"] == "pending"
        with pytest.raises(SymphonyError) as again:
            await client.request("run.control", {"run_id": run_id, "command": "pause"}, timeout=10)
        assert "paused" in again.value.message
        await client.request("run.control", {"run_id": run_id, "command": "resume"}, timeout=10)
        run = await kernel.service("conductor").wait(run_id)
        assert run.state == "completed" and run.outputs["result"]["value"] == "go+one+two"
        assert plugin.impl.started == ["one", "two"]

        plugin.impl.gate = anyio.Event()
        reply = await client.request(
            "run.submit", {"workflow": _chain("a", "b"), "inputs": {"document": "x"}}, timeout=30
        )
        second = reply.payload["run_id"]
        await _until(lambda: "a" in plugin.impl.started)
        with pytest.raises(SymphonyError):
            await client.request("run.control", {"run_id": second, "command": "skip-node"}, timeout=10)
        skipped = await client.request(
            "run.control", {"run_id": second, "command": "skip-node", "node": "b"}, timeout=10
        )
        assert skipped.payload["nodes"]["b"]["state"] == "skipped"
        cancelled = await client.request(
            "run.control", {"run_id": second, "command": "cancel", "reason": "test"}, timeout=10
        )
        assert cancelled.payload["run_id"] == second
        run = await kernel.service("conductor").wait(second)
        assert run.state == "cancelled" and run.node_rows()["a"]["state"] == "cancelled"


class _Flaky(NodeImplementation):
    """``test.flaky``: fails while ``broken``; otherwise passes the text on (pure: memoized)."""

    pure = True

    def __init__(self) -> None:
        self.broken = True
        self.calls: list[str] = []

    def execute(self, inputs: Any, context: Any) -> dict[str, Any]:
        self.calls.append(context.node_id)
        if self.broken and context.node_id == "two":
            raise RuntimeError("the service is down")
        return {"text": f"{inputs['text']}+{context.node_id}"}


async def test_retry_of_a_failed_run_reruns_the_failed_node_only(store_env: Any, templates_env: Any) -> None:
    plugin = _Plugin(_Flaky())
    async with Kernel.open(env="test", plugins=[(_WAIT_MANIFEST, plugin)]) as kernel:
        conductor: Conductor = await kernel.aservice("conductor")
        failed = await conductor.run(RunRequest(workflow=_chain("one", "two"), inputs={"document": "x"}))
        assert failed.state == "failed" and "the service is down" in (failed.error or "")
        with pytest.raises(NotFoundError):
            await conductor.retry(failed.id, "nope")
        plugin.impl.broken = False
        retried = await conductor.retry(failed.id, "two")
        await retried.done.wait()
        assert retried.id == f"{failed.id}.2" and retried.resumed_from == failed.id
        assert retried.state == "completed" and retried.outputs["result"]["value"] == "x+one+two"
        assert plugin.impl.calls == ["one", "two", "two"]  # `one` came from the memo
        with pytest.raises(ConflictError) as done:
            await conductor.retry(retried.id, "two")
        assert done.value.code == "conductor.retry.not_failed"


async def test_a_run_going_at_kernel_shutdown_is_interrupted_and_resumes(
    store_env: Any, templates_env: Any
) -> None:
    plugin = _Plugin(_Wait())
    async with Kernel.open(env="test", plugins=[(_WAIT_MANIFEST, plugin)]) as kernel:
        conductor: Conductor = await kernel.aservice("conductor")
        run = await conductor.submit(RunRequest(workflow=_chain("one"), inputs={"document": "x"}))
        await _until(lambda: plugin.impl.started == ["one"])
    assert run.done.is_set() and run.interrupted and run.error is None
    plugin.impl.gate.set()
    async with Kernel.open(env="test", plugins=[(_WAIT_MANIFEST, plugin)]) as kernel:
        conductor = await kernel.aservice("conductor")
        assert conductor.status(run.id)["state"] not in ("completed", "failed", "cancelled")
        resumed = await conductor.resume(run.id)
        await resumed.done.wait()
        assert resumed.state == "completed" and resumed.outputs["result"]["value"] == "x+one"
