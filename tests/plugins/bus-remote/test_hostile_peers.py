"""Issue #10.9 (bus parts): what an unauthenticated peer may send is small on every transport,
and an odd token is refused cleanly without ever reaching the log."""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.bus._codecs import get_codec
from symphony.bus._core import Bus
from symphony.bus._message import Message
from symphony_bus_remote import PRE_HANDSHAKE_MAX_FRAME_SIZE, BusClient, BusServer, FramedStream

TOKEN = "hostile-test-token"


async def _read_all(stream: Any) -> bytes:
    data = b""
    with anyio.fail_after(10):
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
    return data


@pytest.mark.anyio
async def test_unix_hello_frame_over_64_kib_is_refused_before_its_body(sock_dir: Path) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    # A long handshake timeout: only the size check can end the oversized hello in time.
    async with Bus() as bus, BusServer(bus, url, handshake_timeout=60) as server:
        assert bus.config.max_frame_size > PRE_HANDSHAKE_MAX_FRAME_SIZE
        stream = await anyio.connect_unix(str(sock_dir / "bus.sock"))
        # Announce a 16 MiB hello and send only its header: the server must not wait for it.
        await stream.send(struct.pack(">I", 16 * 1024 * 1024 - 1) + b"{")
        await _read_all(stream)  # the server closed the connection
        await stream.aclose()
        # A hello just under the limit is still read (and refused for what it says, not its size).
        framed = FramedStream(await anyio.connect_unix(str(sock_dir / "bus.sock")))
        await framed.send_frame(b"x" * (PRE_HANDSHAKE_MAX_FRAME_SIZE - 10))
        refusal = get_codec("json").decode(await framed.receive_frame())
        assert refusal.is_error  # refused for what it says, so it was read
        await framed.aclose()
        # After the handshake, full-size frames pass.
        async with BusClient.connect(server.url, reconnect=False) as client:

            async def echo(msg: Message) -> Any:
                return len(msg.payload)

            bus.handle("demo.size", echo)
            big = "y" * (PRE_HANDSHAKE_MAX_FRAME_SIZE * 4)
            assert (await client.request("demo.size", big, timeout=10)).payload == len(big)


@pytest.mark.anyio
async def test_tcp_token_with_a_lone_surrogate_is_refused_and_never_logged(caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    async with Bus() as bus, BusServer(bus, "tcp://127.0.0.1:0", options={"token": TOKEN}) as server:
        assert server.url is not None
        host, port = server.url.removeprefix("tcp://").rsplit(":", 1)
        stream = await anyio.connect_tcp(host, int(port))
        secret = "SeCrEt-offered-\\ud800-token"
        frame = (
            '{"id":"a1","type":"_transport.auth","kind":"request","v":1,"ts":1.0,'
            f'"p":{{"token":"{secret}","protocol":1}}}}'
        ).encode()
        await stream.send(struct.pack(">I", len(frame)) + frame)
        data = await _read_all(stream)
        await stream.aclose()
        assert len(data) > 4, "no refusal frame"
        refusal = get_codec("json").decode(data[4:])
        assert refusal.is_error and refusal.payload["code"] == "transport.auth_failed"
        # The server is fine and still serves a peer with the right token.
        async with BusClient.connect(server.url, options={"token": TOKEN}, reconnect=False) as client:

            def pong(msg: Message) -> str:
                return "pong"

            bus.handle("demo.ping", pong)
            assert (await client.request("demo.ping", timeout=10)).payload == "pong"
    assert "SeCrEt-offered" not in caplog.text
    assert "auth_failed" in caplog.text
