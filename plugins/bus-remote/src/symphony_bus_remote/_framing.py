"""Length-prefixed framing: whole byte frames over an anyio byte stream.

Wire format: each frame is a 4-byte big-endian unsigned length followed by that many bytes::

    +----------------+----------------------+
    | length (u32 BE) | payload (length bytes) |
    +----------------+----------------------+

``max_frame_size`` (default 16 MiB) is enforced on both sides: :meth:`FramedStream.send_frame`
refuses to write an oversize frame (``SerializationError``, code ``framing.frame_too_large``,
nothing is written), and the receiving side rejects an oversize *header* before reading the
body (``TransportError``, code ``transport.frame_too_large``) -- the stream is then out of step
and the connection must be dropped.

:class:`FrameDecoder` is the sans-I/O incremental decoder (feed bytes, take frames); it is what
the hypothesis fuzz tests drive. :class:`FramedStream` puts it over any
:class:`anyio.abc.ByteStream` (a socket, a TLS stream, an in-memory pair), reading in large
chunks so that many small frames cost one ``receive`` call, and writing a whole batch of frames
with one ``send`` (:meth:`FramedStream.send_frames`).

Errors (all :class:`~symphony.commons.errors.SymphonyError` subclasses):

=================================  ===============================================================
code                               meaning
=================================  ===============================================================
``framing.frame_too_large``        (SerializationError) refusing to *send* a frame over the limit
``transport.frame_too_large``      (TransportError) the peer announced a frame over the limit
``transport.truncated_frame``      (TransportError) the stream ended in the middle of a frame
``transport.closed``               (``symphony.bus.ConnectionClosed``) the peer closed the stream cleanly
``transport.closed_locally``       (``symphony.bus.ConnectionClosed``) this side already closed it
``transport.broken``               (TransportError) the stream broke (reset, broken pipe ...)
=================================  ===============================================================
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Final

import anyio
import anyio.abc

from symphony.bus import ConnectionClosed
from symphony.bus.links import DEFAULT_MAX_FRAME_SIZE, message_too_large
from symphony.commons.errors import SerializationError, TransportError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER_SIZE",
    "ConnectionClosed",
    "FrameDecoder",
    "FramedStream",
    "encode_frame",
    "encode_frames",
]

HEADER_SIZE: Final = 4
"""Size of the length prefix in bytes."""

_MAX_U32: Final = 0xFFFFFFFF
_HEADER: Final = struct.Struct(">I")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from


def _check_limit(max_frame_size: int) -> int:
    if max_frame_size.__class__ is not int or not 0 < max_frame_size <= _MAX_U32:
        raise SerializationError(
            "max_frame_size must be an integer between 1 and 2**32-1",
            code="framing.bad_limit",
            context={"max_frame_size": repr(max_frame_size)},
        )
    return max_frame_size


def encode_frame(payload: bytes, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """One frame: the 4-byte big-endian length of ``payload`` followed by ``payload``.

    >>> encode_frame(b"hi")
    b'\\x00\\x00\\x00\\x02hi'
    """
    size = len(payload)
    if size > max_frame_size:
        raise message_too_large(size, max_frame_size)
    return _pack_header(size) + payload


def encode_frames(payloads: Iterable[bytes], *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Many frames concatenated into one buffer (for a single write); checks every size first."""
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        size = len(payload)
        if size > max_frame_size:
            raise message_too_large(size, max_frame_size)
        append(_pack_header(size))
        append(payload)
    return b"".join(parts)


class FrameDecoder:
    """Incremental, sans-I/O decoder of length-prefixed frames.

    Feed it bytes as they arrive (:meth:`feed`) and take the complete frames out
    (:meth:`next_frame`, :meth:`drain`). A header announcing more than ``max_frame_size``
    bytes raises :class:`TransportError` (``transport.frame_too_large``) as soon as the header
    is complete; :meth:`check_eof` raises ``transport.truncated_frame`` if the input stopped in
    the middle of a frame.

    >>> d = FrameDecoder()
    >>> d.feed(encode_frame(b"a") + encode_frame(b"bc")[:3])
    >>> d.drain()
    [b'a']
    >>> d.feed(b"\\x02bc")
    >>> d.next_frame()
    b'bc'
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._max = _check_limit(max_frame_size)
        self._buf = bytearray()

    @property
    def max_frame_size(self) -> int:
        """The largest accepted frame payload, in bytes."""
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        self._max = _check_limit(value)

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet returned as frames."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buf += data
        if len(self._buf) >= HEADER_SIZE:
            # Reject an oversize header at once, before waiting for a body that may never come.
            self._check_size(_unpack_header(self._buf, 0)[0])

    def _check_size(self, size: int) -> None:
        if size > self._max:
            raise TransportError(
                f"peer announced a frame of {size} bytes, over the limit of {self._max} bytes",
                code="transport.frame_too_large",
                context={"size": size, "max_frame_size": self._max},
                hint="the peer is not speaking this protocol, or its max_frame_size is larger",
            )

    def next_frame(self) -> bytes | None:
        """The next complete frame, or ``None`` if more bytes are needed."""
        buf = self._buf
        have = len(buf)
        if have < HEADER_SIZE:
            return None
        size = _unpack_header(buf, 0)[0]
        self._check_size(size)
        end = HEADER_SIZE + size
        if have < end:
            return None
        frame = bytes(buf[HEADER_SIZE:end])
        del buf[:end]
        if len(buf) >= HEADER_SIZE:
            self._check_size(_unpack_header(buf, 0)[0])
        return frame

    def drain(self) -> list[bytes]:
        """Every complete frame buffered so far (possibly none), in order."""
        buf = self._buf
        have = len(buf)
        frames: list[bytes] = []
        pos = 0
        limit = self._max
        while have - pos >= HEADER_SIZE:
            size = _unpack_header(buf, pos)[0]
            if size > limit:
                if pos:
                    del buf[:pos]
                self._check_size(size)
            end = pos + HEADER_SIZE + size
            if end > have:
                break
            frames.append(bytes(buf[pos + HEADER_SIZE : end]))
            pos = end
        if pos:
            del buf[:pos]
        return frames

    def feed_drain(self, data: bytes) -> list[bytes]:
        """:meth:`feed` then :meth:`drain`, without copying ``data`` into the buffer first when
        nothing is buffered (the usual case: a read that holds whole frames)."""
        buf = self._buf
        if buf:
            self.feed(data)
            return self.drain()
        if data.__class__ is not bytes:
            data = bytes(data)
        have = len(data)
        frames: list[bytes] = []
        pos = 0
        limit = self._max
        while have - pos >= HEADER_SIZE:
            size = _unpack_header(data, pos)[0]
            if size > limit:
                buf += data[pos:]
                self._check_size(size)
            end = pos + HEADER_SIZE + size
            if end > have:
                break
            frames.append(data[pos + HEADER_SIZE : end])
            pos = end
        if pos < have:
            buf += data[pos:] if pos else data
        return frames

    def check_eof(self) -> None:
        """Raise ``transport.truncated_frame`` if bytes of an incomplete frame are buffered."""
        if self._buf:
            have = len(self._buf)
            expected = _unpack_header(self._buf, 0)[0] + HEADER_SIZE if have >= HEADER_SIZE else HEADER_SIZE
            raise TransportError(
                f"stream ended inside a frame ({have} of {expected} bytes received)",
                code="transport.truncated_frame",
                context={"received": have, "expected": expected},
            )


def _broken(exc: BaseException, action: str) -> TransportError:
    err = TransportError(
        f"connection broken while {action}: {type(exc).__name__}: {exc}".rstrip(": "),
        code="transport.broken",
        context={"action": action, "reason": type(exc).__name__},
    )
    err.__cause__ = exc
    return err


class FramedStream:
    """Whole frames over an :class:`anyio.abc.ByteStream`.

    Not safe for concurrent senders (nor concurrent receivers): the owning connection
    serialises them. ``receive_size`` is the chunk size asked of the stream per read; partial
    reads (a frame split across reads, many frames in one read) are handled by the buffer.
    """

    __slots__ = ("_decoder", "_max", "_receive_size", "_stream", "_try_send")

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        receive_size: int = 65536,
    ) -> None:
        self._stream = stream
        self._max = _check_limit(max_frame_size)
        self._decoder = FrameDecoder(max_frame_size=max_frame_size)
        self._receive_size = receive_size
        # Streams that can write without waiting (SocketByteStream) get a synchronous fast path.
        self._try_send = getattr(stream, "try_send", None)

    @property
    def stream(self) -> anyio.abc.ByteStream:
        """The underlying byte stream."""
        return self._stream

    @property
    def max_frame_size(self) -> int:
        """The largest frame payload accepted in either direction, in bytes."""
        return self._max

    def set_max_frame_size(self, max_frame_size: int) -> None:
        """Change the frame limit (e.g. a tight one during a handshake, the real one after)."""
        self._max = _check_limit(max_frame_size)
        self._decoder.max_frame_size = max_frame_size

    def extra(self, attribute: Any, default: Any = None) -> Any:
        """A typed attribute of the underlying stream (see :mod:`anyio` typed attributes)."""
        return self._stream.extra(attribute, default)

    async def _write(self, data: bytes) -> None:
        try:
            await self._stream.send(data)
        except anyio.ClosedResourceError:
            raise ConnectionClosed(
                "cannot send: the connection is closed", code="transport.closed_locally"
            ) from None
        except (anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            raise _broken(exc, "sending") from exc

    async def send_frame(self, payload: bytes) -> None:
        """Write one frame (raises ``framing.frame_too_large`` without writing if oversize)."""
        size = len(payload)
        if size > self._max:
            raise message_too_large(size, self._max)
        await self._write(_pack_header(size) + payload)

    def try_send_frame(self, payload: bytes) -> bytes | None:
        """Write one frame now if the stream can take it without waiting: ``None`` when it was
        all written, else what is left to write (the whole frame when nothing was written) --
        finish it with :meth:`finish_frame`. Raises like :meth:`send_frame`."""
        size = len(payload)
        if size > self._max:
            raise message_too_large(size, self._max)
        data = _pack_header(size) + payload
        try_send = self._try_send
        if try_send is None:
            return data
        try:
            sent = try_send(data)
        except anyio.ClosedResourceError:
            raise ConnectionClosed(
                "cannot send: the connection is closed", code="transport.closed_locally"
            ) from None
        except (anyio.BrokenResourceError, OSError) as exc:
            raise _broken(exc, "sending") from exc
        if sent == len(data):
            return None
        if sent <= 0:
            return data
        return data[sent:]

    async def finish_frame(self, rest: bytes, *, started: bool) -> None:
        """Write what :meth:`try_send_frame` left over (shielded once part of the frame is out,
        so the stream never goes out of step)."""
        if started:
            with anyio.CancelScope(shield=True):
                await self._write(rest)
        else:
            await self._write(rest)

    async def send_frames(self, payloads: Iterable[bytes]) -> None:
        """Write many frames with a single ``send`` (all sizes are checked before writing)."""
        data = encode_frames(payloads, max_frame_size=self._max)
        if data:
            await self._write(data)

    async def _read(self) -> bytes:
        try:
            chunk = await self._stream.receive(self._receive_size)
        except anyio.EndOfStream:
            self._decoder.check_eof()
            raise ConnectionClosed("the peer closed the connection", code="transport.closed") from None
        except anyio.ClosedResourceError:
            raise ConnectionClosed(
                "cannot receive: the connection is closed", code="transport.closed_locally"
            ) from None
        except (anyio.BrokenResourceError, OSError) as exc:
            raise _broken(exc, "receiving") from exc
        return chunk

    async def _fill(self) -> None:
        self._decoder.feed(await self._read())

    async def receive_frame(self) -> bytes:
        """The next frame; waits for more bytes as needed."""
        decoder = self._decoder
        while True:
            frame = decoder.next_frame()
            if frame is not None:
                return frame
            await self._fill()

    async def receive_frames(self) -> list[bytes]:
        """At least one frame: every complete frame available after at most one wait."""
        decoder = self._decoder
        frames = decoder.drain() if decoder.buffered else []
        while not frames:
            frames = decoder.feed_drain(await self._read())
        return frames

    async def send_eof(self) -> None:
        """Half-close: tell the peer no more frames will be sent (where the stream supports it)."""
        try:
            await self._stream.send_eof()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError, NotImplementedError):
            pass

    async def aclose(self) -> None:
        """Close the underlying stream (idempotent)."""
        try:
            await self._stream.aclose()
        except (anyio.BrokenResourceError, OSError):
            pass
