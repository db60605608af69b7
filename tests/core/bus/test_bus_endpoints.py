"""Endpoint registry, capability lookup, change events, and routing to endpoints."""

from __future__ import annotations

import anyio
import pytest

from symphony.bus import Bus, LocalEndpoint, Message
from symphony.bus._endpoints import ENDPOINT_REGISTERED, ENDPOINT_UNREGISTERED, Endpoint
from symphony.commons.errors import (
    ConflictError,
    NotFoundError,
    OperationTimeoutError,
    SymphonyError,
    TransportError,
    ValidationError,
)

pytestmark = pytest.mark.anyio


async def test_register_list_capabilities_and_events() -> None:
    bus = Bus()
    events = bus.subscribe("bus.endpoint.*")
    gpu = LocalEndpoint("gpu-1", capabilities={"gpu", "model:llama"})
    cpu = LocalEndpoint("cpu-1", capabilities={"cpu"})
    gpu2 = LocalEndpoint("gpu-2", capabilities={"gpu"})
    for ep in (gpu, cpu, gpu2):
        await bus.endpoints.register(ep)
    assert isinstance(gpu, Endpoint)
    assert bus.endpoints.names() == ["cpu-1", "gpu-1", "gpu-2"]
    assert [e.name for e in bus.endpoints.list()] == ["cpu-1", "gpu-1", "gpu-2"]
    assert bus.endpoints.with_capability("gpu") == [gpu, gpu2]
    assert bus.endpoints.with_capability("model:llama") == [gpu]
    assert bus.endpoints.with_capability("tpu") == []
    assert bus.endpoints.capabilities()["gpu"] == ["gpu-1", "gpu-2"]
    assert bus.endpoints.get("cpu-1") is cpu and "cpu-1" in bus.endpoints and len(bus.endpoints) == 3

    first = await events.receive(timeout=5)
    assert (first.type, first.payload) == (
        ENDPOINT_REGISTERED,
        {"name": "gpu-1", "capabilities": ["gpu", "model:llama"]},
    )

    assert await bus.endpoints.unregister("gpu-1", reason="connection lost") is gpu
    assert await bus.endpoints.unregister("gpu-1") is None
    assert bus.endpoints.with_capability("gpu") == [gpu2]
    assert "model:llama" not in bus.endpoints.capabilities()
    names = [(await events.receive(timeout=5)).payload["name"] for _ in range(2)]
    assert names == ["cpu-1", "gpu-2"]
    gone = await events.receive(timeout=5)
    assert gone.type == ENDPOINT_UNREGISTERED
    assert gone.payload == {
        "name": "gpu-1",
        "capabilities": ["gpu", "model:llama"],
        "reason": "connection lost",
    }
    with pytest.raises(NotFoundError) as info:
        bus.endpoints.get("gpu-1")
    assert info.value.code == "bus.unknown_endpoint"


async def test_name_conflicts_and_replacement() -> None:
    bus = Bus()
    first = LocalEndpoint("peer")
    await bus.endpoints.register(first)
    await bus.endpoints.register(first)  # same object: no-op
    with pytest.raises(ConflictError) as info:
        await bus.endpoints.register(LocalEndpoint("peer"))
    assert info.value.code == "bus.endpoint_conflict"
    second = LocalEndpoint("peer", capabilities={"v2"})
    events = bus.subscribe("bus.endpoint.#")
    await bus.endpoints.register(second, replace=True)
    assert bus.endpoints.get("peer") is second
    assert [(await events.receive(timeout=5)).payload.get("reason") for _ in range(2)] == ["replaced", None]


async def test_not_an_endpoint() -> None:
    bus = Bus()
    with pytest.raises(ValidationError) as info:
        await bus.endpoints.register(object())  # type: ignore[arg-type]
    assert info.value.code == "bus.bad_endpoint"


async def test_routing_to_endpoints_by_name_and_object() -> None:
    bus = Bus()
    a = LocalEndpoint("a", handler=lambda m: f"a:{m.payload}")
    b = LocalEndpoint("b", handler=lambda m: f"b:{m.payload}")
    await bus.endpoints.register(a)
    await bus.endpoints.register(b)
    bus.handle("work.#", "a", priority=1)
    bus.handle("work.#", b)
    assert (await bus.request("work.x", 1)).payload == "a:1"
    assert (await bus.request("work.x", 2, to="b")).payload == "b:2"
    # an unhealthy endpoint is skipped; the next route answers
    bus.health.mark_unhealthy("a", TransportError("down", code="peer.down"))
    assert (await bus.request("work.x", 3)).payload == "b:3"
    bus.health.beat("a")
    assert (await bus.request("work.x", 4)).payload == "a:4"
    # an unregistered endpoint's routes stay but are unavailable
    await bus.endpoints.unregister("a")
    assert (await bus.request("work.x", 5)).payload == "b:5"
    await bus.endpoints.register(a)
    assert (await bus.request("work.x", 6)).payload == "a:6"
    with pytest.raises(NotFoundError) as info:
        await bus.request("work.x", to="zzz")
    assert info.value.code == "bus.unknown_endpoint"
    assert bus.router.remove_endpoint("a") == 1
    assert (await bus.request("work.x", 7)).payload == "b:7"


async def test_endpoint_errors_cross() -> None:
    bus = Bus()

    async def refuse(msg: Message) -> None:
        raise ValidationError("no", code="ep.refused", context={"why": "because"})

    await bus.endpoints.register(LocalEndpoint("r", handler=refuse))
    with pytest.raises(ValidationError) as info:
        await bus.request("x", to="r")
    assert (info.value.code, info.value.context) == ("ep.refused", {"why": "because"})
    await bus.endpoints.register(LocalEndpoint("silent"))  # no handler
    with pytest.raises(NotFoundError) as nf:
        await bus.request("x", to="silent")
    assert nf.value.code == "bus.no_handler"


class Flaky:
    """A remote-peer-like endpoint whose request() misbehaves in different ways."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, name: str, mode: str) -> None:
        self.name = name
        self.mode = mode

    async def deliver(self, msg: Message) -> None:
        return None

    async def request(self, msg: Message, timeout: float) -> object:
        if self.mode == "crash":
            raise OSError("socket exploded")
        if self.mode == "transport":
            raise TransportError("connection reset", code="transport.reset")
        if self.mode == "garbage":
            return {"not": "a message"}
        if self.mode == "slow":
            await anyio.sleep(timeout * 10)
        return msg.reply(timeout)


@pytest.mark.parametrize(
    ("mode", "error", "code"),
    [
        ("crash", SymphonyError, "bus.endpoint_crashed"),
        ("transport", TransportError, "transport.reset"),
        ("garbage", SymphonyError, "bus.bad_reply"),
        ("slow", OperationTimeoutError, "bus.request_timeout"),
    ],
)
async def test_misbehaving_endpoints(mode: str, error: type[SymphonyError], code: str) -> None:
    bus = Bus()
    await bus.endpoints.register(Flaky("f", mode))
    with pytest.raises(error) as info:
        await bus.request("x", to="f", timeout=0.05)
    assert info.value.code == code
    assert len(bus.pending) == 0


async def test_endpoint_gets_remaining_time_as_timeout() -> None:
    bus = Bus()
    await bus.endpoints.register(Flaky("ok", "fine"))
    reply = await bus.request("x", to="ok", timeout=2.5)
    assert 0 < reply.payload <= 2.5


async def test_endpoint_responses_are_validated_at_the_boundary() -> None:
    bus = Bus()
    bus.message_types.add("calc.add", schema={"type": "object"}, response_schema={"type": "integer"})
    await bus.endpoints.register(LocalEndpoint("calc", handler=lambda m: "not an int"))
    with pytest.raises(ValidationError) as info:
        await bus.request("calc.add", {}, to="calc")
    assert info.value.code == "bus.invalid_payload" and info.value.context["kind"] == "response"
    assert bus.metrics.invalid == 1
    lax = Bus(config={"validate_inbound": False})
    lax.message_types.add("calc.add", response_schema={"type": "integer"})
    await lax.endpoints.register(LocalEndpoint("calc", handler=lambda m: "not an int"))
    assert (await lax.request("calc.add", {}, to="calc")).payload == "not an int"


async def test_forward_delivers_events_to_an_endpoint() -> None:
    bus = Bus()
    ep = LocalEndpoint("listener")
    async with bus:
        handle = bus.forward("news.#", ep, buffer=10)
        for i in range(5):
            await bus.publish(Message("news.item", i))
        with anyio.fail_after(5):
            while len(ep.received) < 5:
                await anyio.sleep(0.001)
        handle.close()
    assert [m.payload for m in ep.received] == [0, 1, 2, 3, 4]


async def test_local_endpoint_event_callback_and_keep_limit() -> None:
    got: list[int] = []

    async def on_event(msg: Message) -> None:
        got.append(msg.payload)

    ep = LocalEndpoint("e", on_event=on_event)
    await ep.deliver(Message("a", 1))
    assert got == [1] and ep.received == []
    keeper = LocalEndpoint("k", keep=2)
    for i in range(4):
        await keeper.deliver(Message("a", i))
    assert [m.payload for m in keeper.received] == [2, 3]


async def test_ingest_from_a_remote_peer() -> None:
    bus = Bus()
    bus.message_types.add("chat.say", schema={"type": "object", "required": ["text"]})
    bus.handle("chat.say", lambda m: {"echo": m.payload["text"]})
    await bus.endpoints.register(LocalEndpoint("peer"))
    sub = bus.subscribe("chat.#")
    # a valid event is published
    assert await bus.ingest(Message("chat.say", {"text": "hi"}), origin="peer") is None
    assert (await sub.receive(timeout=5)).payload == {"text": "hi"}
    # an invalid event raises, and is not published
    with pytest.raises(ValidationError) as info:
        await bus.ingest(Message("chat.say", {}), origin="peer")
    assert info.value.context["path"] == "$" and info.value.context["rule"] == "required"
    assert sub.receive_nowait() is None
    # a request is dispatched and its answer returned (to be sent back)
    reply = await bus.ingest(Message.request("chat.say", {"text": "yo"}), origin="peer")
    assert reply is not None and reply.payload == {"echo": "yo"}
    # an invalid request is answered with the validation error
    bad = await bus.ingest(Message.request("chat.say", {"nope": 1}), origin="peer")
    assert bad is not None and bad.kind == "error" and bad.payload["code"] == "bus.invalid_payload"
    # validation can be turned off per call
    assert await bus.ingest(Message("chat.say", {}), validate=False) is None
    assert bus.metrics.invalid == 2
    # strict policy rejects unknown types at the boundary
    bus.message_types.unknown = "strict"
    with pytest.raises(NotFoundError):
        await bus.ingest(Message("chat.unknown", {}), origin="peer")


async def test_answer_remote_answers_a_link_request_checked_when_asked() -> None:
    bus = Bus()
    bus.message_types.add("chat.say", schema={"type": "object", "required": ["text"]})
    bus.handle("chat.say", lambda m: {"echo": m.payload.get("text")})
    traffic = bus.subscribe("chat.#", traffic=True)
    reply = await bus.answer_remote(Message.request("chat.say", {"text": "yo"}))
    assert reply.kind == "response" and reply.payload == {"echo": "yo"}
    assert [m.kind for m in (traffic.receive_nowait(), traffic.receive_nowait())] == ["request", "response"]
    # unchecked unless asked: the link's side decides (bus.validate_inbound)
    unchecked = await bus.answer_remote(Message.request("chat.say", {"nope": 1}))
    assert unchecked.kind == "response" and unchecked.payload == {"echo": None}
    bad = await bus.answer_remote(Message.request("chat.say", {"nope": 1}), validate=True)
    assert bad.kind == "error" and bad.payload["code"] == "bus.invalid_payload"
    missing = await bus.answer_remote(Message.request("chat.other", {}))
    assert missing.kind == "error" and missing.payload["code"] == "bus.no_route"
    counters = bus.metrics.snapshot()["counters"]
    assert (counters["requests"], counters["responses"], counters["errors"], counters["invalid"]) == (4, 2, 2, 1)


async def test_ingest_of_invalid_response_fails_the_waiting_request() -> None:
    bus = Bus()
    bus.message_types.add("q.a", response_schema={"type": "integer"})
    inbox: list[Message] = []

    class Later:
        name = "later"
        capabilities: frozenset[str] = frozenset()

        async def deliver(self, msg: Message) -> None:
            return None

        async def request(self, msg: Message, timeout: float) -> None:
            inbox.append(msg)

    await bus.endpoints.register(Later())
    async with anyio.create_task_group() as tg:
        errors: list[SymphonyError] = []

        async def ask() -> None:
            try:
                await bus.request("q.a", to="later", timeout=5)
            except SymphonyError as err:
                errors.append(err)

        tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        await bus.ingest(inbox[0].reply("not an int"), origin="later")
    assert [e.code for e in errors] == ["bus.invalid_payload"]


async def test_registration_never_waits_for_a_full_subscriber() -> None:
    bus = Bus()
    stuck = bus.subscribe("bus.endpoint.*", buffer=1, policy="wait")
    with anyio.fail_after(5):
        for i in range(3):
            await bus.endpoints.register(LocalEndpoint(f"e{i}"))
    assert stuck.depth == 1 and stuck.rejected == 2
    assert bus.metrics.snapshot()["counters"]["rejected"] == 2


async def test_traffic_from_unknown_origins_is_not_tracked() -> None:
    bus = Bus()
    await bus.ingest(Message("x.y"), origin="stranger")
    assert "stranger" not in bus.health
