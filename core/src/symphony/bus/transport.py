"""Transports: how bus messages travel between processes.

A *transport* is chosen by the scheme of a URL (``memory://demo``, ``unix:///run/s.sock``,
``tcp://127.0.0.1:7400``, ``stdio:?cmd=python&arg=-m&arg=mod``) and gives
:class:`Connection` objects: a bidirectional, ordered stream of whole
:class:`~symphony.bus.message.Message` objects. Sockets carry them as length-prefixed frames
(:mod:`symphony.bus.framing`) encoded by a codec (:mod:`symphony.bus.codecs`); the stdio
transport carries JSON-RPC 2.0 lines instead.

The :class:`Transport` protocol::

    scheme: str
    async connect(url, *, options=None) -> Connection
    async serve(url, handler, *, options=None, task_status=TASK_STATUS_IGNORED) -> None

``serve`` runs until cancelled; it calls ``task_status.started(bound_url)`` once it accepts
connections (``bound_url`` is the real address, e.g. the port chosen for ``tcp://host:0``) and
runs ``await handler(connection)`` in its own task for each accepted connection, closing the
connection when the handler returns. A handler that raises is logged; the server keeps going.

Options common to every transport (a plain mapping; each transport documents its own keys and
ignores the ones it does not know):

``codec``           codec name or object for the connection (default ``"msgpack"``)
``max_frame_size``  largest frame in bytes, both directions (default 16 MiB)
``connect_timeout`` seconds before ``connect`` gives up (default 5.0)
``busy_poll``       seconds a socket reader keeps the event loop turning before it parks
                    (default 100 µs; 0 = off; see :mod:`symphony.bus.busypoll`). Used by the
                    socket transports (unix, tcp), through :func:`open_socket_stream`

The built-in ``memory://<name>`` transport connects tasks of one event loop through anyio
memory streams (real framing and encoding, no sockets): useful for tests and for embedding.
Other schemes come from plugins (``symphony-transport-unix``, ``-tcp``, ``-stdio``) that call
``registry.add("<scheme>", TransportClass)`` in their ``symphony_register_transports`` hook;
:func:`open_transport` finds the one for a URL.
"""

from __future__ import annotations

import abc
import importlib.metadata
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from symphony.bus._same_process import note_local_end, peer_credentials
from symphony.bus._socket_stream import SocketByteStream, open_socket_stream
from symphony.bus.busypoll import DEFAULT_BUSY_POLL
from symphony.bus.codecs import Codec, get_codec
from symphony.bus.framing import DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE, ConnectionClosed, FramedStream
from symphony.bus.message import Message
from symphony.commons.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    SerializationError,
    SymphonyError,
    TransportError,
)

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_CONNECT_TIMEOUT",
    "HANDSHAKE_CODEC",
    "CommonOptions",
    "Connection",
    "ConnectionHandler",
    "MemoryTransport",
    "PeerInfo",
    "SocketByteStream",
    "StreamConnection",
    "Transport",
    "common_options",
    "get_logger",
    "note_local_end",
    "open_socket_stream",
    "open_transport",
    "peer_credentials",
    "register_builtin_transports",
    "resolve_codec",
    "run_handler",
    "scheme_of",
    "send_refusal",
    "serve_sockets",
]

DEFAULT_CODEC: Final = "msgpack"
"""Codec used by socket connections unless the ``codec`` option says otherwise."""

DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds a ``connect`` may take by default."""


def get_logger(name: str) -> Any:
    """The Symphony logger (``symphony.commons.log``), or plain structlog before it exists."""
    try:
        from symphony.commons.log import get_logger as _get
    except ImportError:
        import structlog

        return structlog.get_logger(name)
    return _get(name)


_log = get_logger("symphony.bus.transport")


@attrs.frozen(slots=True)
class PeerInfo:
    """Who is on the other end of a connection.

    ``address`` is printable (a socket path, ``host:port``, a command line, a memory name);
    ``pid``/``uid``/``gid`` are filled where the transport can know them (Unix sockets via
    ``SO_PEERCRED``, stdio children). ``extra`` carries transport-specific details.
    """

    scheme: str
    address: str
    pid: int | None = None
    uid: int | None = None
    gid: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def describe(self) -> str:
        """A short human description, e.g. ``unix:/run/s.sock pid=12 uid=1000``."""
        text = f"{self.scheme}:{self.address}"
        for key in ("pid", "uid"):
            value = getattr(self, key)
            if value is not None:
                text += f" {key}={value}"
        return text


class Connection(abc.ABC):
    """A bidirectional, ordered stream of :class:`Message` objects.

    ``send`` may be called from several tasks at once (sends are serialised); ``receive``
    belongs to one reader task. Every failure is a
    :class:`~symphony.commons.errors.SymphonyError`: a closed or broken connection raises
    :class:`~symphony.commons.errors.TransportError` (``ConnectionClosed`` with code
    ``transport.closed`` for a clean close), undecodable input raises
    :class:`~symphony.commons.errors.SerializationError`.

    ``native`` tells whether the peer speaks Symphony's own protocol (handshake, heartbeats,
    subscriptions; see :mod:`symphony.bus.remote`) or is a foreign endpoint such as a JSON-RPC
    child process, which only exchanges requests, responses and notifications.
    """

    peer: PeerInfo
    native: ClassVar[bool] = True

    @property
    @abc.abstractmethod
    def codec(self) -> Codec:
        """The codec messages are encoded with on this connection."""

    @abc.abstractmethod
    def set_codec(self, codec: Codec) -> None:
        """Switch codec (both ends switch together after a handshake)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called on this side."""

    @abc.abstractmethod
    async def send(self, msg: Message) -> None:
        """Send one message."""

    async def send_many(self, msgs: Iterable[Message]) -> None:
        """Send many messages, in order (transports write them in one go where they can)."""
        for msg in msgs:
            await self.send(msg)

    @abc.abstractmethod
    async def receive(self) -> Message:
        """The next message from the peer."""

    async def receive_many(self) -> list[Message]:
        """At least one message: every message already received, after at most one wait."""
        return [await self.receive()]

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection (idempotent); the peer sees a clean end of stream."""

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.peer.describe()} codec={self.codec.name}>"


class StreamConnection(Connection):
    """A :class:`Connection` over any :class:`anyio.abc.ByteStream`: length-prefixed frames,
    each one message encoded by ``codec``.

    Socket transports (memory, unix, tcp) all return this class.
    """

    __slots__ = ("_backlog", "_closed", "_codec", "_framed", "_send_lock", "peer")

    def __init__(
        self,
        stream: anyio.abc.ByteStream | FramedStream,
        *,
        codec: Codec,
        peer: PeerInfo,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        if isinstance(stream, FramedStream):
            # Adopt a stream already used for a handshake: bytes it buffered stay queued.
            stream.set_max_frame_size(max_frame_size)
            self._framed = stream
        else:
            self._framed = FramedStream(stream, max_frame_size=max_frame_size)
        self._codec = codec
        self.peer = peer
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._backlog: list[bytes] = []
        self._closed = False

    @property
    def codec(self) -> Codec:
        """The codec messages are encoded with on this connection."""
        return self._codec

    def set_codec(self, codec: Codec) -> None:
        """Switch codec (both ends switch together after a handshake)."""
        self._codec = codec

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called on this side."""
        return self._closed

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
        self._backlog = []
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
        return out

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._framed.aclose()


ConnectionHandler = Callable[[Connection], Awaitable[None]]
"""What ``Transport.serve`` calls for each accepted connection."""


@runtime_checkable
class Transport(Protocol):
    """A way to reach a peer, selected by URL scheme (see the module documentation)."""

    scheme: str

    async def connect(self, url: str, *, options: Mapping[str, Any] | None = None) -> Connection:
        """Open a connection to the server at ``url``."""
        ...

    async def serve(
        self,
        url: str,
        handler: ConnectionHandler,
        *,
        options: Mapping[str, Any] | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections on ``url`` until cancelled, running ``handler`` for each."""
        ...


# -- helpers for transport authors --------------------------------------------------------------


def scheme_of(url: str) -> str:
    """The scheme of a transport URL (``"unix"`` for ``unix:///tmp/s.sock``)."""
    if not isinstance(url, str) or ":" not in url:
        raise ConfigError(
            f"not a transport URL: {url!r}",
            code="transport.bad_url",
            context={"url": repr(url)},
            hint="write a URL such as unix:///path/to.sock, tcp://127.0.0.1:7400 or memory://name",
        )
    return url.split(":", 1)[0].lower()


def resolve_codec(value: Any, registry: Any = None) -> Codec:
    """A codec from a name (looked up in ``registry`` or the built-ins) or a codec object."""
    if value is None:
        value = DEFAULT_CODEC
    if isinstance(value, str):
        return get_codec(value, registry)
    if callable(getattr(value, "encode", None)) and callable(getattr(value, "decode", None)):
        return value  # type: ignore[no-any-return]
    raise ConfigError(
        f"codec option must be a codec name or object, not {value!r}",
        code="transport.bad_option",
        context={"option": "codec", "value": repr(value)},
    )


@attrs.frozen(slots=True)
class CommonOptions:
    """The options every transport understands (see the module documentation)."""

    codec: Codec
    max_frame_size: int
    connect_timeout: float
    busy_poll: float = DEFAULT_BUSY_POLL


def _number(
    options: Mapping[str, Any], key: str, default: float, *, integer: bool = False, zero: bool = False
) -> Any:
    value = options.get(key, default)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value < 0 or (value == 0 and not zero) or value != value:
        kind = "integer" if integer else "number"
        raise ConfigError(
            f"transport option {key!r} must be a {'non-negative' if zero else 'positive'} {kind}",
            code="transport.bad_option",
            context={"option": key, "value": repr(value)},
        )
    return value


def common_options(options: Mapping[str, Any] | None) -> CommonOptions:
    """Parse and check the common options (``codec``, ``max_frame_size``, ``connect_timeout``,
    ``busy_poll``)."""
    options = options or {}
    return CommonOptions(
        codec=resolve_codec(options.get("codec"), options.get("codec_registry")),
        max_frame_size=_number(options, "max_frame_size", DEFAULT_MAX_FRAME_SIZE, integer=True),
        connect_timeout=float(_number(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        busy_poll=float(_number(options, "busy_poll", DEFAULT_BUSY_POLL, zero=True)),
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
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                await anyio.wait_readable(listener)
                continue
            except OSError as exc:
                # EMFILE/ENFILE/ENOBUFS: log, breathe, keep serving the peers we have.
                _log.error("transport.accept_error", listener=name, error=repr(exc))
                await anyio.sleep(0.05)
                continue
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
        _log.error("transport.accept_failed", listener=name, error=repr(exc))
        await _close_quietly(accepted)
        return
    if conn is None:
        await _close_quietly(accepted)
        return
    await run_handler(conn, handler, name)


async def run_handler(conn: Connection, handler: ConnectionHandler, name: str) -> None:
    """Run ``handler(conn)``, log what it raises, and close ``conn`` afterwards."""
    try:
        await handler(conn)
    except ConnectionClosed:
        pass
    except SymphonyError as exc:
        _log.info("transport.handler_ended", listener=name, peer=conn.peer.describe(), code=exc.code)
    except Exception as exc:
        _log.error("transport.handler_failed", listener=name, peer=conn.peer.describe(), error=repr(exc))
    finally:
        with anyio.CancelScope(shield=True):
            await conn.aclose()


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
    stream: anyio.abc.ByteStream, error: SymphonyError, *, max_frame_size: int = 65536
) -> None:
    """Tell a peer why it is refused (one JSON-encoded ``error`` message frame), then close.

    A client reading its first frame turns it back into the same error class and code.
    """
    from symphony.bus.framing import encode_frame

    msg = Message("_transport.refused", error.to_wire(), kind="error")
    data = encode_frame(get_codec(HANDSHAKE_CODEC).encode(msg), max_frame_size=max(max_frame_size, 65536))
    with anyio.move_on_after(1.0, shield=True):
        try:
            await stream.send(data)
        except Exception:
            pass
    await _close_quietly(stream)


# -- the memory transport -----------------------------------------------------------------------


class _MemoryByteStream(anyio.abc.ByteStream):
    """One end of an in-process byte pipe made of two anyio memory object streams."""

    def __init__(
        self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._send = send
        self._receive = receive
        self._leftover = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._leftover:
            chunk = self._leftover
        else:
            chunk = await self._receive.receive()
        if len(chunk) > max_bytes:
            chunk, self._leftover = chunk[:max_bytes], chunk[max_bytes:]
        else:
            self._leftover = b""
        return chunk

    async def send(self, item: bytes) -> None:
        if item:
            await self._send.send(bytes(item))

    async def send_eof(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


def _memory_pair(buffer: int) -> tuple[_MemoryByteStream, _MemoryByteStream]:
    a_send, b_receive = anyio.create_memory_object_stream[bytes](buffer)
    b_send, a_receive = anyio.create_memory_object_stream[bytes](buffer)
    return _MemoryByteStream(a_send, a_receive), _MemoryByteStream(b_send, b_receive)


@attrs.define
class _MemoryListener:
    task_group: anyio.abc.TaskGroup
    handler: ConnectionHandler
    options: CommonOptions
    connections: int = 0


_MEMORY_LISTENERS: dict[str, _MemoryListener] = {}


def _memory_name(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unbalanced "["
        parts = urllib.parse.SplitResult("", "", "", "", "")
    name = (parts.netloc + parts.path).strip("/")
    if parts.scheme != "memory" or not name:
        raise ConfigError(
            f"bad memory transport URL {url!r}",
            code="transport.bad_url",
            context={"url": url},
            hint="write memory://<name>",
        )
    return name


class MemoryTransport:
    """``memory://<name>``: in-process connections between tasks of one event loop.

    Real framing and real encoding over anyio memory streams (bounded, so a slow reader
    applies backpressure), no sockets. Options: the common ones, plus ``buffer`` (chunks in
    flight per direction, default 256).
    """

    scheme: Final = "memory"

    async def connect(self, url: str, *, options: Mapping[str, Any] | None = None) -> Connection:
        """Connect to the ``memory://name`` server running in this event loop."""
        name = _memory_name(url)
        common = common_options(options)
        listener = _MEMORY_LISTENERS.get(name)
        if listener is None:
            raise TransportError(
                f"nothing is serving {url}",
                code="transport.connect_failed",
                context={"url": url, "reason": "no listener"},
                hint="start a server on this memory:// name first (in the same event loop)",
            )
        await anyio.lowlevel.checkpoint()
        buffer = int((options or {}).get("buffer", 256))
        client_stream, server_stream = _memory_pair(buffer)
        listener.connections += 1
        number = listener.connections
        server_conn = StreamConnection(
            server_stream,
            codec=listener.options.codec,
            peer=PeerInfo("memory", f"{name}#{number}", extra={"side": "client"}),
            max_frame_size=listener.options.max_frame_size,
        )
        listener.task_group.start_soon(run_handler, server_conn, listener.handler, url)
        return StreamConnection(
            client_stream,
            codec=common.codec,
            peer=PeerInfo("memory", name, extra={"side": "server"}),
            max_frame_size=common.max_frame_size,
        )

    async def serve(
        self,
        url: str,
        handler: ConnectionHandler,
        *,
        options: Mapping[str, Any] | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``memory://name`` until cancelled (a name can be served once at a time)."""
        name = _memory_name(url)
        common = common_options(options)
        if name in _MEMORY_LISTENERS:
            raise ConflictError(
                f"{url} is already being served",
                code="transport.address_in_use",
                context={"url": url},
            )
        async with anyio.create_task_group() as tg:
            _MEMORY_LISTENERS[name] = _MemoryListener(tg, handler, common)
            try:
                task_status.started(f"memory://{name}")
                await anyio.sleep_forever()
            finally:
                _MEMORY_LISTENERS.pop(name, None)
                tg.cancel_scope.cancel()

    def __repr__(self) -> str:
        return "MemoryTransport()"


# -- choosing a transport -----------------------------------------------------------------------

_BUILTIN_TRANSPORTS: Final[dict[str, Callable[[], Any]]] = {"memory": MemoryTransport}


def register_builtin_transports(registry: Any) -> None:
    """Add the transports that ship with the core (``memory``) to a ``TransportRegistry``."""
    for scheme, factory in _BUILTIN_TRANSPORTS.items():
        if scheme not in registry:
            registry.add(scheme, factory)


def _instantiate(factory: Any) -> Transport:
    if isinstance(factory, type) or not callable(getattr(factory, "connect", None)):
        factory = factory()
    return factory  # type: ignore[no-any-return]


def _autoload(scheme: str, registry: Any) -> bool:
    """Without a kernel: find the ``symphony-transport-<scheme>`` plugin by its entry point and
    run its ``symphony_register_transports`` hook on ``registry``."""
    wanted = f"symphony-transport-{scheme}"
    for ep in importlib.metadata.entry_points(group="symphony.plugins"):
        if ep.name != wanted:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise TransportError(
                f"the transport plugin {wanted} failed to import: {exc!r}",
                code="transport.plugin_failed",
                context={"plugin": wanted, "scheme": scheme},
            ) from exc
        hook = getattr(module, "symphony_register_transports", None)
        if hook is None:
            return False
        hook(registry)
        return scheme in registry
    return False


def open_transport(url: str, registry: Any = None, *, kernel: Any = None, autoload: bool = True) -> Transport:
    """The transport for ``url``'s scheme.

    Looks in ``registry`` (a :class:`~symphony.bus.registries.TransportRegistry`; with a
    ``kernel``, its ``"transports"`` registry after activating the plugin providing
    ``transport:<scheme>``), then the built-in ``memory`` transport, then -- when ``autoload``
    and no kernel is given -- the installed ``symphony-transport-<scheme>`` plugin found by its
    entry point. An unknown scheme raises ``NotFoundError`` (code ``transport.unknown_scheme``)
    listing the known schemes and the package to install.
    """
    scheme = scheme_of(url)
    if kernel is not None:
        from symphony.bus.registries import kernel_registry

        registry = kernel_registry(kernel, "transports")
        if scheme not in registry and scheme not in _BUILTIN_TRANSPORTS:
            try:
                kernel.activate_slot(f"transport:{scheme}")
            except NotFoundError:
                pass
    if registry is None:
        from symphony.bus.registries import TransportRegistry

        registry = TransportRegistry()
    if scheme in registry:
        return _instantiate(registry.get(scheme))
    builtin = _BUILTIN_TRANSPORTS.get(scheme)
    if builtin is not None:
        return _instantiate(builtin)
    if autoload and kernel is None and _autoload(scheme, registry):
        return _instantiate(registry.get(scheme))
    known = sorted(set(registry.schemes()) | set(_BUILTIN_TRANSPORTS))
    raise NotFoundError(
        f"no transport for scheme {scheme!r} (in {url!r})",
        code="transport.unknown_scheme",
        context={"scheme": scheme, "url": url, "known": known},
        hint=f"pip install symphony-transport-{scheme}",
    )
