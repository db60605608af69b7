"""The tcp transport plugin over real loopback sockets: TLS, the token handshake, refusals."""

from __future__ import annotations

import functools
import ssl
import struct
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.bus._message import Message
from symphony.bus._registries import TransportRegistry
from symphony.bus._transport import Connection, ConnectionClosed, open_transport
from symphony.commons.errors import ConfigError, OperationTimeoutError, PermissionDeniedError, TransportError
from symphony_transport_tcp import TcpTransport, parse_tcp_url
from symphony_transport_tcp import plugin as tcp_plugin

TOKEN = "s3cret-token-for-tests-only"


async def _echo(conn: Connection) -> None:
    while True:
        msg = await conn.receive()
        await conn.send(msg.reply({"echo": msg.payload, "tls": conn.peer.extra["tls"]}))


def test_plugin_hook_and_url_parsing() -> None:
    registry = TransportRegistry()
    tcp_plugin.symphony_register_transports(registry)
    assert isinstance(open_transport("tcp://127.0.0.1:1", registry), TcpTransport)
    assert parse_tcp_url("tcp://localhost:7400") == ("localhost", 7400)
    assert parse_tcp_url("tcp://[::1]:9") == ("::1", 9)
    assert parse_tcp_url("tcp://127.0.0.1:0", allow_port_zero=True) == ("127.0.0.1", 0)
    for bad in ("tcp://127.0.0.1", "tcp://:80", "tcp://h:0", "tcp://h:99999", "udp://h:1", "tcp://h:x"):
        with pytest.raises(ConfigError):
            parse_tcp_url(bad)


async def _serve(tg: Any, options: dict[str, Any], handler: Any = _echo) -> str:
    url: str = await tg.start(
        functools.partial(TcpTransport().serve, options=options), "tcp://127.0.0.1:0", handler
    )
    return url


@pytest.mark.anyio
@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_plaintext_loopback_with_token(codec: str) -> None:
    async with anyio.create_task_group() as tg:
        url = await _serve(tg, {"token": TOKEN, "codec": codec})
        assert url.startswith("tcp://127.0.0.1:") and not url.endswith(":0")
        conn = await TcpTransport().connect(url, options={"token": TOKEN, "codec": codec})
        await conn.send(Message.request("demo.echo", {"n": 1}))
        reply = await conn.receive()
        assert reply.payload == {"echo": {"n": 1}, "tls": False}
        await conn.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_no_busy_polling_between_two_ends_of_this_process() -> None:
    """Client and server share this process (and event loop): polling cannot help either."""
    server_side: list[Connection] = []

    async def keep(conn: Connection) -> None:
        server_side.append(conn)
        await _echo(conn)

    async with anyio.create_task_group() as tg:
        url = await _serve(tg, {"token": TOKEN, "busy_poll": 0.001}, keep)
        conn = await TcpTransport().connect(url, options={"token": TOKEN, "busy_poll": 0.001})
        await conn.send(Message.request("demo.echo", 1))
        assert (await conn.receive()).payload["echo"] == 1
        assert conn.framed.stream._busy is None  # type: ignore[attr-defined]
        assert server_side[0].framed.stream._busy is None  # type: ignore[attr-defined]
        await conn.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_tls_with_a_self_signed_certificate(tls_files: dict[str, Path], tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with anyio.create_task_group() as tg:
        url = await _serve(
            tg, {"token_file": token_file, "certfile": tls_files["cert"], "keyfile": tls_files["key"]}
        )
        conn = await TcpTransport().connect(url, options={"token": TOKEN, "cafile": tls_files["cert"]})
        await conn.send(Message.request("demo.echo", "over tls"))
        reply = await conn.receive()
        assert reply.payload == {"echo": "over tls", "tls": True}
        assert conn.peer.extra["tls"] is True
        await conn.aclose()

        # A client that does not trust the certificate fails the TLS handshake.
        with pytest.raises(TransportError) as untrusted:
            await TcpTransport().connect(
                url, options={"token": TOKEN, "ssl_context": ssl.create_default_context()}
            )
        assert untrusted.value.code == "transport.tls_failed"
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_wrong_token_is_refused_logged_and_others_keep_being_served(log_events: Any) -> None:
    async with anyio.create_task_group() as tg:
        url = await _serve(tg, {"token": TOKEN})
        good = await TcpTransport().connect(url, options={"token": TOKEN})
        with pytest.raises(PermissionDeniedError) as info:
            await TcpTransport().connect(url, options={"token": "not-the-token"})
        assert info.value.code == "transport.auth_failed"
        failures = log_events.named("transport.tcp.auth_failed")
        assert failures and failures[0]["reason"] == "wrong token"
        assert "not-the-token" not in repr(log_events.events), "the offered token is never logged"
        await good.send(Message.request("demo.echo", "still served"))
        assert (await good.receive()).payload["echo"] == "still served"
        await good.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_garbage_bytes_and_silent_peers_are_refused(log_events: Any) -> None:
    async with anyio.create_task_group() as tg:
        url = await _serve(tg, {"token": TOKEN, "handshake_timeout": 0.3})
        host, port = parse_tcp_url(url)
        good = await TcpTransport().connect(url, options={"token": TOKEN})

        garbage = await anyio.connect_tcp(host, port)
        await garbage.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with anyio.fail_after(5):
            answer = b""
            try:
                while True:
                    answer += await garbage.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        assert b"transport.auth_failed" in answer  # a JSON error frame explaining the refusal
        await garbage.aclose()

        wrong_frame = await anyio.connect_tcp(host, port)
        data = b'{"id":"1","type":"demo.hello","kind":"request","ts":1.0,"p":null}'
        await wrong_frame.send(struct.pack(">I", len(data)) + data)
        with anyio.fail_after(5):
            try:
                while await wrong_frame.receive():
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        await wrong_frame.aclose()

        silent = await anyio.connect_tcp(host, port)
        with anyio.fail_after(5):
            try:
                await silent.receive()  # dropped after handshake_timeout
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        await silent.aclose()

        reasons = [e["reason"] for e in log_events.named("transport.tcp.auth_failed")]
        assert "transport.frame_too_large" in reasons
        assert "unexpected first message 'demo.hello'" in reasons
        assert "handshake timeout" in reasons
        await good.send(Message.request("demo.echo", "unharmed"))
        assert (await good.receive()).payload["echo"] == "unharmed"
        await good.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_configuration_errors() -> None:
    transport = TcpTransport()
    with pytest.raises(ConfigError) as no_token:
        await transport.connect("tcp://127.0.0.1:1")
    assert no_token.value.code == "transport.tcp.token_required"
    with pytest.raises(ConfigError) as no_token_server:
        await transport.serve("tcp://127.0.0.1:0", _echo)
    assert no_token_server.value.code == "transport.tcp.token_required"
    with pytest.raises(ConfigError) as plaintext:
        await transport.connect("tcp://192.0.2.1:7400", options={"token": TOKEN})
    assert plaintext.value.code == "transport.tcp.tls_required"
    with pytest.raises(ConfigError):
        await transport.serve(
            "tcp://127.0.0.1:0", _echo, options={"token": TOKEN, "certfile": "/nonexistent.pem"}
        )
    with pytest.raises(ConfigError):
        await transport.connect("tcp://127.0.0.1:1", options={"token": TOKEN, "handshake_timeout": -1})


@pytest.mark.anyio
async def test_connect_refused_and_handshake_timeout() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            url = await _serve(tg, {"token": TOKEN})
            tg.cancel_scope.cancel()
        with pytest.raises(TransportError) as refused:
            await TcpTransport().connect(url, options={"token": TOKEN})
        assert refused.value.code == "transport.connect_failed"

        # A listener that accepts but never answers the handshake.
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        held: list[Any] = []

        async def hold(stream: Any) -> None:
            held.append(stream)
            await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            with pytest.raises(OperationTimeoutError) as slow:
                await TcpTransport().connect(
                    f"tcp://127.0.0.1:{port}", options={"token": TOKEN, "handshake_timeout": 0.2}
                )
            assert slow.value.code == "transport.handshake_timeout"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_server_close_is_seen_by_the_client() -> None:
    async def close_at_once(conn: Connection) -> None:
        await conn.aclose()

    async with anyio.create_task_group() as tg:
        url = await _serve(tg, {"token": TOKEN}, close_at_once)
        conn = await TcpTransport().connect(url, options={"token": TOKEN})
        with anyio.fail_after(5), pytest.raises(ConnectionClosed):
            await conn.receive()
        await conn.aclose()
        tg.cancel_scope.cancel()
