"""The correlation table used for requests in flight (by the bus and by remote peers)."""

from __future__ import annotations

import anyio
import pytest

from symphony.bus import Bus, LocalEndpoint, Message
from symphony.bus._correlation import Correlator
from symphony.commons.errors import ConflictError, TransportError

pytestmark = pytest.mark.anyio


async def test_expect_resolve_and_cleanup() -> None:
    table = Correlator()
    req = Message.request("a.b", 1)
    got: list[Message] = []
    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            with table.expect(req, target="peer") as pending:
                got.append(await pending.wait())

        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert req.id in table and len(table) == 1
        entry = table.get(req.id)
        assert entry is not None and (entry.id, entry.type, entry.target, entry.done) == (req.id, "a.b", "peer", False)
        assert table.resolve(req.reply(2))
    assert got[0].payload == 2
    assert len(table) == 0 and table.get(req.id) is None
    assert not table.resolve(req.reply(3))  # nobody waits any more: an orphan
    assert not table.resolve(Message("a.b", None, kind="response"))  # no correlation id at all
    assert table.orphans == 2


async def test_first_answer_wins_and_early_answers_are_kept() -> None:
    table = Correlator()
    req = Message.request("a.b")
    pending = table.open(req)
    assert table.resolve(req.reply("first"))
    assert not table.resolve(req.reply("second"))
    assert (await pending.wait()).payload == "first"  # answered before anyone waited
    assert table.orphans == 1
    with pytest.raises(ConflictError) as info:
        table.open(req)
    assert info.value.code == "bus.duplicate_request_id"
    table.close(req.id)
    table.close(req.id)  # idempotent
    assert "waiting" not in repr(pending) and "Correlator(0 pending" in repr(table)


async def test_expect_cleans_up_on_timeout_and_errors() -> None:
    table = Correlator()
    req = Message.request("a.b")
    with anyio.move_on_after(0.01):
        with table.expect(req) as pending:
            await pending.wait()
    assert len(table) == 0
    with pytest.raises(KeyError):
        with table.expect(req):
            raise KeyError("boom")
    assert len(table) == 0


async def test_fail_all() -> None:
    table = Correlator()
    requests = [Message.request("a.b", i) for i in range(3)]
    pendings = [table.open(r) for r in requests]
    assert table.fail_all(TransportError("connection lost", code="transport.closed")) == 3
    for pending, req in zip(pendings, requests, strict=True):
        reply = await pending.wait()
        assert reply.kind == "error" and reply.correlation_id == req.id
        with pytest.raises(TransportError):
            reply.raise_if_error()
    assert table.fail_all(TransportError("again")) == 0  # already answered


async def test_request_all_reaches_endpoints_too() -> None:
    bus = Bus()
    await bus.endpoints.register(LocalEndpoint("remote", handler=lambda m: "from endpoint"))
    bus.handle("q.#", "remote", priority=1)
    bus.handle("q.#", lambda m: "local")
    replies = await bus.request_all("q.x")
    assert [r.payload for r in replies] == ["from endpoint", "local"]
    assert len(bus.pending) == 0
