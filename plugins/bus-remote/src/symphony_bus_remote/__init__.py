"""symphony-bus-remote: the Symphony bus across processes.

:class:`BusServer` serves a :class:`~symphony.bus.Bus` on a transport URL, :class:`BusClient`
reaches it from another process. Also here: what socket transports are built from (framed
:class:`StreamConnection`, :func:`serve_sockets`, :func:`open_socket_stream` with its busy
polling, the handshake helpers) and the ``symphony serve`` / ``symphony bus`` commands, which
meet on :func:`served_socket`.

::

    # process A
    async with Bus() as bus, BusServer(bus, "unix:///tmp/sym.sock"):
        bus.handle("demo.add", lambda msg: msg.payload["a"] + msg.payload["b"])
        await anyio.sleep_forever()

    # process B
    async with BusClient.connect("unix:///tmp/sym.sock") as client:
        reply = await client.request("demo.add", {"a": 1, "b": 2}, timeout=2)
        assert reply.payload == 3

Protocol
--------
Every frame carries one :class:`~symphony.bus.Message`. A connection starts with a
handshake in the JSON codec: the client sends a ``_bus.hello`` request naming the protocol
version, the codecs it accepts (in order of preference), its name and capabilities; the server
answers with the chosen codec (the client's first choice the server also has), after which
both sides switch to it. Transports may authenticate before that (the TCP transport checks a
shared token; the Unix transport checks the peer's uid) and refuse with an ``error`` frame.
Until the handshake is done a peer's frames may be at most
:data:`PRE_HANDSHAKE_MAX_FRAME_SIZE` (64 KiB), on every socket transport; then
``max_frame_size``.

After the handshake, messages whose type starts with ``_bus.`` are control messages:

``_bus.ping`` / ``_bus.pong``          (events) heartbeats: either side pings after
                                       ``heartbeat_interval`` seconds of silence
``_bus.subscribe`` / ``_bus.unsubscribe``  (requests) ``{"sid", "pattern", "buffer", "policy"}``:
                                       the server forwards matching events, tagged with the
                                       ``x-symphony-sub`` header naming the subscription
``_bus.handle`` / ``_bus.unhandle``    (requests) ``{"hid", "pattern", "priority"}``: the server
                                       routes matching requests to this peer
``_bus.closing``                       (event) ``{"code", "message"}``: why the sender is about
                                       to drop the connection (e.g. ``bus.slow_consumer``)

Everything else is data: the peer's requests are answered by the server bus's routing (which
may route them on to another peer), its events are published on the server bus, and
responses/errors answer requests the other side sent. Each server-side peer is registered as a
bus :class:`~symphony.bus.Endpoint` named ``<client name>#<n>``.

Failure
-------
* A peer that closes, crashes or is killed is noticed as soon as its socket reports end of
  stream; every request waiting on it then fails with
  ``TransportError(code="transport.peer_lost")``, on both sides.
* A peer that stays connected but silent (hung, SIGSTOPped, partitioned) is dropped after
  ``heartbeat_timeout`` seconds without any frame (the other side pings it after
  ``heartbeat_interval`` seconds of silence), with the same errors.
* :class:`BusClient` reconnects with exponential backoff and full jitter
  (:class:`~symphony_bus_remote._backoff.Backoff`) and restores its subscriptions and handlers;
  requests made while it reconnects wait for the connection within their own timeout.
* A peer whose subscription (policy ``wait``) keeps its queue full for
  ``bus.slow_consumer_timeout`` seconds is a slow consumer: the server drops the subscription
  and disconnects the peer (after a ``_bus.closing`` notice), and its publishers go on. A
  reader held by that backpressure meanwhile is not counted as silent.
* When the client gives up (``reconnect=False``, or the policy's attempts ran out), its
  subscriptions end too: iterating one raises the connection's error once it is drained.
* Errors cross intact: a handler's :class:`~symphony.commons.errors.SymphonyError` arrives
  with the same class, code, message, context and hint.

Non-native connections (``Connection.native`` false: the JSON-RPC stdio transport) skip the
handshake and heartbeats: requests and notifications map to JSON-RPC, subscriptions and
handlers are local to the client.

Backend fast paths: on asyncio a socket is adopted by the event loop for the whole connection
(``_asyncio_stream``); on trio, or a loop that cannot adopt sockets, the plain anyio stream
(``_socket_stream``) serves. Names are imported lazily, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.commons.lazy import lazy_getattr

if TYPE_CHECKING:
    from symphony_bus_remote._backoff import Backoff, Reconnector, retry
    from symphony_bus_remote._busypoll import DEFAULT_BUSY_POLL
    from symphony_bus_remote._client import BusClient, ClientHandler, RemoteSubscription
    from symphony_bus_remote._framing import (
        HEADER_SIZE,
        FrameDecoder,
        FramedStream,
        encode_frame,
        encode_frames,
    )
    from symphony_bus_remote._link import PROTOCOL_VERSION
    from symphony_bus_remote._same_process import note_local_end, peer_credentials
    from symphony_bus_remote._serve_cmd import served_socket
    from symphony_bus_remote._server import BusServer, ServerPeer
    from symphony_bus_remote._socket_stream import SocketByteStream, open_socket_stream
    from symphony_bus_remote._sockets import (
        DEFAULT_CONNECT_TIMEOUT,
        HANDSHAKE_CODEC,
        PRE_HANDSHAKE_MAX_FRAME_SIZE,
        CommonOptions,
        StreamConnection,
        common_options,
        send_refusal,
        serve_sockets,
    )

_LAZY: dict[str, str] = {
    **dict.fromkeys(("Backoff", "Reconnector", "retry"), "symphony_bus_remote._backoff"),
    "DEFAULT_BUSY_POLL": "symphony_bus_remote._busypoll",
    **dict.fromkeys(("BusClient", "ClientHandler", "RemoteSubscription"), "symphony_bus_remote._client"),
    **dict.fromkeys(
        ("HEADER_SIZE", "FrameDecoder", "FramedStream", "encode_frame", "encode_frames"),
        "symphony_bus_remote._framing",
    ),
    "PROTOCOL_VERSION": "symphony_bus_remote._link",
    **dict.fromkeys(("note_local_end", "peer_credentials"), "symphony_bus_remote._same_process"),
    "served_socket": "symphony_bus_remote._serve_cmd",
    **dict.fromkeys(("BusServer", "ServerPeer"), "symphony_bus_remote._server"),
    **dict.fromkeys(("SocketByteStream", "open_socket_stream"), "symphony_bus_remote._socket_stream"),
    **dict.fromkeys(
        (
            "DEFAULT_CONNECT_TIMEOUT",
            "HANDSHAKE_CODEC",
            "PRE_HANDSHAKE_MAX_FRAME_SIZE",
            "CommonOptions",
            "StreamConnection",
            "common_options",
            "send_refusal",
            "serve_sockets",
        ),
        "symphony_bus_remote._sockets",
    ),
}

__all__ = [
    "DEFAULT_BUSY_POLL",
    "DEFAULT_CONNECT_TIMEOUT",
    "HANDSHAKE_CODEC",
    "HEADER_SIZE",
    "PRE_HANDSHAKE_MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "Backoff",
    "BusClient",
    "BusServer",
    "ClientHandler",
    "CommonOptions",
    "FrameDecoder",
    "FramedStream",
    "Reconnector",
    "RemoteSubscription",
    "ServerPeer",
    "SocketByteStream",
    "StreamConnection",
    "common_options",
    "encode_frame",
    "encode_frames",
    "note_local_end",
    "open_socket_stream",
    "peer_credentials",
    "retry",
    "send_refusal",
    "serve_sockets",
    "served_socket",
]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
