"""The Symphony message bus, in process: envelope, codecs, registries, routing, subscriptions,
request/response, endpoints, health, metrics, and the transport contract with the built-in
``memory://`` transport.

The package README shows it at work.

This package exports what a user of the bus calls, and the registry classes the bus hooks
receive. Whoever writes a transport or links buses together imports the rest of the kit from
:mod:`symphony.bus.links` (connection handlers, message kinds, correlation, topic tries). The
``_``-prefixed modules are private: their layout may change without notice.

The bus across processes (``BusServer``, ``BusClient``, framing, sockets, ``symphony serve``) is
the ``symphony-bus-remote`` distribution (import ``symphony_bus_remote``), which the unix, tcp
and stdio transports build on.

Names are imported lazily, so ``import symphony.bus`` stays cheap until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.commons.lazy import lazy_getattr

if TYPE_CHECKING:
    from symphony.bus._codecs import Codec, JsonCodec, MsgpackCodec, get_codec
    from symphony.bus._config import BUS_CONFIG_SCHEMA, BusConfig
    from symphony.bus._core import Bus
    from symphony.bus._endpoints import Endpoint, LocalEndpoint
    from symphony.bus._health import HealthStatus
    from symphony.bus._message import Message, message_from_wire, message_to_wire
    from symphony.bus._metrics import BusMetrics
    from symphony.bus._registries import (
        BusHandlerRegistry,
        CodecRegistry,
        MessageType,
        MessageTypeRegistry,
        TransportRegistry,
    )
    from symphony.bus._routing import Handler
    from symphony.bus._subscription import CallbackSubscription, Policy, Subscription
    from symphony.bus._topics import topic_matches
    from symphony.bus._transport import (
        Connection,
        ConnectionClosed,
        MemoryTransport,
        PeerInfo,
        Transport,
        open_transport,
    )

_LAZY: dict[str, str] = {
    "Codec": "symphony.bus._codecs",
    "JsonCodec": "symphony.bus._codecs",
    "MsgpackCodec": "symphony.bus._codecs",
    "get_codec": "symphony.bus._codecs",
    "BUS_CONFIG_SCHEMA": "symphony.bus._config",
    "BusConfig": "symphony.bus._config",
    "Bus": "symphony.bus._core",
    "Endpoint": "symphony.bus._endpoints",
    "LocalEndpoint": "symphony.bus._endpoints",
    "HealthStatus": "symphony.bus._health",
    "Message": "symphony.bus._message",
    "message_from_wire": "symphony.bus._message",
    "message_to_wire": "symphony.bus._message",
    "BusMetrics": "symphony.bus._metrics",
    "BusHandlerRegistry": "symphony.bus._registries",
    "CodecRegistry": "symphony.bus._registries",
    "MessageType": "symphony.bus._registries",
    "MessageTypeRegistry": "symphony.bus._registries",
    "TransportRegistry": "symphony.bus._registries",
    "Handler": "symphony.bus._routing",
    "CallbackSubscription": "symphony.bus._subscription",
    "Policy": "symphony.bus._subscription",
    "Subscription": "symphony.bus._subscription",
    "topic_matches": "symphony.bus._topics",
    "Connection": "symphony.bus._transport",
    "ConnectionClosed": "symphony.bus._transport",
    "MemoryTransport": "symphony.bus._transport",
    "PeerInfo": "symphony.bus._transport",
    "Transport": "symphony.bus._transport",
    "open_transport": "symphony.bus._transport",
}

__all__ = [
    "BUS_CONFIG_SCHEMA",
    "Bus",
    "BusConfig",
    "BusHandlerRegistry",
    "BusMetrics",
    "CallbackSubscription",
    "Codec",
    "CodecRegistry",
    "Connection",
    "ConnectionClosed",
    "Endpoint",
    "Handler",
    "HealthStatus",
    "JsonCodec",
    "LocalEndpoint",
    "MemoryTransport",
    "Message",
    "MessageType",
    "MessageTypeRegistry",
    "MsgpackCodec",
    "PeerInfo",
    "Policy",
    "Subscription",
    "Transport",
    "TransportRegistry",
    "get_codec",
    "message_from_wire",
    "message_to_wire",
    "open_transport",
    "topic_matches",
]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
