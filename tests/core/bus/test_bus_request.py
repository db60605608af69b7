"""Request/response: routing, priorities, default route, errors crossing, timeouts without
leaked waiters, cancellation, route-all and late answers."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from symphony.bus import Bus, JsonCodec, Message, MsgpackCodec
from symphony.commons.errors import (
    ConfigError,
    ConflictError,
    InternalError,
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
    PreValidationError,
    SymphonyError,
    TransportError,
    ValidationError,
)

pytestmark = pytest.mark.anyio


async def test_round_trip_with_async_and_plain_handlers() -> None:
    bus = Bus()

    async def double(msg: Message) -> int:
        await anyio.sleep(0)
        return msg.payload * 2

    bus.handle("math.double", double)
    bus.handle("math.inc", lambda m: m.payload + 1)
    reply = await bus.request("math.double", 21, headers={"trace": "t"})
    assert reply.payload == 42 and reply.kind == "response" and reply.type == "math.double"
    assert (await bus.request("math.inc", 1)).payload == 2
    assert len(bus.pending) == 0


async def test_handler_may_return_a_message() -> None:
    bus = Bus()
    bus.handle("m.reply", lambda m: m.reply({"ok": True}, headers={"served-by": "x"}))
    bus.handle("m.stray", lambda m: Message("m.other", 1, kind="response"))  # wrong correlation id
    bus.handle("m.event", lambda m: Message("m.event", 1))  # not an answer
    reply = await bus.request("m.reply")
    assert reply.payload == {"ok": True} and reply.headers == {"served-by": "x"}
    req = Message.request("m.stray")
    stray = await bus.dispatch(req)
    assert stray.correlation_id == req.id and stray.payload == 1
    with pytest.raises(SymphonyError) as info:  # InternalError (see test_non_symphony_exception...)
        await bus.request("m.event")
    assert info.value.code == "bus.bad_reply"


ERRORS = [
    ValidationError("name is empty", code="user.name.empty", context={"field": "name"}, hint="give a name"),
    PreValidationError("too long", code="user.name.long", context={"max": 10}),
    NotFoundError("no model tiny", code="pool.no_model", context={"model": "tiny"}),
    PermissionDeniedError("not allowed", code="ext.denied", context={"permission": "net"}),
    ConfigError("bad key", code="config.bad", context={"file": "a.toml", "key": "x.y"}),
    ConflictError("taken", code="slot.taken", context={"slot": "s", "holders": ["a", "b"]}),
    TransportError("gone", code="peer.gone"),
    SymphonyError("generic", code="x.generic", context={"nested": {"a": [1, 2]}}),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
@pytest.mark.parametrize("codec", [None, JsonCodec(), MsgpackCodec()], ids=["in-process", "json", "msgpack"])
async def test_errors_cross_with_class_code_message_context(error: SymphonyError, codec: Any) -> None:
    bus = Bus()

    async def failing(msg: Message) -> None:
        raise error

    bus.handle("err.#", failing)
    reply = await bus.dispatch(Message.request("err.x"))
    assert reply.kind == "error"
    if codec is not None:  # as if the answer travelled over a socket
        reply = codec.decode(codec.encode(reply))
    with pytest.raises(SymphonyError) as info:
        reply.raise_if_error()
    got = info.value
    assert type(got) is type(error)
    assert (got.code, got.message, got.context, got.hint) == (
        error.code,
        error.message,
        error.context,
        error.hint,
    )
    if isinstance(error, ValidationError):
        assert got.stage == error.stage  # type: ignore[attr-defined]
    # request() raises the same
    with pytest.raises(type(error)) as again:
        await bus.request("err.x")
    assert again.value.code == error.code


async def test_non_symphony_exception_becomes_internal_error() -> None:
    bus = Bus()

    def broken(msg: Message) -> None:
        raise KeyError("oops")

    bus.handle("bug.#", broken, name="broken-handler")
    reply = await bus.dispatch(Message.request("bug.x"))
    assert reply.payload["category"] == "internal" and reply.payload["code"] == "bus.handler_crashed"
    with pytest.raises(InternalError) as info:
        await bus.request("bug.x")
    assert info.value.code == "bus.handler_crashed"
    assert info.value.context == {"type": "bug.x", "handler": "broken-handler", "exception": "KeyError"}
    counters = bus.metrics.snapshot()["counters"]
    assert counters["requests"] == 2 and counters["errors"] == 2


async def test_no_route() -> None:
    bus = Bus()
    with pytest.raises(NotFoundError) as info:
        await bus.request("nobody.home", 1)
    assert info.value.code == "bus.no_route"
    assert info.value.context["type"] == "nobody.home"
    assert bus.metrics.no_route == 1


async def test_priority_ties_and_default_route() -> None:
    bus = Bus()
    bus.handle("svc.#", lambda m: "catch-all", priority=-5, name="catch-all")
    bus.handle("svc.*.run", lambda m: "first-0", name="first")
    bus.handle("svc.a.run", lambda m: "second-0", name="second")
    high = bus.handle("svc.a.*", lambda m: "high", priority=10)
    assert (await bus.request("svc.a.run")).payload == "high"
    assert bus.unhandle(high) and not bus.unhandle(high)
    assert (await bus.request("svc.a.run")).payload == "first-0"  # tie: registration order
    assert (await bus.request("svc.b.stop")).payload == "catch-all"
    assert [r.name for r in bus.routes("svc.a.run")] == ["first", "second", "catch-all"]
    with pytest.raises(NotFoundError):
        await bus.request("other.x")
    bus.set_default_route(lambda m: f"default for {m.type}")
    assert (await bus.request("other.x")).payload == "default for other.x"
    route = bus.route("other.x")
    assert route is not None and route.name == "default"
    bus.set_default_route(None)
    assert bus.route("other.x") is None


async def test_bad_routes() -> None:
    bus = Bus()
    with pytest.raises(ValidationError):
        bus.handle("a..b", lambda m: None)
    with pytest.raises(ValidationError):
        bus.handle("a", 42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        bus.handle("a", lambda m: None, priority="high")  # type: ignore[arg-type]


async def test_timeout_raises_and_leaks_no_waiter() -> None:
    bus = Bus()
    cancelled: list[bool] = []

    async def slow(msg: Message) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(True)

    bus.handle("slow.#", slow)
    for _ in range(20):
        with pytest.raises(OperationTimeoutError) as info:
            await bus.request("slow.x", timeout=0.001)
        assert info.value.code == "bus.request_timeout"
        assert info.value.context["type"] == "slow.x" and info.value.context["timeout"] == 0.001
    assert len(bus.pending) == 0
    assert cancelled == [True] * 20  # the handler was cancelled each time
    snap = bus.metrics.snapshot()
    assert snap["counters"]["timeouts"] == 20 and snap["pending"] == 0


async def test_default_timeout_comes_from_config() -> None:
    bus = Bus(config={"default_timeout": 0.001})
    bus.handle("slow", lambda m: anyio.sleep_forever())
    with pytest.raises(OperationTimeoutError) as info:
        await bus.request("slow")
    assert info.value.context["timeout"] == 0.001


async def test_cancelled_requester_leaks_no_waiter() -> None:
    bus = Bus()
    started = anyio.Event()

    async def slow(msg: Message) -> None:
        started.set()
        await anyio.sleep_forever()

    bus.handle("slow.#", slow)
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(bus.request, "slow.x")
        await started.wait()
        await anyio.wait_all_tasks_blocked()
        assert len(bus.pending) == 10
        tg.cancel_scope.cancel()
    assert len(bus.pending) == 0


async def test_duplicate_request_id_is_refused_while_in_flight() -> None:
    bus = Bus()
    gate = anyio.Event()

    async def wait_gate(msg: Message) -> str:
        await gate.wait()
        return "ok"

    bus.handle("g", wait_gate)
    msg = Message.request("g")
    replies: list[Message] = []
    async with anyio.create_task_group() as tg:

        async def go() -> None:
            replies.append(await bus.dispatch(msg))

        tg.start_soon(go)
        await anyio.wait_all_tasks_blocked()
        dup = await bus.dispatch(msg)
        assert dup.kind == "error" and dup.payload["code"] == "bus.duplicate_request_id"
        gate.set()
    assert replies[0].payload == "ok"


async def test_dispatch_refuses_non_requests() -> None:
    bus = Bus()
    reply = await bus.dispatch(Message("an.event"))
    assert reply.kind == "error" and reply.payload["code"] == "bus.not_a_request"


async def test_request_all_asks_every_route() -> None:
    bus = Bus()

    async def fails(msg: Message) -> None:
        raise NotFoundError("nothing here", code="x.none")

    bus.handle("all.#", lambda m: "low", priority=-1)
    bus.handle("all.x", lambda m: "high", priority=5)
    bus.handle("all.*", fails)
    replies = await bus.request_all("all.x", {"q": 1})
    assert [r.kind for r in replies] == ["response", "error", "response"]
    assert replies[0].payload == "high" and replies[2].payload == "low"
    assert replies[1].error().code == "x.none"  # type: ignore[union-attr]
    assert len({r.correlation_id for r in replies}) == 3
    with pytest.raises(NotFoundError):
        await bus.request_all("none.x")
    assert len(bus.pending) == 0


async def test_late_answers_through_resolve_and_orphans() -> None:
    """An endpoint may answer later, through the bus, instead of from request()."""
    bus = Bus()
    inbox: list[Message] = []

    class Later:
        name = "later"
        capabilities = frozenset({"async-answers"})

        async def deliver(self, msg: Message) -> None:
            inbox.append(msg)

        async def request(self, msg: Message, timeout: float) -> Message | None:
            inbox.append(msg)
            return None  # the answer arrives via bus.ingest()

    await bus.endpoints.register(Later())
    async with anyio.create_task_group() as tg:
        result: list[Message] = []

        async def ask() -> None:
            result.append(await bus.request("later.work", {"n": 1}, to="later", timeout=5))

        tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        (req,) = inbox
        assert req.id in bus.pending
        assert await bus.ingest(req.reply({"done": True}), origin="later") is None
    assert result[0].payload == {"done": True}
    assert len(bus.pending) == 0
    # a second answer, or an answer to nothing, is an orphan
    assert bus.resolve(req.reply("again")) is False
    await bus.ingest(Message("x.y", 1, kind="response", correlation_id="nobody"))
    assert bus.metrics.snapshot()["counters"]["orphans"] == 2


async def test_late_answer_that_never_comes_times_out() -> None:
    bus = Bus()

    class Silent:
        name = "silent"
        capabilities: frozenset[str] = frozenset()

        async def deliver(self, msg: Message) -> None:
            return None

        async def request(self, msg: Message, timeout: float) -> None:
            return None

    await bus.endpoints.register(Silent())
    with pytest.raises(OperationTimeoutError):
        await bus.request("s.x", to="silent", timeout=0.01)
    assert len(bus.pending) == 0


async def test_aclose_answers_pending_requests() -> None:
    bus = Bus()
    bus.handle("wait", lambda m: anyio.sleep_forever())

    class Never:
        name = "never"
        capabilities: frozenset[str] = frozenset()

        async def deliver(self, msg: Message) -> None:
            return None

        async def request(self, msg: Message, timeout: float) -> None:
            return None

    await bus.endpoints.register(Never())
    errors: list[SymphonyError] = []

    async def ask() -> None:
        try:
            await bus.request("x", to="never", timeout=30)
        except SymphonyError as err:
            errors.append(err)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        await bus.aclose()
    assert [e.code for e in errors] == ["bus.closed"]
    assert len(bus.pending) == 0


async def test_request_metrics_and_latency() -> None:
    bus = Bus()
    bus.handle("m", lambda msg: 1)
    for _ in range(50):
        await bus.request("m")
    snap = bus.metrics.snapshot()
    lat = snap["latency"]["request"]
    assert lat["count"] == 50
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert snap["counters"]["responses"] == 50
    json.dumps(snap)
