"""The Symphony message bus, in process: envelope, codecs, registries, routing, subscriptions,
request/response, endpoints, health, metrics, and the transport contract with the built-in
``memory://`` transport.

The package README shows it at work.

This package exports what a user of the bus calls. The modules hold the rest, for plugin
authors: :mod:`~symphony.bus.message` (the envelope, its kinds and wire form),
:mod:`~symphony.bus.codecs`, :mod:`~symphony.bus.registries`, :mod:`~symphony.bus.topics`
(wildcard semantics), :mod:`~symphony.bus.subscription` (backpressure policies),
:mod:`~symphony.bus.routing`, :mod:`~symphony.bus.correlation`, :mod:`~symphony.bus.endpoints`,
:mod:`~symphony.bus.health`, :mod:`~symphony.bus.metrics`,
:mod:`~symphony.bus.config`, :mod:`~symphony.bus.sync`, :mod:`~symphony.bus.core` (the
:class:`Bus`) and :mod:`~symphony.bus.transport` (the contract every transport meets).

The bus across processes (``BusServer``, ``BusClient``, framing, sockets, ``symphony serve``) is
the ``symphony-bus-remote`` distribution (import ``symphony_bus_remote``), which the unix, tcp
and stdio transports build on.

Names are imported lazily, so ``import symphony.bus`` stays cheap until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.commons.lazy import lazy_getattr

if TYPE_CHECKING:
    from symphony.bus.codecs import Codec, JsonCodec, MsgpackCodec, get_codec
    from symphony.bus.config import BUS_CONFIG_SCHEMA, BusConfig
    from symphony.bus.core import Bus
    from symphony.bus.endpoints import Endpoint, LocalEndpoint
    from symphony.bus.health import HealthStatus
    from symphony.bus.message import Message, message_from_wire, message_to_wire
    from symphony.bus.metrics import BusMetrics
    from symphony.bus.registries import CodecRegistry, MessageType, MessageTypeRegistry, TransportRegistry
    from symphony.bus.routing import Handler
    from symphony.bus.subscription import CallbackSubscription, Policy, Subscription
    from symphony.bus.topics import topic_matches
    from symphony.bus.transport import (
        Connection,
        ConnectionClosed,
        MemoryTransport,
        PeerInfo,
        Transport,
        open_transport,
    )

_LAZY: dict[str, str] = {
    "Codec": "symphony.bus.codecs",
    "JsonCodec": "symphony.bus.codecs",
    "MsgpackCodec": "symphony.bus.codecs",
    "get_codec": "symphony.bus.codecs",
    "BUS_CONFIG_SCHEMA": "symphony.bus.config",
    "BusConfig": "symphony.bus.config",
    "Bus": "symphony.bus.core",
    "Endpoint": "symphony.bus.endpoints",
    "LocalEndpoint": "symphony.bus.endpoints",
    "HealthStatus": "symphony.bus.health",
    "Message": "symphony.bus.message",
    "message_from_wire": "symphony.bus.message",
    "message_to_wire": "symphony.bus.message",
    "BusMetrics": "symphony.bus.metrics",
    "CodecRegistry": "symphony.bus.registries",
    "MessageType": "symphony.bus.registries",
    "MessageTypeRegistry": "symphony.bus.registries",
    "TransportRegistry": "symphony.bus.registries",
    "Handler": "symphony.bus.routing",
    "CallbackSubscription": "symphony.bus.subscription",
    "Policy": "symphony.bus.subscription",
    "Subscription": "symphony.bus.subscription",
    "topic_matches": "symphony.bus.topics",
    "Connection": "symphony.bus.transport",
    "ConnectionClosed": "symphony.bus.transport",
    "MemoryTransport": "symphony.bus.transport",
    "PeerInfo": "symphony.bus.transport",
    "Transport": "symphony.bus.transport",
    "open_transport": "symphony.bus.transport",
}

__all__ = [
    "BUS_CONFIG_SCHEMA",
    "Bus",
    "BusConfig",
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
