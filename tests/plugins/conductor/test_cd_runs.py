"""Runs through the conductor: in process, events, steering, and the bus API (in process and
through a real client link over memory://) -- real kernel, real DAG tracker and store."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from symphony import Kernel
from symphony.bus import Message
from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony_conductor import Conductor, RunRequest
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
            await client.request("run.submit", {"workflow": str(TEXT_REPORT).replace("text-", "no-")}, timeout=10)
        assert unknown.value.code.startswith("fs.") or "no-report" in unknown.value.message
        with pytest.raises(NotFoundError) as missing_type:
            doc = json.loads(TEXT_REPORT.read_text("utf-8"))
            doc["workflow"]["nodes"][1]["type"] = "nope.op"
            await client.request("run.submit", {"workflow": doc, "inputs": {"document": "x"}}, timeout=10)
        assert missing_type.value.code == "conductor.unknown_node_type"
        assert "textstats.analyze" in missing_type.value.message
        with pytest.raises(NotFoundError):
            await client.request("run.status", {"run_id": "nope"}, timeout=10)
