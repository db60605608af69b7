"""Transports: how bus messages travel between processes -- the contract, and ``memory://``.

A *transport* is chosen by the scheme of a URL (``memory://demo``, ``unix:///run/s.sock``,
``tcp://127.0.0.1:7400``, ``stdio:?cmd=python&arg=-m&arg=mod``) and gives
:class:`Connection` objects: a bidirectional, ordered stream of whole
:class:`~symphony.bus.Message` objects, each encoded by a codec
(:mod:`symphony.bus._codecs`).

The :class:`Transport` protocol::

    scheme: str
    async connect(url, *, options=None) -> Connection
    async serve(url, handler, *, options=None, task_status=TASK_STATUS_IGNORED) -> None

``serve`` runs until cancelled; it calls ``task_status.started(bound_url)`` once it accepts
connections (``bound_url`` is the real address, e.g. the port chosen for ``tcp://host:0``) and
runs ``await handler(connection)`` in its own task for each accepted connection, closing the
connection when the handler returns. A handler that raises is logged; the server keeps going.

Options are a plain mapping; each transport documents its own keys and ignores the ones it does
not know. ``codec`` (a codec name or object, default ``"msgpack"``) and ``max_frame_size``
(largest encoded message in bytes, default 16 MiB) are common to all.

The built-in ``memory://<name>`` transport connects tasks of one event loop through bounded
anyio memory streams (real encoding, no sockets): useful for tests and for embedding. Every
other scheme comes from a plugin (``symphony-transport-unix``, ``-tcp``, ``-stdio``, built on
``symphony-bus-remote``, which also serves a bus to other processes) that calls
``registry.add("<scheme>", TransportClass)`` in its ``symphony_register_transports`` hook;
:func:`open_transport` finds the one for a URL.
"""

from __future__ import annotations

import abc
import importlib.metadata
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from symphony.bus._codecs import Codec, get_codec
from symphony.bus._message import Message
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
    "DEFAULT_MAX_FRAME_SIZE",
    "Connection",
    "ConnectionClosed",
    "ConnectionHandler",
    "MemoryTransport",
    "PeerInfo",
    "Transport",
    "message_too_large",
    "number_option",
    "open_transport",
    "resolve_codec",
    "run_handler",
    "scheme_of",
]

DEFAULT_CODEC: Final = "msgpack"
"""Codec used by connections unless the ``codec`` option says otherwise."""

DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""Largest encoded message (one frame on a socket) accepted by default (16 MiB)."""


def _logger() -> Any:
    from symphony.commons.log import get_logger

    return get_logger("symphony.bus.transport")


class ConnectionClosed(TransportError):
    """The connection was closed (cleanly by the peer, or already by this side)."""

    default_code = "transport.closed"


def message_too_large(size: int, limit: int) -> SerializationError:
    """The error for refusing to send ``size`` encoded bytes over a ``limit`` (nothing is sent)."""
    return SerializationError(
        f"frame of {size} bytes exceeds the limit of {limit} bytes",
        code="framing.frame_too_large",
        context={"size": size, "max_frame_size": limit},
        hint="send smaller messages, or raise max_frame_size on both ends",
    )


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
    subscriptions; see ``symphony_bus_remote``) or is a foreign endpoint such as a JSON-RPC
    child process, which only exchanges requests, responses and notifications.

    This base holds the codec, the peer and the closed flag (which :meth:`aclose` sets);
    subclasses move the bytes.
    """

    native: ClassVar[bool] = True

    def __init__(self, *, codec: Codec, peer: PeerInfo) -> None:
        self._codec = codec
        self.peer = peer
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


def number_option(
    options: Mapping[str, Any], key: str, default: float, *, integer: bool = False, zero: bool = False
) -> Any:
    """``options[key]`` (or ``default``) checked to be a positive number (``integer``: an int;
    ``zero``: 0 allowed); anything else raises ``ConfigError`` (code ``transport.bad_option``)."""
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


async def run_handler(conn: Connection, handler: ConnectionHandler, name: str) -> None:
    """Run ``handler(conn)``, log what it raises, and close ``conn`` afterwards."""
    try:
        await handler(conn)
    except ConnectionClosed:
        pass
    except SymphonyError as exc:
        _logger().info("transport.handler_ended", listener=name, peer=conn.peer.describe(), code=exc.code)
    except Exception as exc:
        _logger().error("transport.handler_failed", listener=name, peer=conn.peer.describe(), error=repr(exc))
    finally:
        with anyio.CancelScope(shield=True):
            await conn.aclose()


# -- the memory transport -----------------------------------------------------------------------


class _MemoryConnection(Connection):
    """One end of an in-process connection: encoded messages through two anyio memory streams."""

    __slots__ = ("_limit", "_receive", "_send")

    def __init__(
        self,
        send: MemoryObjectSendStream[bytes],
        receive: MemoryObjectReceiveStream[bytes],
        *,
        codec: Codec,
        peer: PeerInfo,
        max_frame_size: int,
    ) -> None:
        super().__init__(codec=codec, peer=peer)
        self._send = send
        self._receive = receive
        self._limit = max_frame_size

    async def send(self, msg: Message) -> None:
        """Encode one message and hand it to the peer (waits while the peer's buffer is full)."""
        data = self._codec.encode(msg)
        if len(data) > self._limit:
            raise message_too_large(len(data), self._limit)
        try:
            await self._send.send(data)
        except anyio.ClosedResourceError:
            raise ConnectionClosed(
                "cannot send: the connection is closed", code="transport.closed_locally"
            ) from None
        except anyio.BrokenResourceError as exc:
            raise TransportError(
                "the connection broke while sending", code="transport.broken", context={"error": repr(exc)}
            ) from exc

    async def receive(self) -> Message:
        """Receive and decode the next message."""
        try:
            data = await self._receive.receive()
        except anyio.EndOfStream:
            raise ConnectionClosed("the peer closed the connection", code="transport.closed") from None
        except anyio.ClosedResourceError:
            raise ConnectionClosed(
                "cannot receive: the connection is closed", code="transport.closed_locally"
            ) from None
        return self._codec.decode(data)

    async def aclose(self) -> None:
        """Close the connection (idempotent); the peer sees a clean end of stream."""
        if not self._closed:
            self._closed = True
            await self._send.aclose()
            await self._receive.aclose()


@attrs.define
class _MemoryListener:
    task_group: anyio.abc.TaskGroup
    handler: ConnectionHandler
    codec: Codec
    max_frame_size: int
    connections: int = 0


_MEMORY_LISTENERS: dict[str, _MemoryListener] = {}


def _memory_options(url: str, options: Mapping[str, Any] | None) -> tuple[str, Codec, int, Mapping[str, Any]]:
    """The name in a ``memory://`` URL, and the codec and frame limit the options ask for."""
    options = options or {}
    codec = resolve_codec(options.get("codec"), options.get("codec_registry"))
    limit = number_option(options, "max_frame_size", DEFAULT_MAX_FRAME_SIZE, integer=True)
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
    return name, codec, limit, options


class MemoryTransport:
    """``memory://<name>``: in-process connections between tasks of one event loop.

    Real encoding over anyio memory streams (bounded, so a slow reader applies backpressure),
    no sockets. Options: ``codec``, ``max_frame_size``, and ``buffer`` (messages in flight per
    direction, default 256).
    """

    scheme: Final = "memory"

    async def connect(self, url: str, *, options: Mapping[str, Any] | None = None) -> Connection:
        """Connect to the ``memory://name`` server running in this event loop."""
        name, codec, limit, options = _memory_options(url, options)
        buffer = number_option(options, "buffer", 256, integer=True)
        listener = _MEMORY_LISTENERS.get(name)
        if listener is None:
            raise TransportError(
                f"nothing is serving {url}",
                code="transport.connect_failed",
                context={"url": url, "reason": "no listener"},
                hint="start a server on this memory:// name first (in the same event loop)",
            )
        await anyio.lowlevel.checkpoint()
        to_server, server_inbox = anyio.create_memory_object_stream[bytes](buffer)
        to_client, client_inbox = anyio.create_memory_object_stream[bytes](buffer)
        listener.connections += 1
        number = listener.connections
        server_conn = _MemoryConnection(
            to_client,
            server_inbox,
            codec=listener.codec,
            peer=PeerInfo("memory", f"{name}#{number}", extra={"side": "client"}),
            max_frame_size=listener.max_frame_size,
        )
        listener.task_group.start_soon(run_handler, server_conn, listener.handler, url)
        return _MemoryConnection(
            to_server,
            client_inbox,
            codec=codec,
            peer=PeerInfo("memory", name, extra={"side": "server"}),
            max_frame_size=limit,
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
        name, codec, limit, _ = _memory_options(url, options)
        if name in _MEMORY_LISTENERS:
            raise ConflictError(
                f"{url} is already being served",
                code="transport.address_in_use",
                context={"url": url},
            )
        async with anyio.create_task_group() as tg:
            _MEMORY_LISTENERS[name] = _MemoryListener(tg, handler, codec, limit)
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

    Looks in ``registry`` (a :class:`~symphony.bus.TransportRegistry`; with a
    ``kernel``, its ``"transports"`` registry after activating the plugin providing
    ``transport:<scheme>``), then the built-in ``memory`` transport, then -- when ``autoload``
    and no kernel is given -- the installed ``symphony-transport-<scheme>`` plugin found by its
    entry point. An unknown scheme raises ``NotFoundError`` (code ``transport.unknown_scheme``)
    listing the known schemes and the package to install.
    """
    scheme = scheme_of(url)
    if kernel is not None:
        from symphony.bus._registries import kernel_registry

        registry = kernel_registry(kernel, "transports")
        if scheme not in registry and scheme not in _BUILTIN_TRANSPORTS:
            try:
                kernel.activate_slot(f"transport:{scheme}")
            except NotFoundError:
                pass
    if registry is None:
        from symphony.bus._registries import TransportRegistry

        registry = TransportRegistry()
    if scheme in registry:
        return _instantiate(registry.get(scheme))
    builtin = _BUILTIN_TRANSPORTS.get(scheme)
    if builtin is not None:
        return _instantiate(builtin)
    if autoload and kernel is None and _autoload(scheme, registry):
        return _instantiate(registry.get(scheme))
    known = sorted(set(registry.names()) | set(_BUILTIN_TRANSPORTS))
    raise NotFoundError(
        f"no transport for scheme {scheme!r} (in {url!r})",
        code="transport.unknown_scheme",
        context={"scheme": scheme, "url": url, "known": known},
        hint=f"pip install symphony-transport-{scheme}",
    )
