"""The bus across processes: :class:`BusServer` serves a :class:`~symphony.bus.core.Bus` on a
transport URL, :class:`BusClient` reaches it from another process.

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
Every frame carries one :class:`~symphony.bus.message.Message`. A connection starts with a
handshake in the JSON codec: the client sends a ``_bus.hello`` request naming the protocol
version, the codecs it accepts (in order of preference), its name and capabilities; the server
answers with the chosen codec (the client's first choice the server also has), after which
both sides switch to it. Transports may authenticate before that (the TCP transport checks a
shared token; the Unix transport checks the peer's uid) and refuse with an ``error`` frame.

After the handshake, messages whose type starts with ``_bus.`` are control messages:

``_bus.ping`` / ``_bus.pong``          (events) heartbeats: either side pings after
                                       ``heartbeat_interval`` seconds of silence
``_bus.subscribe`` / ``_bus.unsubscribe``  (requests) ``{"sid", "pattern", "buffer", "policy"}``:
                                       the server forwards matching events, tagged with the
                                       ``x-symphony-sub`` header naming the subscription
``_bus.handle`` / ``_bus.unhandle``    (requests) ``{"hid", "pattern", "priority"}``: the server
                                       routes matching requests to this peer

Everything else is data: the peer's requests are answered by the server bus's routing (which
may route them on to another peer), its events are published on the server bus, and
responses/errors answer requests the other side sent. Each server-side peer is registered as a
bus :class:`~symphony.bus.endpoints.Endpoint` named ``<client name>#<n>``.

Failure
-------
* A peer that closes, crashes or is killed is noticed as soon as its socket reports end of
  stream; every request waiting on it then fails with
  ``TransportError(code="transport.peer_lost")``, on both sides.
* A peer that stays connected but silent (hung, SIGSTOPped, partitioned) is dropped after
  ``heartbeat_timeout`` seconds without any frame (the other side pings it after
  ``heartbeat_interval`` seconds of silence), with the same errors.
* :class:`BusClient` reconnects with exponential backoff and full jitter
  (:class:`~symphony.bus.backoff.Backoff`) and restores its subscriptions and handlers;
  requests made while it reconnects wait for the connection within their own timeout.
* Errors cross intact: a handler's :class:`~symphony.commons.errors.SymphonyError` arrives
  with the same class, code, message, context and hint.

Non-native connections (``Connection.native`` false: the JSON-RPC stdio transport) skip the
handshake and heartbeats: requests and notifications map to JSON-RPC, subscriptions and
handlers are local to the client.

The code lives in :mod:`symphony.bus._link` (what both sides share), :mod:`symphony.bus._server`
and :mod:`symphony.bus._client`; import it from here.
"""

from __future__ import annotations

from symphony.bus._client import BusClient, ClientHandler, RemoteSubscription
from symphony.bus._link import CONTROL_PREFIX, PROTOCOL_VERSION, SUBSCRIPTION_HEADER, peer_lost
from symphony.bus._server import BusServer, ServerPeer

__all__ = [
    "CONTROL_PREFIX",
    "PROTOCOL_VERSION",
    "SUBSCRIPTION_HEADER",
    "BusClient",
    "BusServer",
    "ClientHandler",
    "RemoteSubscription",
    "ServerPeer",
    "peer_lost",
]
