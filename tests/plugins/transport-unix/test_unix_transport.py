"""The unix transport plugin against real Unix sockets."""

from __future__ import annotations

import functools
import os
import socket
import stat
from pathlib import Path

import anyio
import pytest

from symphony.bus._message import Message
from symphony.bus._registries import TransportRegistry
from symphony.bus._transport import Connection, ConnectionClosed, open_transport
from symphony.commons.errors import (
    ConfigError,
    ConflictError,
    PermissionDeniedError,
    TransportError,
)
from symphony_transport_unix import UnixTransport, parse_unix_url, peer_credentials
from symphony_transport_unix import plugin as unix_plugin


async def _echo(conn: Connection) -> None:
    while True:
        msg = await conn.receive()
        await conn.send(msg.reply({"echo": msg.payload, "peer_uid": conn.peer.uid}))


def test_plugin_hook_registers_the_scheme() -> None:
    registry = TransportRegistry()
    unix_plugin.symphony_register_transports(registry)
    assert registry.names() == ["unix"]
    assert isinstance(open_transport("unix:///tmp/x.sock", registry), UnixTransport)


def test_manifest_is_shipped_inside_the_package() -> None:
    import tomllib

    import symphony_transport_unix

    manifest = Path(symphony_transport_unix.__file__).with_name("symphony.toml")
    data = tomllib.loads(manifest.read_text())["plugin"]
    assert data["id"] == "symphony-transport-unix" and data["provides"] == ["transport:unix"]


def test_url_parsing() -> None:
    assert parse_unix_url("unix:///run/x/bus.sock") == "/run/x/bus.sock"
    assert parse_unix_url("unix:rel/bus.sock") == "rel/bus.sock"
    assert parse_unix_url("unix:///tmp/with%20space.sock") == "/tmp/with space.sock"
    for bad in ("unix://host/x.sock", "unix:", "tcp://x:1", "unix:///" + "a" * 200):
        with pytest.raises(ConfigError):
            parse_unix_url(bad)


@pytest.mark.anyio
@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_request_response_and_peer_credentials(sock_dir: Path, codec: str) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    transport = UnixTransport()
    async with anyio.create_task_group() as tg:
        bound = await tg.start(functools.partial(transport.serve, options={"codec": codec}), url, _echo)
        assert bound == url
        conn = await transport.connect(url, options={"codec": codec})
        assert conn.peer.pid == os.getpid() and conn.peer.uid == os.getuid()
        await conn.send_many([Message.request("demo.echo", i) for i in range(3)])
        replies = []
        while len(replies) < 3:
            replies.extend(await conn.receive_many())
        assert [r.payload for r in replies] == [{"echo": i, "peer_uid": os.getuid()} for i in range(3)]
        await conn.aclose()
        tg.cancel_scope.cancel()
    assert not (sock_dir / "bus.sock").exists(), "the socket file is removed on shutdown"


@pytest.mark.anyio
async def test_socket_file_is_created_0600_and_custom_mode_applies(sock_dir: Path) -> None:
    transport = UnixTransport()
    async with anyio.create_task_group() as tg:
        await tg.start(transport.serve, f"unix://{sock_dir}/a.sock", _echo)
        mode = stat.S_IMODE(os.stat(sock_dir / "a.sock").st_mode)
        assert stat.S_ISSOCK(os.stat(sock_dir / "a.sock").st_mode)
        assert mode == 0o600
        await tg.start(
            functools.partial(transport.serve, options={"mode": 0o660}), f"unix://{sock_dir}/b.sock", _echo
        )
        assert stat.S_IMODE(os.stat(sock_dir / "b.sock").st_mode) == 0o660
        tg.cancel_scope.cancel()
    with pytest.raises(ConfigError):
        await transport.serve(f"unix://{sock_dir}/c.sock", _echo, options={"mode": "rw"})


@pytest.mark.anyio
async def test_missing_parent_directory_is_created_private(sock_dir: Path) -> None:
    transport = UnixTransport()
    async with anyio.create_task_group() as tg:
        await tg.start(transport.serve, f"unix://{sock_dir}/sub/dir/bus.sock", _echo)
        assert stat.S_IMODE(os.stat(sock_dir / "sub" / "dir").st_mode) == 0o700
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_stale_socket_is_replaced_live_one_and_plain_file_are_refused(
    sock_dir: Path, log_events
) -> None:
    path = sock_dir / "bus.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # leaves a socket file nobody listens on
    transport = UnixTransport()
    async with anyio.create_task_group() as tg:
        await tg.start(transport.serve, f"unix://{path}", _echo)
        assert log_events.named("transport.unix.stale_socket_removed")
        with pytest.raises(ConflictError) as live:
            await transport.serve(f"unix://{path}", _echo)
        assert live.value.code == "transport.address_in_use"
        conn = await transport.connect(f"unix://{path}")  # the first server still works
        await conn.send(Message.request("demo.echo", "still here"))
        assert (await conn.receive()).payload["echo"] == "still here"
        await conn.aclose()
        tg.cancel_scope.cancel()

    plain = sock_dir / "plain.sock"
    plain.write_text("not a socket")
    with pytest.raises(ConflictError) as not_socket:
        await transport.serve(f"unix://{plain}", _echo)
    assert not_socket.value.code == "transport.unix.not_a_socket"
    assert plain.read_text() == "not a socket"


@pytest.mark.anyio
async def test_wrong_uid_is_refused_logged_and_the_server_keeps_serving(sock_dir: Path, log_events) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    allowed = {os.getuid() + 4242}  # the refusal path: our own uid is not in the allowed set
    transport = UnixTransport()
    async with anyio.create_task_group() as tg:
        await tg.start(functools.partial(transport.serve, options={"allowed_uids": allowed}), url, _echo)
        conn = await transport.connect(url, options={"codec": "json"})
        refusal = await conn.receive()  # the server explains before closing
        with pytest.raises(PermissionDeniedError) as info:
            refusal.raise_if_error()
        assert info.value.code == "transport.peer_refused"
        assert info.value.context["uid"] == os.getuid()
        with pytest.raises(ConnectionClosed):
            await conn.receive()
        await conn.aclose()
        refused = log_events.named("transport.unix.peer_refused")
        assert refused and refused[0]["uid"] == os.getuid() and refused[0]["pid"] == os.getpid()

        allowed.add(os.getuid())  # the set is consulted on every accept: the server still serves
        ok = await transport.connect(url)
        await ok.send(Message.request("demo.echo", 1))
        assert (await ok.receive()).payload["echo"] == 1
        await ok.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_client_can_require_the_server_uid(sock_dir: Path) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    transport = UnixTransport()
    async with anyio.create_task_group() as tg:
        await tg.start(transport.serve, url, _echo)
        with pytest.raises(PermissionDeniedError) as info:
            await transport.connect(url, options={"server_uids": {os.getuid() + 1}})
        assert info.value.code == "transport.server_refused"
        conn = await transport.connect(url, options={"server_uids": {os.getuid()}})
        await conn.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_connect_errors(sock_dir: Path) -> None:
    transport = UnixTransport()
    with pytest.raises(TransportError) as missing:
        await transport.connect(f"unix://{sock_dir}/nothing.sock")
    assert missing.value.code == "transport.connect_failed"
    assert missing.value.hint and "server" in missing.value.hint
    dead = sock_dir / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()
    with pytest.raises(TransportError) as refused:
        await transport.connect(f"unix://{dead}")
    assert refused.value.context["errno"] is not None


@pytest.mark.anyio
async def test_connect_timeout_when_the_backlog_is_full(sock_dir: Path) -> None:
    from symphony.commons.errors import OperationTimeoutError

    path = str(sock_dir / "full.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(0)  # never accepts
    fillers = []
    try:
        for _ in range(64):
            f = socket.socket(socket.AF_UNIX)
            f.setblocking(False)
            try:
                f.connect(path)
            except BlockingIOError:
                f.close()
                break
            fillers.append(f)
        with pytest.raises(OperationTimeoutError) as info:
            await UnixTransport().connect(f"unix://{path}", options={"connect_timeout": 0.2})
        assert info.value.code == "transport.connect_timeout"
    finally:
        for f in fillers:
            f.close()
        listener.close()


@pytest.mark.anyio
async def test_peer_close_is_seen_and_credentials_helper(sock_dir: Path) -> None:
    a, b = socket.socketpair()
    assert peer_credentials(a)[1] == os.getuid()
    a.close()
    b.close()
    url = f"unix://{sock_dir}/bus.sock"
    transport = UnixTransport()

    async def close_at_once(conn: Connection) -> None:
        await conn.aclose()

    async with anyio.create_task_group() as tg:
        await tg.start(transport.serve, url, close_at_once)
        conn = await transport.connect(url)
        with anyio.fail_after(5), pytest.raises(ConnectionClosed):
            await conn.receive()
        await conn.aclose()
        tg.cancel_scope.cancel()
