"""Socket connections (StreamConnection, serve_sockets, common options) and reconnect backoff."""

from __future__ import annotations

import functools
import random
import socket
from typing import Any

import anyio
import anyio.abc
import pytest

from symphony.bus._codecs import get_codec
from symphony.bus._message import Message
from symphony.bus._transport import (
    Connection,
    MemoryTransport,
    PeerInfo,
)
from symphony.commons.errors import (
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    SerializationError,
    TransportError,
)
from symphony_bus_remote import (
    Backoff,
    Reconnector,
    SocketByteStream,
    StreamConnection,
    common_options,
    encode_frame,
    retry,
    serve_sockets,
)


async def _echo(conn: Connection) -> None:
    while True:
        msg = await conn.receive()
        await conn.send(msg.reply({"echo": msg.payload, "codec": conn.codec.name}))


# -- StreamConnection ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_send_many_and_receive_many_with_a_bad_frame_in_the_middle() -> None:
    a, b = socket.socketpair()
    codec = get_codec("msgpack")
    sender = StreamConnection(SocketByteStream(a), codec=codec, peer=PeerInfo("test", "a"))
    receiver = StreamConnection(SocketByteStream(b), codec=codec, peer=PeerInfo("test", "b"))
    first = [Message("demo.n", i) for i in range(3)]
    last = [Message("demo.n", i) for i in range(3, 5)]
    await sender.send_many(first)
    await sender.send_frame(b"\xc1 not msgpack")
    await sender.send_many(last)
    got: list[Message] = []
    errors: list[SerializationError] = []
    with anyio.fail_after(5):
        while len(got) < 5:
            try:
                got.extend(await receiver.receive_many())
            except SerializationError as exc:
                errors.append(exc)
    assert [m.payload for m in got] == [0, 1, 2, 3, 4]
    assert len(errors) == 1 and errors[0].code == "bus.decode_failed"
    await sender.aclose()
    await receiver.aclose()


@pytest.mark.anyio
async def test_receive_raw_frame_then_messages_and_codec_switch() -> None:
    a, b = socket.socketpair()
    left = StreamConnection(SocketByteStream(a), codec=get_codec("json"), peer=PeerInfo("test", "a"))
    right = StreamConnection(SocketByteStream(b), codec=get_codec("json"), peer=PeerInfo("test", "b"))
    await left.send(Message("demo.hello", "json"))
    assert (await right.receive()).payload == "json"
    left.set_codec(get_codec("msgpack"))
    right.set_codec(get_codec("msgpack"))
    await left.send(Message("demo.bytes", b"\x00\x01"))
    assert (await right.receive()).payload == b"\x00\x01"
    assert "codec=msgpack" in repr(left)
    await left.aclose()
    await right.aclose()


def test_common_options_are_checked() -> None:
    opts = common_options({"codec": "json", "max_frame_size": 1024, "connect_timeout": 0.5})
    assert (opts.codec.name, opts.max_frame_size, opts.connect_timeout) == ("json", 1024, 0.5)
    with pytest.raises(NotFoundError):
        common_options({"codec": "nope"})
    for bad in ({"max_frame_size": -1}, {"max_frame_size": 1.5}, {"connect_timeout": 0}, {"codec": 3}):
        with pytest.raises(ConfigError):
            common_options(bad)


# -- backoff -----------------------------------------------------------------------------------------


def test_backoff_caps_and_full_jitter() -> None:
    policy = Backoff(initial_delay=0.1, max_delay=1.0, multiplier=3.0, max_attempts=5)
    assert [round(policy.cap(n), 3) for n in range(4)] == [0.1, 0.3, 0.9, 1.0]
    rng = random.Random(7)
    delays = list(policy.delays(rng))
    assert len(delays) == 4  # between 5 attempts
    assert all(0 <= d <= policy.cap(i) for i, d in enumerate(delays))
    samples = [policy.delay(3, rng) for _ in range(200)]
    assert min(samples) < 0.3 and max(samples) > 0.7  # spread over [0, cap], not clustered at the cap
    forever = Backoff(max_attempts=None).delays()
    assert len([next(forever) for _ in range(100)]) == 100
    assert Backoff(initial_delay=1, multiplier=10).cap(10_000) == 5.0  # no overflow


def test_backoff_validation() -> None:
    for bad in (
        {"initial_delay": -1},
        {"multiplier": 0.5},
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"max_delay": "x"},
    ):
        with pytest.raises(ConfigError):
            Backoff(**bad)  # type: ignore[arg-type]
    assert Backoff.from_mapping({"max_attempts": 3}).max_attempts == 3
    with pytest.raises(ConfigError):
        Backoff.from_mapping({"jitter": "none"})


@pytest.mark.anyio
async def test_retry_gives_up_after_max_attempts_with_the_last_error() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise TransportError("down", code="transport.connect_failed")

    with pytest.raises(TransportError) as info:
        await retry(failing, Backoff(initial_delay=0.001, max_delay=0.002, max_attempts=4))
    assert calls == 4
    assert info.value.code == "transport.reconnect_failed"
    assert (
        info.value.context["attempts"] == 4 and info.value.context["last_code"] == "transport.connect_failed"
    )
    assert isinstance(info.value.__cause__, TransportError)


@pytest.mark.anyio
async def test_retry_does_not_retry_permanent_errors_and_returns_success() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise PermissionDeniedError("wrong token", code="transport.auth_failed")

    with pytest.raises(PermissionDeniedError):
        await retry(refused, Backoff(initial_delay=0.001))
    assert calls == 1

    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransportError("not yet")
        return "up"

    retried: list[int] = []
    assert (
        await retry(flaky, Backoff(initial_delay=0.001), on_retry=lambda n, d, e: retried.append(n)) == "up"
    )
    assert retried == [1, 2]


@pytest.mark.anyio
async def test_reconnector_waits_for_a_server_that_starts_later() -> None:
    transport = MemoryTransport()
    reconnector = Reconnector(
        "memory://late-server", policy=Backoff(initial_delay=0.01, max_delay=0.02), transport=transport
    )
    async with anyio.create_task_group() as tg:

        async def start_later() -> None:
            await anyio.sleep(0.1)
            await transport.serve("memory://late-server", _echo)

        tg.start_soon(start_later)
        with anyio.fail_after(10):
            conn = await reconnector.connect()
        assert reconnector.attempts > 1
        await conn.send(Message.request("demo.echo", "hi"))
        assert (await conn.receive()).payload["echo"] == "hi"
        await conn.aclose()
        tg.cancel_scope.cancel()


def test_encode_frame_helper_matches_connection_wire_format() -> None:
    msg = Message("demo.x", 1)
    data = get_codec("json").encode(msg)
    assert encode_frame(data)[4:] == data


@pytest.mark.anyio
async def test_serve_sockets_refuses_bad_peers_and_keeps_serving(sock_dir: Any, log_events: Any) -> None:
    """make_connection may refuse a peer three ways (None, a SymphonyError, a crash); each is
    closed and logged, and the listener goes on serving the next one."""
    path = str(sock_dir / "serve.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    listener.setblocking(False)
    verdicts = iter(["none", "symphony", "crash", "ok"])
    codec = get_codec("msgpack")

    async def make_connection(stream: anyio.abc.ByteStream) -> Connection | None:
        verdict = next(verdicts)
        if verdict == "none":
            return None
        if verdict == "symphony":
            raise PermissionDeniedError("not you", code="demo.refused")
        if verdict == "crash":
            raise RuntimeError("make_connection broke")
        return StreamConnection(stream, codec=codec, peer=PeerInfo("unix", path))

    async def closed_at_once() -> None:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        client.setblocking(False)
        with anyio.fail_after(5):
            while True:
                await anyio.wait_readable(client)
                if client.recv(100) == b"":  # the server closed it
                    break
        client.close()

    try:
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    functools.partial(serve_sockets, [listener], make_connection, _echo, name="test", busy_poll=0)
                )
                for _ in range(3):
                    await closed_at_once()
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.connect(path)
                conn = StreamConnection(SocketByteStream(client), codec=codec, peer=PeerInfo("test", "c"))
                await conn.send(Message("demo.hello", {"n": 1}))
                assert (await conn.receive()).payload == {"echo": {"n": 1}, "codec": "msgpack"}
                await conn.aclose()
                tg.cancel_scope.cancel()
    finally:
        listener.close()
    assert [e["code"] for e in log_events.named("transport.connection_refused")] == ["demo.refused"]
    failed = log_events.named("transport.accept_failed")[0]
    # The error's type and where it was raised; never its message (it could quote the peer).
    assert failed["error"] == "RuntimeError" and "make_connection broke" not in str(failed)
    assert "test_sockets_and_backoff.py" in failed["where"]
