"""Socket connections: framed messages over a byte stream, the options socket transports share,
the accept loop, and the handshake helpers.

Sockets carry messages as length-prefixed frames (:mod:`symphony_bus_remote._framing`), each one
message encoded by a codec. Options every socket transport understands (a plain mapping; each
transport documents its own keys too and ignores the ones it does not know):

``codec``           codec name or object for the connection (default ``"msgpack"``)
``max_frame_size``  largest frame in bytes, both directions (default 16 MiB)
``connect_timeout`` seconds before ``connect`` gives up (default 5.0)
``busy_poll``       seconds a socket reader may keep the event loop turning after its side
                    sent a request, while an answer is awaited (default 100 µs; 0 = off;
                    see :mod:`symphony_bus_remote._busypoll`)
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

import anyio
import anyio.abc
import attrs

from symphony.bus import Codec, Connection, Message, PeerInfo, get_codec
from symphony.bus.links import (
    DEFAULT_MAX_FRAME_SIZE,
    ConnectionHandler,
    number_option,
    resolve_codec,
    run_handler,
)
from symphony.commons.errors import SerializationError, SymphonyError
from symphony.commons.log import get_logger
from symphony_bus_remote._busypoll import DEFAULT_BUSY_POLL
from symphony_bus_remote._framing import HEADER_SIZE, FramedStream, encode_frame
from symphony_bus_remote._same_process import note_local_end
from symphony_bus_remote._socket_stream import open_socket_stream

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "HANDSHAKE_CODEC",
    "PRE_HANDSHAKE_MAX_FRAME_SIZE",
    "CommonOptions",
    "StreamConnection",
    "common_options",
    "send_refusal",
    "serve_sockets",
]

DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds a ``connect`` may take by default."""

PRE_HANDSHAKE_MAX_FRAME_SIZE: Final = 64 * 1024
"""Largest frame a server accepts from a peer before its handshake is done (bytes), on every
socket transport: an unauthenticated peer cannot make the server allocate more."""

_log = get_logger("symphony.bus.transport")

_ACCEPT_BACKOFF_MIN: Final = 0.01
_ACCEPT_BACKOFF_MAX: Final = 0.5
"""Seconds the accept loop pauses after a failed accept (doubling from the minimum)."""


class StreamConnection(Connection):
    """A :class:`~symphony.bus.Connection` over any :class:`anyio.abc.ByteStream`:
    length-prefixed frames, each one message encoded by ``codec``.

    The socket transports (unix, tcp) return this class.
    """

    __slots__ = ("_backlog", "_framed", "_send_lock")

    def __init__(
        self,
        stream: anyio.abc.ByteStream | FramedStream,
        *,
        codec: Codec,
        peer: PeerInfo,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(codec=codec, peer=peer)
        self._backlog: list[bytes] = []  # frames received but not decoded yet
        if isinstance(stream, FramedStream):
            # Adopt a stream already used for a handshake: bytes it buffered stay queued.
            stream.set_max_frame_size(max_frame_size)
            self._framed = stream
        else:
            self._framed = FramedStream(stream, max_frame_size=max_frame_size)
        self._send_lock = anyio.Lock(fast_acquire=True)

    @property
    def framed(self) -> FramedStream:
        """The framed byte stream underneath (for raw frame access, e.g. a handshake)."""
        return self._framed

    def extra(self, attribute: Any, default: Any = None) -> Any:
        """A typed attribute of the underlying byte stream (e.g. the raw socket)."""
        return self._framed.extra(attribute, default)

    async def send(self, msg: Message) -> None:
        """Encode and send one message as one frame."""
        data = self._codec.encode(msg)
        lock = self._send_lock
        if not lock.locked():
            # Nobody is in the middle of a write: try to put the whole frame out right now.
            rest = self._framed.try_send_frame(data)
            if rest is None:
                return
            async with lock:  # free, so taken without yielding: nobody writes in between
                await self._framed.finish_frame(rest, started=len(rest) < len(data) + HEADER_SIZE)
            return
        async with lock:
            await self._framed.send_frame(data)

    async def send_many(self, msgs: Iterable[Message]) -> None:
        """Encode every message, then write all their frames with a single ``send``."""
        encode = self._codec.encode
        frames = [encode(m) for m in msgs]
        async with self._send_lock:
            await self._framed.send_frames(frames)

    async def send_frame(self, data: bytes) -> None:
        """Send one already-encoded frame (e.g. a handshake written with another codec)."""
        async with self._send_lock:
            await self._framed.send_frame(data)

    async def receive_frame(self) -> bytes:
        """The next raw frame, not decoded."""
        if self._backlog:
            return self._backlog.pop(0)
        return await self._framed.receive_frame()

    async def receive(self) -> Message:
        """Receive and decode the next message."""
        if self._backlog:
            return self._codec.decode(self._backlog.pop(0))
        return self._codec.decode(await self._framed.receive_frame())

    async def receive_many(self) -> list[Message]:
        """Every complete message available after at most one wait (at least one).

        A frame that fails to decode raises its ``SerializationError``; the messages decoded
        before it are returned first, and the frames after it stay queued for the next call.
        """
        frames = self._backlog or await self._framed.receive_frames()
        decode = self._codec.decode
        out: list[Message] = []
        for index, frame in enumerate(frames):
            try:
                out.append(decode(frame))
            except SerializationError:
                if out:
                    self._backlog = frames[index:]
                    return out
                self._backlog = frames[index + 1 :]
                raise
        self._backlog = []
        return out

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._framed.aclose()


@attrs.frozen(slots=True)
class CommonOptions:
    """The options every transport understands (see the module documentation)."""

    codec: Codec
    max_frame_size: int
    connect_timeout: float
    busy_poll: float = DEFAULT_BUSY_POLL


def common_options(options: Mapping[str, Any] | None) -> CommonOptions:
    """Parse and check the common options (``codec``, ``max_frame_size``, ``connect_timeout``,
    ``busy_poll``)."""
    options = options or {}
    return CommonOptions(
        codec=resolve_codec(options.get("codec"), options.get("codec_registry")),
        max_frame_size=number_option(options, "max_frame_size", DEFAULT_MAX_FRAME_SIZE, integer=True),
        connect_timeout=float(number_option(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        busy_poll=float(number_option(options, "busy_poll", DEFAULT_BUSY_POLL, zero=True)),
    )


async def serve_sockets(
    listeners: Iterable[socket.socket],
    make_connection: Callable[[anyio.abc.ByteStream], Awaitable[Connection | None]],
    handler: ConnectionHandler,
    *,
    name: str,
    busy_poll: float = DEFAULT_BUSY_POLL,
) -> None:
    """Serve on listening stdlib sockets until cancelled: accept on each, wrap every accepted
    socket with :func:`open_socket_stream` (the raw socket stays reachable as
    ``stream.extra(SocketAttribute.raw_socket)``), turn the stream into a connection with
    ``make_connection`` -- which may refuse the peer by returning ``None`` or raising a
    SymphonyError (logged; the stream is closed) -- and run ``handler`` on it, each peer in its
    own task. One failing peer never stops the server; accept errors (EMFILE ...) are logged
    and accepting goes on. The caller owns (and closes) the listening sockets."""

    async def serve_one(sock: socket.socket) -> None:
        try:
            stream = await open_socket_stream(sock, busy_poll=busy_poll)
        except BaseException:
            sock.close()
            raise
        await _serve_accepted(stream, make_connection, handler, name)

    async def accept_loop(listener: socket.socket, tg: anyio.abc.TaskGroup) -> None:
        pause = 0.0
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                await anyio.wait_readable(listener)
                continue
            except OSError as exc:
                # EMFILE/ENFILE/ENOBUFS: log (once per burst), back off, keep serving the peers
                # we have; the waiting peers are accepted as descriptors come free.
                if not pause:
                    _log.error("transport.accept_error", listener=name, error=repr(exc))
                pause = min(_ACCEPT_BACKOFF_MAX, pause * 2 or _ACCEPT_BACKOFF_MIN)
                await anyio.sleep(pause)
                continue
            if pause:
                _log.info("transport.accepting_again", listener=name)
                pause = 0.0
            tg.start_soon(serve_one, sock)

    async with anyio.create_task_group() as tg:
        for listener in listeners:
            note_local_end(listener)  # peers that connect from this process: no busy polling
            tg.start_soon(accept_loop, listener, tg)


async def _serve_accepted(
    accepted: Any, make_connection: Callable[[Any], Awaitable[Connection | None]], handler: ConnectionHandler, name: str
) -> None:
    try:
        conn = await make_connection(accepted)
    except SymphonyError as exc:
        _log.warning("transport.connection_refused", listener=name, code=exc.code, error=exc.message)
        await _close_quietly(accepted)
        return
    except Exception as exc:
        # The type and where, not the message: it could quote what the peer sent (a token).
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "?"
        _log.error("transport.accept_failed", listener=name, error=type(exc).__name__, where=where)
        await _close_quietly(accepted)
        return
    if conn is None:
        await _close_quietly(accepted)
        return
    await run_handler(conn, handler, name)


async def _close_quietly(resource: Any) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await resource.aclose()
        except Exception:
            pass


# -- handshake helpers ---------------------------------------------------------------------------

HANDSHAKE_CODEC: Final = "json"
"""Codec of the first frames on a socket connection (before any codec was negotiated)."""


async def send_refusal(
    stream: anyio.abc.ByteStream,
    error: SymphonyError,
    *,
    max_frame_size: int = PRE_HANDSHAKE_MAX_FRAME_SIZE,
) -> None:
    """Tell a peer why it is refused (one JSON-encoded ``error`` message frame), then close.

    A client reading its first frame turns it back into the same error class and code.
    """
    msg = Message("_transport.refused", error.to_wire(), kind="error")
    data = encode_frame(
        get_codec(HANDSHAKE_CODEC).encode(msg),
        max_frame_size=max(max_frame_size, PRE_HANDSHAKE_MAX_FRAME_SIZE),
    )
    with anyio.move_on_after(1.0, shield=True):
        try:
            await stream.send(data)
        except Exception:
            pass
    await _close_quietly(stream)
