"""Length-prefixed framing: the sans-I/O decoder (with hypothesis) and FramedStream over real sockets."""

from __future__ import annotations

import itertools
import socket
import struct

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.bus._transport import DEFAULT_MAX_FRAME_SIZE, ConnectionClosed
from symphony.commons.errors import SerializationError, SymphonyError, TransportError
from symphony_bus_remote import FrameDecoder, FramedStream, SocketByteStream, encode_frame, encode_frames

# -- the decoder ---------------------------------------------------------------------------------


def test_encode_frame_is_big_endian_length_prefix() -> None:
    assert encode_frame(b"") == b"\x00\x00\x00\x00"
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"x" * 256)[:4] == b"\x00\x00\x01\x00"
    assert DEFAULT_MAX_FRAME_SIZE == 16 * 1024 * 1024


def test_oversize_frame_is_refused_on_send() -> None:
    with pytest.raises(SerializationError) as info:
        encode_frame(b"x" * 11, max_frame_size=10)
    assert info.value.code == "framing.frame_too_large"
    assert info.value.context == {"size": 11, "max_frame_size": 10}
    with pytest.raises(SerializationError):
        encode_frames([b"ok", b"x" * 11], max_frame_size=10)


def test_oversize_header_is_rejected_before_the_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    with pytest.raises(TransportError) as info:
        decoder.feed(struct.pack(">I", 101))
    assert info.value.code == "transport.frame_too_large"
    assert info.value.context["size"] == 101


def test_oversize_header_after_good_frames_keeps_the_good_ones_first() -> None:
    decoder = FrameDecoder(max_frame_size=10)
    decoder.feed(encode_frame(b"one") + encode_frame(b"two"))
    decoder.feed(struct.pack(">I", 1000))
    assert decoder.next_frame() == b"one"
    with pytest.raises(TransportError):
        decoder.next_frame()


def test_partial_input_waits_for_more_and_truncation_is_reported() -> None:
    data = encode_frame(b"hello") + encode_frame(b"world")
    decoder = FrameDecoder()
    decoder.feed(data[:3])
    assert decoder.next_frame() is None
    decoder.feed(data[3:11])
    assert decoder.drain() == [b"hello"]
    assert decoder.buffered == 2
    with pytest.raises(TransportError) as info:
        decoder.check_eof()
    assert info.value.code == "transport.truncated_frame"
    decoder.feed(data[11:])
    assert decoder.next_frame() == b"world"
    decoder.check_eof()


def test_bad_limit_is_a_symphony_error() -> None:
    with pytest.raises(SerializationError):
        FrameDecoder(max_frame_size=0)
    with pytest.raises(SerializationError):
        FrameDecoder(max_frame_size=2**32)


@settings(max_examples=1000, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_round_trip_whatever_the_chunking(frames: list[bytes], cuts: list[int]) -> None:
    data = encode_frames(frames)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    decoder = FrameDecoder(max_frame_size=300)
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        decoder.feed(data[start:end])
        out.extend(decoder.drain())
    decoder.check_eof()
    assert out == frames


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(max_size=64), max_size=12), limit=st.integers(min_value=1, max_value=64))
def test_fuzz_arbitrary_bytes_only_raise_symphony_errors(chunks: list[bytes], limit: int) -> None:
    decoder = FrameDecoder(max_frame_size=limit)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            for frame in decoder.drain():
                assert len(frame) <= limit
            frame = decoder.next_frame()
            assert frame is None or len(frame) <= limit
        decoder.check_eof()
    except SymphonyError as exc:
        assert exc.code in {"transport.frame_too_large", "transport.truncated_frame"}


# -- FramedStream over a real socket pair ----------------------------------------------------------


def _pair() -> tuple[SocketByteStream, SocketByteStream]:
    a, b = socket.socketpair()
    return SocketByteStream(a), SocketByteStream(b)


@pytest.mark.anyio
async def test_frames_survive_byte_by_byte_delivery() -> None:
    a, b = _pair()
    reader = FramedStream(b)
    payloads = [b"", b"a", b"hello world", bytes(range(256)) * 40]
    wire = encode_frames(payloads)

    async def trickle() -> None:
        for i in range(len(wire)):
            await a.send(wire[i : i + 1])
            if i % 97 == 0:
                await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(trickle)
        got = [await reader.receive_frame() for _ in payloads]
    assert got == payloads
    await a.aclose()
    await b.aclose()


@pytest.mark.anyio
async def test_send_frames_writes_a_batch_and_receive_frames_drains_it() -> None:
    a, b = _pair()
    writer, reader = FramedStream(a), FramedStream(b)
    batch = [f"msg-{i}".encode() for i in range(500)]
    await writer.send_frames(batch)
    got: list[bytes] = []
    while len(got) < len(batch):
        frames = await reader.receive_frames()
        assert frames
        got.extend(frames)
    assert got == batch
    await writer.aclose()
    await reader.aclose()


@pytest.mark.anyio
async def test_large_frame_round_trip() -> None:
    a, b = _pair()
    writer, reader = FramedStream(a), FramedStream(b)
    big = bytes(range(256)) * 8192  # 2 MiB: many partial writes and reads
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.send_frame, big)
        assert await reader.receive_frame() == big
    await writer.aclose()
    await reader.aclose()


@pytest.mark.anyio
async def test_oversize_send_writes_nothing() -> None:
    a, b = _pair()
    writer, reader = FramedStream(a, max_frame_size=8), FramedStream(b, max_frame_size=8)
    with pytest.raises(SerializationError):
        await writer.send_frame(b"123456789")
    await writer.send_frame(b"ok")
    assert await reader.receive_frame() == b"ok"
    await writer.aclose()
    await reader.aclose()


@pytest.mark.anyio
async def test_peer_announcing_a_huge_frame_is_a_transport_error() -> None:
    a, b = _pair()
    reader = FramedStream(b, max_frame_size=1024)
    await a.send(b"\xff\xff\xff\xff garbage")
    with pytest.raises(TransportError) as info:
        await reader.receive_frame()
    assert info.value.code == "transport.frame_too_large"
    await a.aclose()
    await reader.aclose()


@pytest.mark.anyio
async def test_eof_mid_frame_is_truncation_and_clean_eof_is_closed() -> None:
    a, b = _pair()
    reader = FramedStream(b)
    await a.send(encode_frame(b"complete") + encode_frame(b"cut short")[:6])
    await a.aclose()
    assert await reader.receive_frame() == b"complete"
    with pytest.raises(TransportError) as info:
        await reader.receive_frame()
    assert info.value.code == "transport.truncated_frame"
    await reader.aclose()

    c, d = _pair()
    reader2 = FramedStream(d)
    await c.aclose()
    with pytest.raises(ConnectionClosed) as closed:
        await reader2.receive_frame()
    assert closed.value.code == "transport.closed"
    await reader2.aclose()


@pytest.mark.anyio
async def test_using_a_closed_stream_is_closed_locally_and_broken_pipe_is_transport_error() -> None:
    a, b = _pair()
    writer = FramedStream(a)
    await writer.aclose()
    with pytest.raises(ConnectionClosed) as info:
        await writer.send_frame(b"x")
    assert info.value.code == "transport.closed_locally"
    with pytest.raises(ConnectionClosed):
        await writer.receive_frame()

    await b.aclose()
    c, d = _pair()
    await d.aclose()
    writer2 = FramedStream(c)
    with pytest.raises(TransportError) as broken:
        for _ in range(100):  # the first writes may still land in the socket buffer
            await writer2.send_frame(b"x" * 65536)
    assert broken.value.code in {"transport.broken", "transport.closed"}
    await writer2.aclose()


@pytest.mark.anyio
async def test_closing_wakes_a_blocked_reader() -> None:
    a, b = _pair()
    reader = FramedStream(b)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def close_soon() -> None:
                await anyio.sleep(0.05)
                await reader.aclose()

            tg.start_soon(close_soon)
            with pytest.raises(ConnectionClosed):
                await reader.receive_frame()
    await a.aclose()
