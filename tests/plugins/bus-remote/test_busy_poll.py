"""Busy polling and its bound: a reader polls only while its side awaits an answer, within one
window of the last request sent, and never while idle (``_busypoll``), on both stream paths
(the loop-owned asyncio stream and the plain anyio one) and through a live link."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from symphony.bus._core import Bus
from symphony.bus._message import Message
from symphony.commons.errors import OperationTimeoutError
from symphony_bus_remote import BusClient, BusServer, SocketByteStream
from symphony_bus_remote._asyncio_stream import AsyncioSocketStream, running_asyncio_loop
from symphony_bus_remote._busypoll import RESUME_FACTOR, BusyPoll, BusyPollAttribute

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["fast", "plain"])
def stream_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both stream paths: the backend's fast path (on asyncio the loop adopts the socket; trio has
    none, so it is the plain one there too) and the plain anyio path (``SocketByteStream``) that
    is its fallback. Sockets whose peer is this process normally get no polling at all: here
    both ends are treated as if they were in different processes."""
    import symphony_bus_remote._socket_stream as socket_stream

    monkeypatch.setattr(socket_stream, "peer_is_this_process", lambda sock: False)
    if request.param == "plain":
        monkeypatch.setattr(socket_stream, "running_asyncio_loop", lambda: None)
    yield str(request.param)


def _busy(stream: anyio.abc.ByteStream) -> BusyPoll:
    busy = stream.extra(BusyPollAttribute.busy_poll, None)
    assert isinstance(busy, BusyPoll)
    return busy


# -- BusyPoll itself ---------------------------------------------------------------------------------


class _Park:
    """A park that counts its calls and sleeps ``seconds`` (or just yields once)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.seconds:
            await anyio.sleep(self.seconds)
        else:
            await anyio.lowlevel.checkpoint()


def _never() -> bool:
    return False


async def test_with_nothing_outstanding_the_reader_parks_at_once() -> None:
    busy = BusyPoll(5.0)
    park = _Park()
    tried: list[int] = []
    await busy.wait(lambda: bool(tried.append(1)), park)
    assert park.calls == 1 and busy.turns == 0 and tried == []
    busy.expect()
    busy.settle()  # answered: nothing outstanding again
    await busy.wait(_never, park)
    assert park.calls == 2 and busy.turns == 0 and busy.awaiting == 0


async def test_an_awaited_answer_is_polled_for_while_other_tasks_run() -> None:
    busy = BusyPoll(5.0)
    busy.expect()
    box: list[str] = []
    turns = 0

    async def other() -> None:
        nonlocal turns
        for _ in range(5):
            turns += 1
            await anyio.lowlevel.checkpoint()
        box.append("ready")

    park = _Park()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            await busy.wait(lambda: bool(box), park)
    assert box == ["ready"] and turns == 5
    assert park.calls == 0 and busy.turns >= 1  # caught by polling, never parked


async def test_polling_ends_with_the_window_of_the_last_request() -> None:
    busy = BusyPoll(0.002)
    busy.expect()
    park = _Park()
    await busy.wait(_never, park)  # nothing came within the window: polled, then parked
    assert park.calls == 1 and busy.turns >= 1
    spent = busy.turns
    await busy.wait(_never, park)  # still awaited, but its window is over: no more polling
    assert park.calls == 2 and busy.turns == spent
    busy.expect()  # the next request opens a new window
    await busy.wait(_never, park)
    assert park.calls == 3 and busy.turns > spent


async def test_an_answer_sent_opens_one_window_for_the_next_request() -> None:
    busy = BusyPoll(0.002)
    park = _Park()
    busy.answered()
    assert busy.polling() and busy.awaiting == 0
    await busy.wait(_never, park)  # no request came within the window: polled, then parked
    assert park.calls == 1 and busy.turns >= 1
    spent = busy.turns
    await busy.wait(_never, park)  # the window is over: it parks at once
    assert park.calls == 2 and busy.turns == spent and not busy.polling()


async def test_answer_windows_stop_when_requests_come_seldom() -> None:
    busy = BusyPoll(0.001)
    busy.answered()
    await busy.wait(_never, _Park(0.02))  # no request in the window, then a long park
    assert not busy.paying
    spent = busy.turns
    busy.answered()
    assert not busy.polling()
    await busy.wait(_never, _Park())  # a short park inside the window: polling may pay again
    assert busy.turns == spent and busy.paying


async def test_polling_stops_when_the_last_outstanding_request_is_over() -> None:
    busy = BusyPoll(60.0)  # a window far longer than the test: only settle() can end it
    busy.expect()
    busy.expect()
    at_settle: list[int] = []

    async def answers() -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        busy.settle()
        await anyio.lowlevel.checkpoint()
        busy.settle()  # the second answer: nothing is outstanding now
        at_settle.append(busy.turns)

    park = _Park()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(answers)
            await busy.wait(_never, park)
    assert park.calls == 1 and busy.awaiting == 0
    assert busy.turns <= at_settle[0] + 1  # it noticed at its next turn
    busy.settle()  # one too many does not go negative
    assert busy.awaiting == 0


async def test_polling_adapts_to_answers_it_cannot_catch() -> None:
    busy = BusyPoll(0.001)
    busy.expect()
    await busy.wait(_never, _Park(0.05))  # the answer took 50 windows: polling would not catch it
    assert not busy.paying
    busy.expect()  # even in a fresh window, it parks at once while polling does not pay
    spent = busy.turns
    await busy.wait(_never, _Park())
    assert busy.turns == spent
    busy.window = RESUME_FACTOR  # a park shorter than two windows: worth polling again
    await busy.wait(_never, _Park())
    assert busy.paying


async def test_a_park_while_idle_teaches_nothing() -> None:
    busy = BusyPoll(0.001)
    await busy.wait(_never, _Park(0.05))  # a long idle gap says nothing about answers
    assert busy.paying


async def test_a_zero_window_never_polls() -> None:
    busy = BusyPoll(0.0)
    busy.expect()
    park = _Park()
    await busy.wait(_never, park)
    assert busy.turns == 0 and park.calls == 1


# -- on the streams (both paths) ---------------------------------------------------------------------


async def _pair(window: float) -> tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]:
    from symphony_bus_remote import open_socket_stream

    a, b = socket.socketpair()
    return await open_socket_stream(a, busy_poll=window), await open_socket_stream(b, busy_poll=window)


async def test_each_path_exposes_its_busy_poll(stream_path: str, anyio_backend_name: str) -> None:
    a, b = await _pair(0.001)
    fast = stream_path == "fast" and running_asyncio_loop() is not None
    assert isinstance(a, AsyncioSocketStream if fast else SocketByteStream)
    assert _busy(a).window == 0.001
    await a.aclose()
    await b.aclose()
    quiet, other = await _pair(0.0)
    assert quiet.extra(BusyPollAttribute.busy_poll, None) is None
    await quiet.aclose()
    await other.aclose()


async def test_an_idle_stream_never_polls(stream_path: str) -> None:
    a, b = await _pair(5.0)  # a window longer than the test: only the bound keeps it from polling
    with anyio.fail_after(10):
        for i in range(20):
            await a.send(b"note%02d" % i)
            assert await b.receive(6) == b"note%02d" % i
            await anyio.sleep(0.001)
    assert _busy(b).turns == 0 and _busy(a).turns == 0
    await a.aclose()
    await b.aclose()


async def test_a_stream_polls_only_while_an_answer_is_awaited(stream_path: str) -> None:
    a, b = await _pair(5.0)
    busy = _busy(b)
    busy.expect()  # as the link does when it sends a request on b

    async def answer_soon() -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        await a.send(b"answer")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_soon)
            assert await b.receive(6) == b"answer"
    polled = busy.turns
    assert polled >= 1
    busy.settle()  # the answer arrived: nothing is outstanding
    with anyio.fail_after(10):
        for _ in range(5):
            await a.send(b"later!")
            assert await b.receive(6) == b"later!"
    assert busy.turns == polled
    await a.aclose()
    await b.aclose()


# -- through a live link ----------------------------------------------------------------------------


@asynccontextmanager
async def _linked(sock_dir: Path, window: float) -> AsyncIterator[tuple[Bus, BusyPoll, BusyPoll, BusClient]]:
    """A BusServer and a BusClient over a Unix socket, both polling with ``window``; yields the
    bus, the server's and the client's busy polls, and the client."""
    url = f"unix://{sock_dir}/poll.sock"
    async with (
        Bus(config={"busy_poll": min(window, 0.01)}) as bus,
        BusServer(bus, url) as server,
        BusClient.connect(server.url, options={"busy_poll": window}) as client,
    ):
        assert client._link is not None
        (peer,) = server.peers.values()
        server_busy = peer.conn.extra(BusyPollAttribute.busy_poll)  # type: ignore[attr-defined]
        client_busy = client._link.conn.extra(BusyPollAttribute.busy_poll)  # type: ignore[attr-defined]
        assert isinstance(server_busy, BusyPoll) and isinstance(client_busy, BusyPoll)
        yield bus, server_busy, client_busy, client


async def test_events_and_idle_never_poll_an_answer_polls_one_window(stream_path: str, sock_dir: Path) -> None:
    async with _linked(sock_dir, 5.0) as (bus, server_busy, client_busy, client):
        bus.handle("demo.echo", lambda msg: msg.payload)
        async with client.subscribe("demo.tick") as ticks:
            # The subscription itself was a request: the client's reader may have begun a turn
            # before the requester took the answer, and the server polls for its 0.01 s window
            # after answering it; both are over by now.
            await anyio.sleep(0.05)
            settled, server_settled = client_busy.turns, server_busy.turns
            assert client_busy.awaiting == 0
            for i in range(20):
                await bus.publish(Message("demo.tick", i))
                assert (await ticks.receive(timeout=10)).payload == i
                await anyio.sleep(0.002)
            assert client_busy.turns == settled  # events alone never make it poll
            assert server_busy.turns == server_settled  # nor the server that sends them
            for i in range(20):
                assert (await client.request("demo.echo", i, timeout=10)).payload == i
        # The server answers, it never awaits an answer; once the window of its last answer
        # is over, it parks at once.
        assert server_busy.awaiting == 0
        await anyio.sleep(0.05)
        answered = server_busy.turns
        await anyio.sleep(0.05)
        assert server_busy.turns == answered


@pytest.mark.parametrize("ending", ["answered", "timed out"])
async def test_an_outstanding_request_polls_at_most_its_window_then_stops(
    ending: str, stream_path: str, sock_dir: Path
) -> None:
    """While a slow request is outstanding, events keep waking the client's reader: it polls
    only within the window opened by the request, and not at all once the request is over."""
    window = 0.2
    async with _linked(sock_dir, window) as (bus, server_busy, client_busy, client):
        after_window: list[int] = []
        release = anyio.Event()

        async def slow(msg: Message) -> str:
            for _ in range(15):  # events every 20 ms for 0.3 s: the reader wakes and waits again
                await bus.publish(Message("demo.tick", None))
                await anyio.sleep(0.02)
            after_window.append(client_busy.turns)  # 0.3 s in: the window closed 0.1 s ago
            for _ in range(10):
                await bus.publish(Message("demo.tick", None))
                await anyio.sleep(0.02)
            after_window.append(client_busy.turns)
            await release.wait()
            return "done"

        bus.handle("demo.slow", slow)
        async with client.subscribe("demo.tick"):
            start = client_busy.turns
            if ending == "answered":
                release.set()
                assert (await client.request("demo.slow", timeout=30)).payload == "done"
            else:
                with pytest.raises(OperationTimeoutError):
                    await client.request("demo.slow", timeout=1.0)
                release.set()
            assert client_busy.awaiting == 0
            with anyio.fail_after(30):
                while len(after_window) < 2:  # a loaded machine may stretch the handler's 0.5 s
                    await anyio.sleep(0.01)
            await anyio.sleep(0.01)  # a turn begun before the request was over ends at once
            assert after_window[0] > start  # it did poll within the window
            assert after_window[1] == after_window[0]  # and not after it, though still awaiting
            await anyio.sleep(0.05)  # the server's window after its last answer (0.01 s) closes
            over, server_over = client_busy.turns, server_busy.turns
            for _ in range(10):  # nothing outstanding: events wake it, it never polls
                await bus.publish(Message("demo.tick", None))
                await anyio.sleep(0.01)
            assert client_busy.turns == over
            assert server_busy.turns == server_over  # sending events never makes the server poll
