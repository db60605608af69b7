"""The socket byte streams under both backends (``open_socket_stream``: the loop-owned
``AsyncioSocketStream`` on asyncio, ``SocketByteStream`` on trio) and the busy-poll option
(its bound: ``test_busy_poll.py``)."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.bus._config import BusConfig
from symphony.commons.errors import ConfigError
from symphony_bus_remote import SocketByteStream, common_options, open_socket_stream, peer_credentials
from symphony_bus_remote._asyncio_stream import READ_HIGH_WATER, AsyncioSocketStream, running_asyncio_loop
from symphony_bus_remote._busypoll import DEFAULT_BUSY_POLL, BusyPollAttribute

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Besides the suite's asyncio and trio: asyncio on uvloop, whose transports are not
    asyncio's own classes (``symphony serve`` uses it when installed)."""
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return request.param


_PATH = {"name": "fast"}


@pytest.fixture(autouse=True, params=["fast", "plain"])
def stream_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every stream test runs on both paths: the backend's fast path (the loop adopts the socket
    on asyncio; trio has none, so it is the plain one there too) and the plain anyio path
    (``SocketByteStream``) that is its fallback."""
    _PATH["name"] = str(request.param)
    yield _PATH["name"]
    _PATH["name"] = "fast"


async def _pair(busy_poll: float = DEFAULT_BUSY_POLL) -> tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]:
    """Two connected streams of this backend's kind on the path under test, polling as asked.
    (Built directly: ``open_socket_stream`` turns polling off between two ends of one process.)"""
    a, b = socket.socketpair()
    if _PATH["name"] == "fast" and running_asyncio_loop() is not None:
        return (
            await AsyncioSocketStream.wrap(a, busy_poll=busy_poll),
            await AsyncioSocketStream.wrap(b, busy_poll=busy_poll),
        )
    return SocketByteStream(a, busy_poll=busy_poll), SocketByteStream(b, busy_poll=busy_poll)


async def _read_exactly(stream: anyio.abc.ByteStream, size: int, max_bytes: int = 65536) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = await stream.receive(max_bytes)
        assert 0 < len(chunk) <= max_bytes
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class _LoopThatCannotAdopt(asyncio.SelectorEventLoop):
    """An asyncio loop without ``connect_accepted_socket`` (as some third-party loops are)."""

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def test_a_loop_that_cannot_adopt_sockets_falls_back_to_the_plain_stream() -> None:
    async def main() -> None:
        left, right = socket.socketpair()
        a, b = await open_socket_stream(left), await open_socket_stream(right)
        assert isinstance(a, SocketByteStream) and isinstance(b, SocketByteStream)
        await a.send(b"ping")
        assert await b.receive() == b"ping"
        await a.aclose()
        await b.aclose()

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": _LoopThatCannotAdopt})


async def test_the_backend_picks_its_stream(anyio_backend_name: str) -> None:
    left, right = socket.socketpair()
    a, b = await open_socket_stream(left), await open_socket_stream(right)
    expected = AsyncioSocketStream if anyio_backend_name == "asyncio" else SocketByteStream
    assert isinstance(a, expected) and isinstance(b, expected)
    # Both ends are this process: polling for a peer that shares our event loop cannot help.
    assert a._busy is None and b._busy is None  # type: ignore[attr-defined]
    await a.aclose()
    await b.aclose()


async def test_a_peer_in_another_process_gets_busy_polling(sock_dir: Any) -> None:
    path = str(sock_dir / "peer.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    code = f"import socket, time; s = socket.socket(socket.AF_UNIX); s.connect({path!r}); time.sleep(30)"
    child = await anyio.open_process([sys.executable, "-c", code])
    try:
        with anyio.fail_after(10):
            conn, _ = await anyio.to_thread.run_sync(listener.accept)
        stream = await open_socket_stream(conn)
        assert peer_credentials(conn)[0] == child.pid
        assert stream._busy is not None  # type: ignore[attr-defined]
        await stream.aclose()
    finally:
        child.kill()
        await child.aclose()
        listener.close()


@pytest.mark.parametrize("busy_poll", [0.0, DEFAULT_BUSY_POLL])
async def test_bytes_cross_both_ways_in_order(busy_poll: float) -> None:
    a, b = await _pair(busy_poll)
    try:
        for size in (1, 100, 70_000):
            data = bytes(i % 251 for i in range(size))
            await a.send(data)
            assert await _read_exactly(b, size) == data
            await b.send(data[::-1])
            assert await _read_exactly(a, size) == data[::-1]
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_large_transfer_with_a_slow_reader_loses_nothing() -> None:
    """Several MiB in small writes while the reader dawdles: the writer waits (flow control)
    instead of buffering without bound, and every byte arrives once, in order."""
    a, b = await _pair()
    total = 3 * READ_HIGH_WATER + 12345
    block = bytes(range(256)) * 64  # 16 KiB
    received = bytearray()

    async def write() -> None:
        sent = 0
        while sent < total:
            piece = block[: min(len(block), total - sent)]
            await a.send(piece)
            sent += len(piece)
        await a.send_eof()

    async def read() -> None:
        await anyio.sleep(0.05)  # let the writer fill every buffer first
        while True:
            try:
                received.extend(await b.receive(100_000))
            except anyio.EndOfStream:
                return

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            tg.start_soon(read)
    expected = (block * (total // len(block) + 1))[:total]
    assert len(received) == total and bytes(received) == expected
    await a.aclose()
    await b.aclose()


async def test_reading_pauses_above_the_high_water_mark_and_resumes(anyio_backend_name: str) -> None:
    """asyncio: the loop stops reading once READ_HIGH_WATER bytes wait unread (the peer then
    blocks: backpressure), and reads on once they are picked up. trio: the socket stream reads
    only when asked, so the peer blocks on the kernel's buffer alone; the bytes all arrive."""
    left, right = socket.socketpair()
    stream = await open_socket_stream(left)
    right.setblocking(False)
    blob = bytes(i % 253 for i in range(READ_HIGH_WATER + 600_000))
    written = 0
    stalled = anyio.Event()

    async def write() -> None:
        nonlocal written
        view = memoryview(blob)
        while view:
            try:
                sent = right.send(view[:65536])
            except BlockingIOError:
                stalled.set()  # the peer pushes back
                await anyio.sleep(0.001)
                continue
            written += sent
            view = view[sent:]

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await stalled.wait()
            await anyio.sleep(0.05)
            if anyio_backend_name == "asyncio":
                assert isinstance(stream, AsyncioSocketStream)
                protocol = stream._protocol
                assert protocol.reading_paused and protocol.buffered > READ_HIGH_WATER
            assert written < len(blob)  # the writer is held back
            assert await _read_exactly(stream, len(blob), 1 << 20) == blob
    if anyio_backend_name == "asyncio":
        assert not protocol.reading_paused and protocol.buffered == 0
    right.send(b"after")
    with anyio.fail_after(5):
        assert await stream.receive() == b"after"
    right.close()
    await stream.aclose()


async def test_end_of_stream_after_the_buffered_bytes() -> None:
    a, b = await _pair()
    await a.send(b"last words")
    await a.aclose()
    with anyio.fail_after(5):
        assert await _read_exactly(b, 10) == b"last words"
        with pytest.raises(anyio.EndOfStream):
            await b.receive()
    await b.aclose()


async def test_half_close_keeps_the_other_direction() -> None:
    a, b = await _pair()
    await a.send_eof()
    with anyio.fail_after(5):
        with pytest.raises(anyio.EndOfStream):
            await b.receive()
        await b.send(b"still talking")
        assert await _read_exactly(a, 13) == b"still talking"
    await a.aclose()
    await b.aclose()


async def test_closing_wakes_a_waiting_reader_and_refuses_more() -> None:
    a, b = await _pair()
    failures: list[type[BaseException]] = []

    async def reader() -> None:
        try:
            await b.receive()
        except (anyio.ClosedResourceError, anyio.EndOfStream) as exc:
            failures.append(type(exc))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.sleep(0.01)
            await b.aclose()
    assert failures == [anyio.ClosedResourceError]
    with pytest.raises(anyio.ClosedResourceError):
        await b.send(b"x")
    with pytest.raises(anyio.ClosedResourceError):
        await b.receive()
    await b.aclose()  # idempotent
    await a.aclose()


async def test_sending_to_a_vanished_peer_breaks() -> None:
    a, b = await _pair()
    await b.aclose()
    with anyio.fail_after(5), pytest.raises(anyio.BrokenResourceError):
        for _ in range(10_000):
            await a.send(b"x" * 65536)
    await a.aclose()


@pytest.mark.parametrize("busy_poll", [0.0, 0.5])
async def test_a_cancelled_receive_leaves_the_stream_usable(busy_poll: float) -> None:
    """Cancelled while parked or while busy polling (a long window): nothing is lost."""
    a, b = await _pair(busy_poll)
    if busy_poll:
        b.extra(BusyPollAttribute.busy_poll).expect()  # an answer is awaited: b polls
    with anyio.move_on_after(0.05) as scope:
        await b.receive()
    assert scope.cancelled_caught
    await a.send(b"after the cancel")
    with anyio.fail_after(5):
        assert await _read_exactly(b, 16) == b"after the cancel"
    await a.aclose()
    await b.aclose()


async def test_extra_attributes_name_the_socket() -> None:
    a, b = await _pair()
    assert a.extra(SocketAttribute.family) == socket.AF_UNIX
    assert a.extra(SocketAttribute.raw_socket) is not None
    a.extra(SocketAttribute.local_address)
    a.extra(SocketAttribute.remote_address)
    await a.aclose()
    await b.aclose()


# -- busy polling ------------------------------------------------------------------------------------


def test_busy_poll_option_and_config_are_checked() -> None:
    assert common_options({}).busy_poll == DEFAULT_BUSY_POLL == BusConfig().busy_poll
    assert common_options({"busy_poll": 0}).busy_poll == 0.0
    for bad in (-1, "fast", True, float("nan")):
        with pytest.raises(ConfigError) as info:
            common_options({"busy_poll": bad})
        assert info.value.code == "transport.bad_option"
        assert info.value.context["option"] == "busy_poll"
    assert BusConfig.from_mapping({"busy_poll": 0}).busy_poll == 0.0
    with pytest.raises(ConfigError):
        BusConfig.from_mapping({"busy_poll": 1.0})  # at most 10 ms: longer is a bug, not a tuning


# -- chunking property -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    writes=st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=12),
    max_bytes=st.integers(min_value=1, max_value=5000),
    backend=st.sampled_from(["asyncio", "uvloop", "trio"]),
)
def test_any_writes_come_out_whole_for_any_read_size(writes: list[bytes], max_bytes: int, backend: str) -> None:
    """However the bytes are written and however much each read asks for, the reader sees
    exactly the written bytes, in order, each read at most ``max_bytes``."""

    async def main() -> bytes:
        a, b = await _pair()
        for data in writes:
            await a.send(data)
        await a.send_eof()
        out = bytearray()
        with anyio.fail_after(10):
            while True:
                try:
                    chunk = await b.receive(max_bytes)
                except anyio.EndOfStream:
                    break
                assert 0 < len(chunk) <= max_bytes
                out.extend(chunk)
        await a.aclose()
        await b.aclose()
        return bytes(out)

    if backend == "uvloop":
        result = anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        result = anyio.run(main, backend=backend)
    assert result == b"".join(writes)



async def test_an_idle_reader_spins_at_most_one_window_then_parks() -> None:
    """Busy polling is bounded: after the traffic stops, a waiting reader polls for one window at
    most and then parks, and once it has seen a long gap it parks at once. Measured in CPU time
    of this thread, not wall-clock time: with a 50 ms window, 0.4 s of waiting would cost 0.4 s
    of CPU if the reader kept spinning."""
    window = 0.05
    a, b = await _pair(busy_poll=window)
    for n in range(5):  # quick exchanges: polling pays and stays on
        await a.send(b"q%d" % n)
        assert await b.receive() == b"q%d" % n
        await b.send(b"a%d" % n)
        assert await a.receive() == b"a%d" % n

    async def late() -> None:
        await anyio.sleep(0.4)
        await a.send(b"late")

    async with anyio.create_task_group() as tg:
        tg.start_soon(late)
        started = time.thread_time()
        assert await b.receive() == b"late"  # the peer went quiet for 0.4 s, then spoke
        spent = time.thread_time() - started
    assert spent < 0.25, f"an idle reader used {spent:.3f} s of CPU in 0.4 s"
    # That wait was long, so the next one parks at once: no window of polling at all.
    started = time.thread_time()
    with anyio.move_on_after(0.3):
        await b.receive()
    assert time.thread_time() - started < window / 2
    await a.aclose()
    await b.aclose()
