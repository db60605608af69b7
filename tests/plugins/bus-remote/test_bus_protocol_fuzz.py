"""The bus protocol's control messages, fuzzed from a raw connection: whatever a peer puts in
a handshake or in ``_bus.subscribe`` / ``_bus.handle`` / ... payloads, the server answers it
(a response or an error naming what was wrong), never crashes the link, and keeps serving."""

from __future__ import annotations

import functools
import os
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from symphony.bus._core import Bus
from symphony.bus._message import ERROR, REQUEST, RESPONSE, Message
from symphony.bus._transport import open_transport
from symphony_bus_remote import HANDSHAKE_CODEC, PROTOCOL_VERSION, BusServer

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_IDS = st.one_of(st.text(min_size=1, max_size=8), _VALUES)
_PATTERNS = st.one_of(st.sampled_from(["demo.*", "a.b", "#", "x.#.y", "bad..pattern", ""]), _VALUES)
_ANYTHING = st.tuples(
    st.sampled_from(
        ["_bus.subscribe", "_bus.unsubscribe", "_bus.handle", "_bus.unhandle", "_bus.ping", "_bus.nonsense"]
    ),
    _VALUES,
)
# mostly well-formed control messages, each field sometimes replaced by anything at all
_SUBSCRIBE = st.tuples(
    st.just("_bus.subscribe"),
    st.fixed_dictionaries(
        {"sid": _IDS, "pattern": _PATTERNS},
        optional={
            "buffer": st.one_of(st.integers(-2, 10), _VALUES),
            "policy": st.one_of(st.sampled_from(["wait", "drop-oldest"]), _VALUES),
        },
    ),
)
_HANDLE = st.tuples(
    st.just("_bus.handle"),
    st.fixed_dictionaries(
        {"hid": _IDS, "pattern": _PATTERNS}, optional={"priority": st.one_of(st.integers(-5, 5), _VALUES)}
    ),
)
_UNDO = st.tuples(
    st.sampled_from(["_bus.unsubscribe", "_bus.unhandle"]), st.fixed_dictionaries({"sid": _IDS, "hid": _IDS})
)
_CONTROL = st.one_of(_ANYTHING, _SUBSCRIBE, _HANDLE, _UNDO)
_HELLO_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": _VALUES,
        "capabilities": _VALUES,
        "codecs": st.one_of(_VALUES, st.just(["json"])),
    },
)


async def _session(hello_extra: dict[str, Any], controls: list[tuple[str, Any]]) -> None:
    url = f"memory://fuzz-{os.urandom(4).hex()}"
    async with Bus() as bus, BusServer(bus, url, codecs=["json"]):
        bus.handle("demo.echo", lambda msg: msg.payload)
        conn = await open_transport(url).connect(url, options={"codec": HANDSHAKE_CODEC})
        try:
            hello = {"protocol": PROTOCOL_VERSION, "codecs": ["json"], **hello_extra}
            await conn.send(Message.request("_bus.hello", hello))
            with anyio.fail_after(5):
                answer = await conn.receive()
            event(f"handshake {answer.kind}")
            if answer.kind == ERROR:  # refused: it must say why, and the server serves others
                assert answer.payload["code"].startswith("bus.")
                return
            assert answer.kind == RESPONSE and answer.payload["codec"] == "json"
            for type, payload in controls:
                msg = Message.request(type, payload)
                await conn.send(msg)
                with anyio.fail_after(5):
                    reply = await conn.receive()
                    while reply.correlation_id != msg.id:  # skip pings and forwarded events
                        reply = await conn.receive()
                assert reply.kind in (RESPONSE, ERROR)
                event(f"{type} -> {reply.kind}")
                if reply.kind == ERROR:
                    assert reply.payload["code"] and reply.payload["message"]
            probe = Message.request("demo.echo", "still serving")
            await conn.send(probe)
            with anyio.fail_after(5):
                reply = await conn.receive()
                while reply.correlation_id != probe.id:
                    if reply.kind == REQUEST:  # our own _bus.handle route won: answer as a handler
                        await conn.send(reply.reply(reply.payload))
                    reply = await conn.receive()
            assert reply.payload == "still serving"
        finally:
            await conn.aclose()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hello=_HELLO_FIELDS, controls=st.lists(_CONTROL, max_size=6))
def test_any_control_payload_is_answered_and_the_server_keeps_serving(
    backend: str, hello: dict[str, Any], controls: list[tuple[str, Any]]
) -> None:
    anyio.run(_session, hello, controls, backend=backend)


_KINDS = st.sampled_from(["response", "error", "event", "request"])
_ANSWERS = st.tuples(
    _KINDS,
    st.one_of(
        _VALUES,
        st.fixed_dictionaries(
            {},
            optional={
                "codec": st.one_of(st.sampled_from(["json", "msgpack", "nope"]), _VALUES),
                "name": _VALUES,
                "server": _VALUES,
                "protocol": _VALUES,
                "code": st.one_of(st.sampled_from(["bus.refused", "x"]), _VALUES),
                "message": _VALUES,
                "category": st.one_of(st.sampled_from(["validation", "transport", "error"]), _VALUES),
                "context": _VALUES,
            },
        ),
    ),
    st.booleans(),  # answer the hello's id, or another one
)


async def _client_session(answer: tuple[str, Any, bool]) -> None:
    from symphony.commons.errors import SymphonyError
    from symphony_bus_remote import BusClient

    kind, payload, correlated = answer
    url = f"memory://fuzz-client-{os.urandom(4).hex()}"

    async def fake_server(conn: Any) -> None:
        hello = await conn.receive()
        reply = Message(
            "_bus.hello",
            payload,
            kind=kind,
            correlation_id=hello.id if correlated else "someone-else",
        )
        await conn.send(reply)
        await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        serve = functools.partial(open_transport(url).serve, options={"codec": HANDSHAKE_CODEC})
        await tg.start(serve, url, fake_server)
        try:
            async with BusClient.connect(url, reconnect=False, codec="json"):
                event("client connected")
        except SymphonyError as exc:  # refused: a SymphonyError naming what was wrong
            assert exc.code and exc.message
            event(f"client refused: {type(exc).__name__}")
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=_ANSWERS)
def test_any_handshake_answer_gives_the_client_a_link_or_a_symphony_error(
    backend: str, answer: tuple[str, Any, bool]
) -> None:
    anyio.run(_client_session, answer, backend=backend)
