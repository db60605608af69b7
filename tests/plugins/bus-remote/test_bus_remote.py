"""BusServer and BusClient over real transports: memory, Unix sockets and TCP."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.bus._core import Bus
from symphony.bus._message import Message
from symphony.bus._transport import open_transport
from symphony.commons.errors import (
    NotFoundError,
    OperationTimeoutError,
    PermissionDeniedError,
    SerializationError,
    SymphonyError,
    TransportError,
    ValidationError,
)
from symphony_bus_remote import Backoff, BusClient, BusServer

TOKEN = "remote-test-token"


def _url(kind: str, sock_dir: Path) -> tuple[str, dict[str, Any]]:
    if kind == "memory":
        return f"memory://remote-{os.urandom(4).hex()}", {}
    if kind == "unix":
        return f"unix://{sock_dir}/bus.sock", {}
    return "tcp://127.0.0.1:0", {"token": TOKEN}


@asynccontextmanager
async def _served(
    kind: str, sock_dir: Path, **server_kw: Any
) -> AsyncIterator[tuple[Bus, BusServer, dict[str, Any]]]:
    url, options = _url(kind, sock_dir)
    async with Bus() as bus, BusServer(bus, url, options=options, **server_kw) as server:
        yield bus, server, options


def _widget_error() -> ValidationError:
    return ValidationError(
        "the widget is too large",
        code="demo.widget_too_large",
        context={"size": 12, "limit": 10, "nested": {"unit": "cm"}},
        hint="use a smaller widget",
    )


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "unix", "tcp"])
@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_request_response_one_way_and_errors(kind: str, codec: str, sock_dir: Path) -> None:
    async with _served(kind, sock_dir) as (bus, server, options):

        async def add(msg: Message) -> int:
            return int(msg.payload["a"] + msg.payload["b"])

        def fail(msg: Message) -> None:
            raise _widget_error()

        bus.handle("demo.add", add)
        bus.handle("demo.fail", fail)
        seen: list[Message] = []
        bus.subscribe_callback("demo.note", seen.append)
        async with BusClient.connect(server.url, codec=codec, options=options) as client:
            reply = await client.request("demo.add", {"a": 2, "b": 3}, timeout=5)
            assert reply.kind == "response" and reply.payload == 5
            assert server.peers and next(iter(server.peers.values())).conn.codec.name == codec

            with pytest.raises(ValidationError) as info:
                await client.request("demo.fail", timeout=5)
            err = info.value
            assert type(err) is ValidationError
            assert (err.code, err.message, err.hint) == (
                "demo.widget_too_large",
                "the widget is too large",
                "use a smaller widget",
            )
            assert err.context == {"size": 12, "limit": 10, "nested": {"unit": "cm"}}

            with pytest.raises(NotFoundError) as no_route:
                await client.request("demo.nobody", timeout=5)
            assert no_route.value.code == "bus.no_route"

            await client.send("demo.note", {"n": 1}, headers={"trace": "t-1"})
            await client.send_many([("demo.note", {"n": 2}), Message("demo.note", {"n": 3})])
            with anyio.fail_after(5):
                while len(seen) < 3:
                    await anyio.sleep(0.005)
            assert [m.payload["n"] for m in seen] == [1, 2, 3]
            assert seen[0].headers == {"trace": "t-1"}


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "unix"])
async def test_subscriptions_are_exact_ordered_and_unsubscribe(kind: str, sock_dir: Path) -> None:
    async with (
        _served(kind, sock_dir) as (bus, server, options),
        BusClient.connect(server.url, options=options) as c,
    ):
        async with c.subscribe("news.#") as everything, c.subscribe("news.sport.*") as sport:
            await bus.publish(Message("news.sport.tennis", {"n": 1}, headers={"lang": "en"}))
            await bus.publish(Message("news.weather", {"n": 2}))
            await c.send("news.sport.golf", {"n": 3})  # a client's own event comes back like any other
            got_all = [await everything.receive(timeout=5) for _ in range(3)]
            got_sport = [await sport.receive(timeout=5) for _ in range(2)]
            assert [m.payload["n"] for m in got_all] == [1, 2, 3]
            assert [m.payload["n"] for m in got_sport] == [1, 3]
            assert got_all[0].headers == {"lang": "en"}  # the routing header is not handed over
            with pytest.raises(OperationTimeoutError):
                await sport.receive(timeout=0.05)  # no duplicates from the overlapping patterns
        await bus.publish(Message("news.sport.chess", {}))
        with anyio.fail_after(5):
            while bus.subscriptions():
                await anyio.sleep(0.005)  # the server dropped the forwarding subscriptions


@pytest.mark.anyio
async def test_plain_iteration_registers_before_waiting(sock_dir: Path) -> None:
    async with _served("unix", sock_dir) as (bus, server, _), BusClient.connect(server.url) as c:
        sub = c.subscribe("late.*")
        got: list[Any] = []

        async def consume() -> None:
            async for msg in sub:
                got.append(msg.payload)
                break

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            with anyio.fail_after(5):
                while not bus.subscriptions("late.*"):
                    await anyio.sleep(0.005)
            await bus.publish(Message("late.one", "ok"))
        assert got == ["ok"]
        await sub.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "unix", "tcp"])
async def test_client_handlers_answer_server_requests(kind: str, sock_dir: Path) -> None:
    async with _served(kind, sock_dir) as (bus, server, options):
        async with BusClient.connect(
            server.url, options=options, name="worker", capabilities=["gpu"]
        ) as client:

            def square(msg: Message) -> int:
                return int(msg.payload) ** 2

            def refuse(msg: Message) -> None:
                raise PermissionDeniedError("not for you", code="demo.denied", context={"who": "server"})

            handle = await client.handle("work.square", square)
            await client.handle("work.refuse", refuse)
            assert bus.endpoints.names() == ["worker#1"]
            assert bus.endpoints.with_capability("gpu")[0].name == "worker#1"
            assert (await bus.request("work.square", 7, timeout=5)).payload == 49
            with pytest.raises(PermissionDeniedError) as info:
                await bus.request("work.refuse", timeout=5)
            assert info.value.code == "demo.denied" and info.value.context == {"who": "server"}

            # A second client's request is routed through the server to the first client.
            async with BusClient.connect(server.url, options=options) as other:
                assert (await other.request("work.square", 9, timeout=5)).payload == 81

            await client.unhandle(handle)
            with pytest.raises(NotFoundError):
                await bus.request("work.square", 7, timeout=5)
        with anyio.fail_after(5):
            while bus.endpoints.names():
                await anyio.sleep(0.005)
        with pytest.raises(NotFoundError):
            await bus.request("work.refuse", timeout=5)


@pytest.mark.anyio
async def test_request_timeout_leaves_no_waiter(sock_dir: Path) -> None:
    async with _served("unix", sock_dir) as (bus, server, _):

        async def slow(msg: Message) -> str:
            await anyio.sleep(10)
            return "late"

        bus.handle("demo.slow", slow)
        async with BusClient.connect(server.url) as client:
            with pytest.raises(OperationTimeoutError) as info:
                await client.request("demo.slow", timeout=0.1)
            assert info.value.code == "bus.request_timeout"
            link = client._link
            assert link is not None and len(link.pending) == 0
            with anyio.move_on_after(0.05):
                await client.request("demo.slow", timeout=5)  # cancelled by the caller
            assert len(link.pending) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "unix"])
async def test_server_deadline_cancels_a_remote_request_and_the_link_goes_on(kind: str, sock_dir: Path) -> None:
    """A peer's request whose handler runs past the server bus's default_timeout is
    cancelled and answered with bus.request_timeout; the worker that ran it keeps serving."""
    url, options = _url(kind, sock_dir)
    cancelled: list[str] = []
    async with Bus(config={"default_timeout": 0.2}) as bus, BusServer(bus, url, options=options) as server:

        async def slow(msg: Message) -> str:
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                cancelled.append(str(msg.payload))
                raise
            return "late"

        async def stubborn(msg: Message) -> str:
            # Swallows the cancellation and answers anyway: the peer still gets exactly one
            # answer (this one if it could be sent without waiting, else the timeout error).
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                return "answered anyway"
            return "never"

        async def quick(msg: Message) -> Any:
            return msg.payload

        async def nap(msg: Message) -> Any:
            await anyio.sleep(0.01)  # waits, but well within the deadline
            return msg.payload

        bus.handle("demo.slow", slow)
        bus.handle("demo.stubborn", stubborn)
        bus.handle("demo.quick", quick)
        bus.handle("demo.nap", nap)
        async with BusClient.connect(server.url, options=options) as client:
            with anyio.fail_after(10):
                with pytest.raises(OperationTimeoutError) as info:
                    await client.request("demo.slow", "first", timeout=5)
            assert info.value.code == "bus.request_timeout"
            assert info.value.context["timeout"] == 0.2
            assert info.value.context["target"].startswith("peer:")
            assert cancelled == ["first"]
            assert bus.metrics.timeouts == 1 and bus.metrics.errors == 1  # counted as dispatch counts
            assert len(bus.pending) == 0
            # The link and its workers go on: waiting and immediate answers both still work.
            for i in range(20):
                assert (await client.request("demo.nap", i, timeout=5)).payload == i
                assert (await client.request("demo.quick", i, timeout=5)).payload == i
            try:
                reply = await client.request("demo.stubborn", timeout=5)
            except OperationTimeoutError as exc:
                assert exc.code == "bus.request_timeout"
            else:
                assert reply.payload == "answered anyway"
            # Several slow ones at once: each gets its own timeout, none blocks the others.
            async with anyio.create_task_group() as tg:
                errors: list[str] = []

                async def ask(n: int) -> None:
                    try:
                        await client.request("demo.slow", f"batch-{n}", timeout=5)
                    except OperationTimeoutError as exc:
                        errors.append(exc.code)

                for n in range(5):
                    tg.start_soon(ask, n)
                assert (await client.request("demo.quick", "meanwhile", timeout=5)).payload == "meanwhile"
            assert errors == ["bus.request_timeout"] * 5
            assert sorted(cancelled[1:]) == [f"batch-{n}" for n in range(5)]
            assert (await client.request("demo.nap", "after", timeout=5)).payload == "after"
            link = client._link
            assert link is not None and link.pending.orphans == 0  # never two answers to one request


@pytest.mark.anyio
async def test_client_handler_deadline_answers_the_server_with_a_timeout(sock_dir: Path) -> None:
    async with _served("unix", sock_dir) as (bus, server, _):
        async with BusClient.connect(server.url, handler_timeout=0.2) as client:

            async def stuck(msg: Message) -> str:
                await anyio.sleep(30)
                return "late"

            await client.handle("work.stuck", stuck)
            await client.handle("work.echo", lambda msg: msg.payload)
            with anyio.fail_after(10), pytest.raises(OperationTimeoutError) as info:
                await bus.request("work.stuck", timeout=5)
            assert info.value.code == "bus.request_timeout"
            assert info.value.context["target"] == "client:client"
            assert client.local.metrics.timeouts == 1
            assert (await bus.request("work.echo", "still here", timeout=5)).payload == "still here"


@pytest.mark.anyio
async def test_reserved_types_and_bad_input_are_rejected(sock_dir: Path) -> None:
    async with _served("memory", sock_dir) as (_, server, _opts), BusClient.connect(server.url) as client:
        for call in (client.request("_bus.ping"), client.send("_bus.hello")):
            with pytest.raises(ValidationError) as info:
                await call
            assert info.value.code == "bus.reserved_type"
        with pytest.raises(ValidationError):
            await client.publish(Message.request("demo.x"))
        with pytest.raises(ValidationError):
            client.subscribe("bad..pattern")
        with pytest.raises(SerializationError):
            await client.request("demo.x", {"not json": {1, 2}})


@pytest.mark.anyio
async def test_handshake_refusals(sock_dir: Path, log_events: Any) -> None:
    async with _served("unix", sock_dir, codecs=["json"]) as (bus, server, _):
        transport = open_transport(server.url)
        # A peer speaking another protocol version, then one with no codec in common.
        for payload, code in (
            ({"protocol": 99, "codecs": ["json"]}, "bus.protocol_mismatch"),
            ({"protocol": 1, "codecs": ["cbor"]}, "bus.no_common_codec"),
        ):
            conn = await transport.connect(server.url, options={"codec": "json"})
            await conn.send(Message.request("_bus.hello", payload))
            answer = await conn.receive()
            with pytest.raises(SymphonyError) as info:
                answer.raise_if_error()
            assert info.value.code == code
            await conn.aclose()
        codes = [e["code"] for e in log_events.named("bus.remote.handshake_failed")]
        assert codes == ["bus.protocol_mismatch", "bus.no_common_codec"]
        # A client preferring msgpack also offers json, and the server settles on that.
        bus.handle("demo.echo", lambda m: m.payload)
        async with BusClient.connect(server.url, codec="msgpack") as ok:
            assert (await ok.request("demo.echo", "json only", timeout=5)).payload == "json only"
            assert next(iter(server.peers.values())).conn.codec.name == "json"


@pytest.mark.anyio
async def test_garbage_on_the_socket_is_refused_while_others_are_served(
    sock_dir: Path, log_events: Any
) -> None:
    async with _served("unix", sock_dir) as (bus, server, _):
        bus.handle("demo.echo", lambda msg: msg.payload)
        async with BusClient.connect(server.url) as good:
            raw = socket.socket(socket.AF_UNIX)
            raw.connect(server.url[len("unix://") :])
            raw.sendall(os.urandom(64) + b"\xff\xff\xff\xff" + b"\x00" * 32)
            raw.settimeout(5)
            with anyio.fail_after(10):
                while True:
                    data = await anyio.to_thread.run_sync(raw.recv, 65536)
                    if not data:
                        break
            raw.close()
            assert log_events.named("bus.remote.handshake_failed")
            assert (await good.request("demo.echo", "fine", timeout=5)).payload == "fine"
            # Garbage after a good handshake drops only that connection.
            transport = open_transport(server.url)
            conn = await transport.connect(server.url, options={"codec": "json"})
            await conn.send(
                Message.request("_bus.hello", {"protocol": 1, "codecs": ["json"], "name": "rogue"})
            )
            assert (await conn.receive()).kind == "response"
            await conn.framed.stream.send(b"\xff\xff\xff\xffjunk")
            with anyio.fail_after(5):
                while any(p.startswith("rogue") for p in bus.endpoints.names()):
                    await anyio.sleep(0.005)
            await conn.aclose()
            assert (await good.request("demo.echo", "still fine", timeout=5)).payload == "still fine"


@pytest.mark.anyio
async def test_server_drops_a_silent_peer_after_the_heartbeat_timeout(sock_dir: Path) -> None:
    async with _served("unix", sock_dir, heartbeat_interval=0.05, heartbeat_timeout=0.2) as (bus, server, _):
        transport = open_transport(server.url)
        conn = await transport.connect(server.url, options={"codec": "json"})
        await conn.send(Message.request("_bus.hello", {"protocol": 1, "codecs": ["json"], "name": "mute"}))
        assert (await conn.receive()).kind == "response"
        assert [n for n in bus.endpoints.names() if n.startswith("mute")]
        # It answers nothing (pings pile up unread): the server must let it go.
        with anyio.fail_after(10):
            while [n for n in bus.endpoints.names() if n.startswith("mute")]:
                await anyio.sleep(0.01)
        await conn.aclose()


@pytest.mark.anyio
async def test_wrong_token_over_tcp_is_refused_by_the_client_api(sock_dir: Path) -> None:
    async with _served("tcp", sock_dir) as (bus, server, options):
        with pytest.raises(PermissionDeniedError) as info:
            async with BusClient.connect(server.url, options={"token": "wrong"}):
                pass
        assert info.value.code == "transport.auth_failed"
        async with BusClient.connect(server.url, options=options) as ok:
            bus.handle("demo.echo", lambda m: m.payload)
            assert (await ok.request("demo.echo", 1, timeout=5)).payload == 1


@pytest.mark.anyio
async def test_connect_fails_fast_unless_asked_to_wait(sock_dir: Path) -> None:
    url = f"unix://{sock_dir}/later.sock"
    with pytest.raises(TransportError) as info:
        async with BusClient.connect(url):
            pass
    assert info.value.code == "transport.connect_failed"

    async with anyio.create_task_group() as tg:

        async def start_later() -> None:
            await anyio.sleep(0.2)
            async with Bus() as bus, BusServer(bus, url):
                bus.handle("demo.echo", lambda m: m.payload)
                await anyio.sleep_forever()

        tg.start_soon(start_later)
        policy = Backoff(initial_delay=0.02, max_delay=0.05)
        with anyio.fail_after(10):
            async with BusClient.connect(url, wait_for_server=True, reconnect=policy) as client:
                assert (await client.request("demo.echo", "waited", timeout=5)).payload == "waited"
        tg.cancel_scope.cancel()


# -- against a server in another process -------------------------------------------------------------


@pytest.mark.anyio
async def test_killed_server_fails_pending_requests_and_the_client_reconnects(
    sock_dir: Path, server_process: Any
) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    policy = Backoff(initial_delay=0.01, max_delay=0.05)
    async with server_process(url) as first:
        async with BusClient.connect(
            first.url, reconnect=policy, heartbeat_interval=5, heartbeat_timeout=20
        ) as client:
            assert (await client.request("demo.pid", timeout=10)).payload == first.pid
            sub = client.subscribe("news.*")
            await sub.wait_registered()
            errors: list[SymphonyError] = []

            async def slow_request() -> None:
                try:
                    await client.request("demo.slow", 60, timeout=120)
                except SymphonyError as exc:
                    errors.append(exc)

            with anyio.fail_after(30):  # a safety net only: the failure must come from EOF, not a timeout
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(slow_request)
                    while len(client._link.pending) < 3:  # type: ignore[union-attr]
                        await anyio.sleep(0.005)
                    await first.kill()
            assert len(errors) == 3
            assert all(isinstance(e, TransportError) and e.code == "transport.peer_lost" for e in errors)

            async with server_process(url) as second:
                with anyio.fail_after(30):
                    reply = await client.request("demo.pid", timeout=20)
                assert reply.payload == second.pid != first.pid
                assert client.connections == 2
                # The subscription was registered again on the new server.
                await client.request("demo.publish", {"type": "news.flash", "count": 2}, timeout=10)
                assert [(await sub.receive(timeout=10)).payload["i"] for _ in range(2)] == [0, 1]
            await sub.aclose()


@pytest.mark.anyio
async def test_without_reconnect_a_lost_server_is_a_disconnected_error(
    sock_dir: Path, server_process: Any
) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    async with server_process(url) as server, BusClient.connect(server.url, reconnect=False) as client:
        assert (await client.request("demo.echo", 1, timeout=10)).payload == 1
        await server.kill()
        with anyio.fail_after(30):
            while client.connected:
                await anyio.sleep(0.005)
        with pytest.raises(TransportError) as info:
            await client.request("demo.echo", 2, timeout=10)
        assert info.value.code == "transport.disconnected"


@pytest.mark.anyio
async def test_a_hung_server_is_noticed_by_heartbeats(sock_dir: Path, server_process: Any) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    async with server_process(url) as server:
        async with BusClient.connect(
            server.url, reconnect=False, heartbeat_interval=0.05, heartbeat_timeout=0.25
        ) as client:
            assert (await client.request("demo.echo", 1, timeout=10)).payload == 1
            os.kill(server.pid, signal.SIGSTOP)  # alive, connected, silent
            try:
                with anyio.fail_after(30), pytest.raises(TransportError) as info:
                    await client.request("demo.echo", 2, timeout=25)
                assert info.value.code in {"transport.peer_lost", "transport.disconnected"}
            finally:
                os.kill(server.pid, signal.SIGCONT)


@pytest.mark.anyio
async def test_tcp_server_process_with_token(server_process: Any) -> None:
    async with server_process("tcp://127.0.0.1:0", "--token", TOKEN) as server:
        async with BusClient.connect(server.url, options={"token": TOKEN}, codec="json") as client:
            assert (await client.request("demo.echo", {"over": "tcp"}, timeout=10)).payload == {"over": "tcp"}
            assert client._link is not None  # a server in another process: the client busy-polls
            assert client._link.conn.framed.stream._busy is not None  # type: ignore[attr-defined]
            with pytest.raises(ValidationError) as info:
                await client.request("demo.fail", timeout=10)
            assert info.value.context == {"size": 12, "limit": 10, "nested": {"unit": "cm"}}


@pytest.mark.anyio
@pytest.mark.parametrize("busy_poll", [0, 0.0005])
async def test_bus_busy_poll_setting_reaches_the_server_streams(
    busy_poll: float, sock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[bus] busy_poll configures the server's socket readers; a client sets its own. (Both
    ends live in this process here, where polling is switched off: pretend they do not.)"""
    import symphony_bus_remote._socket_stream as socket_stream

    monkeypatch.setattr(socket_stream, "peer_is_this_process", lambda sock: False)
    url = f"unix://{sock_dir}/bus.sock"
    async with Bus(config={"busy_poll": busy_poll}) as bus, BusServer(bus, url) as server:
        bus.handle("demo.echo", lambda msg: msg.payload)
        async with BusClient.connect(server.url, options={"busy_poll": 0.0002}) as client:
            assert (await client.request("demo.echo", "hi", timeout=5)).payload == "hi"
            (peer,) = server.peers.values()
            server_side = peer.conn.framed.stream._busy  # type: ignore[attr-defined]
            assert client._link is not None
            client_side = client._link.conn.framed.stream._busy  # type: ignore[attr-defined]
    if busy_poll:
        assert server_side is not None and server_side.window == busy_poll
    else:
        assert server_side is None
    assert client_side is not None and client_side.window == 0.0002


@pytest.mark.anyio
async def test_requests_beyond_max_workers_queue_and_idle_workers_retire(sock_dir: Path) -> None:
    """With max_workers=2, ten waiting requests at once: two run, the rest queue (and reading
    pauses once the queue is full), all are answered; the surplus workers later retire."""
    url = f"unix://{sock_dir}/bus.sock"
    running = 0
    most = 0

    async with Bus() as bus, BusServer(bus, url, max_workers=2) as server:

        async def nap(msg: Message) -> Any:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await anyio.sleep(0.02)
            running -= 1
            return msg.payload

        bus.handle("demo.nap", nap)
        async with BusClient.connect(server.url) as client:
            answers: list[Any] = []

            async def ask(n: int) -> None:
                answers.append((await client.request("demo.nap", n, timeout=10)).payload)

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for n in range(10):
                        tg.start_soon(ask, n)
            assert sorted(answers) == list(range(10))
            assert most <= 2  # never more than max_workers answers at once

    # Surplus idle workers (above the 4 kept) retire after a quiet second.
    async with Bus() as bus, BusServer(bus, url) as server:
        bus.handle("demo.nap", nap)
        async with BusClient.connect(server.url) as client:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for n in range(10):
                        tg.start_soon(client.request, "demo.nap", n)
            (peer,) = server.peers.values()
            workers = peer._workers
            assert workers is not None and workers._count > 4
            with anyio.fail_after(10):
                while workers._count > 5:  # 4 kept idle + the reader
                    await anyio.sleep(0.1)
            assert (await client.request("demo.nap", "still", timeout=5)).payload == "still"


async def _raw_unix_server(path: str, answer: Any, served: list[int], ready: anyio.Event) -> None:
    """Accept on ``path`` and give each connection to ``answer(sock)`` (then close it)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    listener.setblocking(False)
    ready.set()
    try:
        while True:
            await anyio.wait_readable(listener)
            conn, _ = listener.accept()
            served.append(1)
            try:
                await answer(conn)
            finally:
                conn.close()
    finally:
        listener.close()
        os.unlink(path)


@pytest.mark.anyio
async def test_a_handshake_broken_by_a_dying_server_is_retried(sock_dir: Path) -> None:
    """A server that accepts and then drops the connection before answering the handshake
    (going down, or still coming up) does not make the client give up: it retries, and
    connects once a real server listens."""
    path = str(sock_dir / "bus.sock")
    served: list[int] = []

    async def hang_up(conn: socket.socket) -> None:
        pass  # closed at once: the client's handshake reads end of file

    policy = Backoff(initial_delay=0.01, max_delay=0.02)
    async with anyio.create_task_group() as tg:
        ready = anyio.Event()
        dying = anyio.CancelScope()

        async def run_dying() -> None:
            with dying:
                await _raw_unix_server(path, hang_up, served, ready)

        tg.start_soon(run_dying)
        await ready.wait()

        async def replace_server() -> None:
            while len(served) < 2:
                await anyio.sleep(0.005)
            dying.cancel()  # the dying server goes; a real one takes its place
            await anyio.sleep(0.05)
            async with Bus() as bus, BusServer(bus, f"unix://{path}"):
                bus.handle("demo.echo", lambda msg: msg.payload)
                await anyio.sleep(30)

        tg.start_soon(replace_server)
        with anyio.fail_after(20):
            async with BusClient.connect(f"unix://{path}", wait_for_server=True, reconnect=policy) as client:
                assert (await client.request("demo.echo", "made it", timeout=5)).payload == "made it"
                assert client._reconnector.attempts >= 3
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_refused_handshake_is_not_retried(sock_dir: Path) -> None:
    """A server that answers the handshake with a protocol error: retrying cannot help, so the
    client fails at once with that error, after one connection."""
    from symphony.bus._codecs import get_codec
    from symphony_bus_remote import encode_frame

    path = str(sock_dir / "bus.sock")
    served: list[int] = []
    refusal = Message(
        "_bus.refused",
        TransportError("wrong protocol", code="bus.protocol_mismatch").to_wire(),
        kind="error",
    )

    async def refuse(conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.recv(65536)
        conn.sendall(encode_frame(get_codec("json").encode(refusal)))

    async with anyio.create_task_group() as tg:
        ready = anyio.Event()
        tg.start_soon(_raw_unix_server, path, refuse, served, ready)
        await ready.wait()
        with anyio.fail_after(20), pytest.raises(TransportError) as info:
            async with BusClient.connect(
                f"unix://{path}", wait_for_server=True, reconnect=Backoff(initial_delay=0.01, max_delay=0.02)
            ):
                pass
        assert info.value.code == "bus.protocol_mismatch"
        assert served == [1]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["memory", "unix"])
@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_a_traffic_subscription_shows_another_clients_requests_and_answers(
    kind: str, codec: str, sock_dir: Path
) -> None:
    async with _served(kind, sock_dir) as (bus, server, options):
        bus.handle("demo.echo", lambda msg: {"echo": msg.payload})
        async with (
            BusClient.connect(server.url, options=options, codec=codec) as watcher,
            BusClient.connect(server.url, options=options, codec=codec) as caller,
        ):
            async with watcher.subscribe("demo.#", traffic=True) as traffic:
                assert traffic.policy == "drop-oldest"
                reply = await caller.request("demo.echo", {"n": 1}, timeout=10)
                with pytest.raises(NotFoundError):
                    await caller.request("demo.unrouted", timeout=10)
                await caller.send("demo.tick", {"n": 2})
                seen = [await traffic.receive(timeout=10) for _ in range(5)]
    assert [(m.kind, m.type) for m in seen] == [
        ("request", "demo.echo"),
        ("response", "demo.echo"),
        ("request", "demo.unrouted"),
        ("error", "demo.unrouted"),
        ("event", "demo.tick"),
    ]
    assert seen[0].payload == {"n": 1} and seen[1].payload == {"echo": {"n": 1}}
    assert seen[1].id == reply.id and seen[1].correlation_id == seen[0].id == reply.correlation_id
    assert seen[3].payload["code"] == "bus.no_route"
    assert seen[4].payload == {"n": 2}


@pytest.mark.anyio
async def test_serving_an_open_kernels_bus_before_its_tasks_first_ran(symphony_kernel_factory: Any) -> None:
    """An open kernel schedules its bus's tasks in its task group; a server started before they
    first ran must not start them a second time (trio runs the two in either order)."""
    from symphony_sdk.testing import open_test_kernel

    async with open_test_kernel() as kernel:
        bus = kernel.bus  # schedules bus.run in the kernel's task group, not run yet
        assert bus.started and not bus.running
        bus.handle("demo.echo", lambda msg: msg.payload)
        async with BusServer(bus, f"memory://kernel-{os.urandom(4).hex()}", kernel=kernel) as server:
            async with BusClient.connect(server.url) as client:
                assert (await client.request("demo.echo", "hi", timeout=5)).payload == "hi"
            assert bus.running
