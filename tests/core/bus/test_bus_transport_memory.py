"""The transport contract and the built-in ``memory://`` transport (no sockets, no bus-remote)."""

from __future__ import annotations

import functools

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.bus._codecs import get_codec
from symphony.bus._message import Message
from symphony.bus._registries import TransportRegistry
from symphony.bus._transport import (
    Connection,
    ConnectionClosed,
    MemoryTransport,
    PeerInfo,
    Transport,
    open_transport,
    scheme_of,
)
from symphony.commons.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    SerializationError,
    SymphonyError,
    TransportError,
)


async def _echo(conn: Connection) -> None:
    while True:
        msg = await conn.receive()
        await conn.send(msg.reply({"echo": msg.payload, "codec": conn.codec.name}))


# -- memory transport ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_memory_request_response_and_one_way(codec: str) -> None:
    transport = MemoryTransport()
    received: list[Message] = []

    async def handler(conn: Connection) -> None:
        while True:
            msg = await conn.receive()
            if msg.kind == "request":
                await conn.send(msg.reply({"echo": msg.payload}))
            else:
                received.append(msg)

    async with anyio.create_task_group() as tg:
        serve = functools.partial(transport.serve, options={"codec": codec})
        url = await tg.start(serve, "memory://echo-" + codec, handler)
        conn = await transport.connect(url, options={"codec": codec})
        assert conn.codec.name == codec
        await conn.send(Message("demo.note", {"n": 1}))
        req = Message.request("demo.echo", {"text": "héllo", "items": [1, 2.5, None, True]})
        await conn.send(req)
        reply = await conn.receive()
        assert reply.kind == "response" and reply.correlation_id == req.id
        assert reply.payload == {"echo": req.payload}
        assert [m.payload for m in received] == [{"n": 1}]
        await conn.aclose()
        assert conn.closed
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_memory_server_codec_option_is_used() -> None:
    transport = MemoryTransport()
    async with anyio.create_task_group() as tg:
        serve = functools.partial(transport.serve, options={"codec": "json"})
        url = await tg.start(serve, "memory://json-server", _echo)
        conn = await transport.connect(url, options={"codec": "json"})
        await conn.send(Message.request("demo.echo", 1))
        assert (await conn.receive()).payload == {"echo": 1, "codec": "json"}
        await conn.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_memory_errors() -> None:
    transport = MemoryTransport()
    with pytest.raises(TransportError) as info:
        await transport.connect("memory://nobody-home")
    assert info.value.code == "transport.connect_failed"
    with pytest.raises(ConfigError):
        await transport.connect("memory://")
    async with anyio.create_task_group() as tg:
        await tg.start(transport.serve, "memory://taken", _echo)
        with pytest.raises(ConflictError) as conflict:
            await transport.serve("memory://taken", _echo)
        assert conflict.value.code == "transport.address_in_use"
        tg.cancel_scope.cancel()
    # After the server stopped, the name is free and connecting fails cleanly.
    with pytest.raises(TransportError):
        await transport.connect("memory://taken")


@pytest.mark.anyio
async def test_closing_one_end_is_seen_by_the_other() -> None:
    transport = MemoryTransport()
    ended = anyio.Event()
    seen: list[str] = []

    async def handler(conn: Connection) -> None:
        try:
            await conn.receive()
        except ConnectionClosed as exc:
            seen.append(exc.code)
        ended.set()

    async with anyio.create_task_group() as tg:
        url = await tg.start(transport.serve, "memory://closing", handler)
        conn = await transport.connect(url)
        await conn.aclose()
        await conn.aclose()  # idempotent
        with anyio.fail_after(5):
            await ended.wait()
        with pytest.raises(ConnectionClosed):
            await conn.send(Message("demo.late"))
        tg.cancel_scope.cancel()
    assert seen == ["transport.closed"]


@pytest.mark.anyio
async def test_memory_max_frame_size_and_options_are_checked() -> None:
    transport = MemoryTransport()
    async with anyio.create_task_group() as tg:
        url = await tg.start(transport.serve, "memory://limits", _echo)
        conn = await transport.connect(url, options={"max_frame_size": 300})
        with pytest.raises(SerializationError) as info:
            await conn.send(Message("demo.big", "x" * 400))
        assert info.value.code == "framing.frame_too_large"
        await conn.send(Message.request("demo.small", 1))  # nothing was sent: still in step
        assert (await conn.receive()).payload == {"echo": 1, "codec": "msgpack"}
        for bad in ({"max_frame_size": 0}, {"buffer": -1}, {"buffer": 1.5}, {"codec": 3}):
            with pytest.raises(ConfigError):
                await transport.connect(url, options=bad)
        await conn.aclose()
        with pytest.raises(ConnectionClosed) as closed:
            await conn.receive()
        assert closed.value.code == "transport.closed_locally"
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_memory_receive_many_keeps_order_around_an_undecodable_message() -> None:
    transport = MemoryTransport()
    got: list[Message] = []
    errors: list[str] = []
    done = anyio.Event()

    async def handler(conn: Connection) -> None:
        while len(got) < 4:
            try:
                got.extend(await conn.receive_many())
            except SerializationError as exc:
                errors.append(exc.code)
        done.set()

    class Garbling:
        """A codec that writes one undecodable message (the third) among good ones."""

        name = "msgpack"

        def __init__(self) -> None:
            self.inner = get_codec("msgpack")
            self.sent = 0

        def encode(self, msg: Message) -> bytes:
            self.sent += 1
            return b"\xc1" if self.sent == 3 else self.inner.encode(msg)

        def decode(self, data: bytes) -> Message:
            return self.inner.decode(data)

    async with anyio.create_task_group() as tg:
        url = await tg.start(transport.serve, "memory://garbled", handler)
        conn = await transport.connect(url, options={"codec": Garbling()})
        await conn.send_many([Message("demo.n", i) for i in range(5)])
        with anyio.fail_after(5):
            await done.wait()
        assert [m.payload for m in got] == [0, 1, 3, 4]
        assert errors == ["bus.decode_failed"]
        await conn.aclose()
        tg.cancel_scope.cancel()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_memory_urls_are_parsed_or_refused_with_a_symphony_error(url: str) -> None:
    async def connect() -> None:
        await MemoryTransport().connect("memory://" + url)

    with pytest.raises(SymphonyError):
        anyio.run(connect)


def test_peer_info_describe() -> None:
    assert PeerInfo("unix", "/tmp/s.sock", pid=12, uid=1000).describe() == "unix:/tmp/s.sock pid=12 uid=1000"
    assert PeerInfo("tcp", "127.0.0.1:80").describe() == "tcp:127.0.0.1:80"


# -- choosing a transport --------------------------------------------------------------------------


def test_open_transport_by_scheme() -> None:
    assert isinstance(open_transport("memory://x"), MemoryTransport)
    assert isinstance(open_transport("memory://x"), Transport)
    # Installed plugin found through its entry point when no kernel is given.
    unix = open_transport("unix:///tmp/x.sock", TransportRegistry())
    assert unix.scheme == "unix"
    assert scheme_of("TCP://h:1") == "tcp"
    with pytest.raises(ConfigError):
        scheme_of("no-scheme-here")


def test_unknown_scheme_names_known_schemes_and_the_package() -> None:
    registry = TransportRegistry()
    registry.add("carrier-pigeon", MemoryTransport)
    with pytest.raises(NotFoundError) as info:
        open_transport("quantum://entangled", registry)
    err = info.value
    assert err.code == "transport.unknown_scheme"
    assert "carrier-pigeon" in err.context["known"] and "memory" in err.context["known"]
    assert err.hint == "pip install symphony-transport-quantum"


def test_registry_factories_and_instances_both_work() -> None:
    registry = TransportRegistry()
    instance = MemoryTransport()
    registry.add("memory", instance)
    assert open_transport("memory://a", registry) is instance
