"""The Symphony message bus: envelope, codecs, registries, in-process core and transports.

::

    from symphony.bus import Bus, Message

    async with Bus() as bus:
        bus.handle("demo.greet", greet)                 # request routing
        reply = await bus.request("demo.greet", {"name": "Ada"})
        async with bus.subscribe("demo.#") as sub:      # pub/sub with * and # wildcards
            await bus.publish(Message("demo.tick", {"n": 1}))

Modules: :mod:`~symphony.bus.message` (the envelope and its wire form),
:mod:`~symphony.bus.codecs` (json, msgpack), :mod:`~symphony.bus.registries` (transports,
codecs, message types + schemas), :mod:`~symphony.bus.topics` (wildcard semantics),
:mod:`~symphony.bus.subscription` (backpressure policies), :mod:`~symphony.bus.routing`,
:mod:`~symphony.bus.correlation`, :mod:`~symphony.bus.endpoints`, :mod:`~symphony.bus.health`,
:mod:`~symphony.bus.batching`, :mod:`~symphony.bus.metrics`, :mod:`~symphony.bus.config`,
:mod:`~symphony.bus.core` (the :class:`Bus`), and the transport layer
(:mod:`~symphony.bus.transport`, :mod:`~symphony.bus.framing`, :mod:`~symphony.bus.remote`,
:mod:`~symphony.bus.backoff`).

Names are imported lazily, so ``import symphony.bus`` stays cheap until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symphony.bus.backoff import (
        Backoff,
        Reconnector,
        retry,
    )
    from symphony.bus.batching import (
        Batcher,
    )
    from symphony.bus.codecs import (
        BUILTIN_CODECS,
        Codec,
        JsonCodec,
        MsgpackCodec,
        get_codec,
    )
    from symphony.bus.config import (
        BUS_CONFIG_SCHEMA,
        BusConfig,
        TcpConfig,
        default_socket_path,
    )
    from symphony.bus.core import (
        ENDPOINT_HEALTH,
        Bus,
    )
    from symphony.bus.correlation import (
        Correlator,
        PendingRequest,
    )
    from symphony.bus.endpoints import (
        ENDPOINT_REGISTERED,
        ENDPOINT_UNREGISTERED,
        Endpoint,
        EndpointRegistry,
        LocalEndpoint,
    )
    from symphony.bus.framing import (
        DEFAULT_MAX_FRAME_SIZE,
        ConnectionClosed,
        FrameDecoder,
        FramedStream,
        encode_frame,
        encode_frames,
    )
    from symphony.bus.health import (
        HealthMonitor,
        HealthStatus,
    )
    from symphony.bus.message import (
        ERROR,
        EVENT,
        KINDS,
        REQUEST,
        RESPONSE,
        Message,
        check_payload,
        is_valid_type,
        message_from_wire,
        message_to_wire,
        new_id,
    )
    from symphony.bus.metrics import (
        BusMetrics,
        LatencyHistogram,
    )
    from symphony.bus.registries import (
        CodecRegistry,
        MessageType,
        MessageTypeRegistry,
        TransportRegistry,
    )
    from symphony.bus.remote import (
        PROTOCOL_VERSION,
        BusClient,
        BusServer,
        ClientHandler,
        RemoteSubscription,
        ServerPeer,
    )
    from symphony.bus.routing import (
        Handler,
        Route,
        Router,
    )
    from symphony.bus.subscription import (
        CallbackSubscription,
        Policy,
        Subscription,
    )
    from symphony.bus.topics import (
        TopicTrie,
        split_pattern,
        topic_matches,
        validate_pattern,
    )
    from symphony.bus.transport import (
        Connection,
        ConnectionHandler,
        MemoryTransport,
        PeerInfo,
        StreamConnection,
        Transport,
        open_socket_stream,
        open_transport,
        register_builtin_transports,
        serve_sockets,
    )

_OWN: dict[str, str] = {
    **dict.fromkeys(
        (
            "ERROR",
            "EVENT",
            "KINDS",
            "REQUEST",
            "RESPONSE",
            "Message",
            "check_payload",
            "is_valid_type",
            "message_from_wire",
            "message_to_wire",
            "new_id",
        ),
        "symphony.bus.message",
    ),
    **dict.fromkeys(
        ("BUILTIN_CODECS", "Codec", "JsonCodec", "MsgpackCodec", "get_codec"), "symphony.bus.codecs"
    ),
    **dict.fromkeys(
        ("CodecRegistry", "MessageType", "MessageTypeRegistry", "TransportRegistry"),
        "symphony.bus.registries",
    ),
    **dict.fromkeys(
        ("TopicTrie", "split_pattern", "topic_matches", "validate_pattern"), "symphony.bus.topics"
    ),
    **dict.fromkeys(("CallbackSubscription", "Policy", "Subscription"), "symphony.bus.subscription"),
    **dict.fromkeys(("Handler", "Route", "Router"), "symphony.bus.routing"),
    **dict.fromkeys(("Correlator", "PendingRequest"), "symphony.bus.correlation"),
    **dict.fromkeys(
        ("ENDPOINT_REGISTERED", "ENDPOINT_UNREGISTERED", "Endpoint", "EndpointRegistry", "LocalEndpoint"),
        "symphony.bus.endpoints",
    ),
    **dict.fromkeys(("HealthMonitor", "HealthStatus"), "symphony.bus.health"),
    **dict.fromkeys(("BusMetrics", "LatencyHistogram"), "symphony.bus.metrics"),
    **dict.fromkeys(
        ("BUS_CONFIG_SCHEMA", "BusConfig", "TcpConfig", "default_socket_path"), "symphony.bus.config"
    ),
    "Batcher": "symphony.bus.batching",
    "Bus": "symphony.bus.core",
    "ENDPOINT_HEALTH": "symphony.bus.core",
}

# The transport layer's public names (modules written alongside this package).
_TRANSPORT: dict[str, str] = {
    **dict.fromkeys(
        (
            "Connection",
            "ConnectionHandler",
            "MemoryTransport",
            "PeerInfo",
            "StreamConnection",
            "Transport",
            "open_transport",
            "open_socket_stream",
            "register_builtin_transports",
            "serve_sockets",
        ),
        "symphony.bus.transport",
    ),
    **dict.fromkeys(
        (
            "DEFAULT_MAX_FRAME_SIZE",
            "ConnectionClosed",
            "FrameDecoder",
            "FramedStream",
            "encode_frame",
            "encode_frames",
        ),
        "symphony.bus.framing",
    ),
    **dict.fromkeys(("Backoff", "Reconnector", "retry"), "symphony.bus.backoff"),
    **dict.fromkeys(
        ("PROTOCOL_VERSION", "BusClient", "BusServer", "ClientHandler", "RemoteSubscription", "ServerPeer"),
        "symphony.bus.remote",
    ),
}

_LAZY: dict[str, str] = {**_OWN, **_TRANSPORT}

__all__ = [
    "BUILTIN_CODECS",
    "BUS_CONFIG_SCHEMA",
    "DEFAULT_MAX_FRAME_SIZE",
    "ENDPOINT_HEALTH",
    "ENDPOINT_REGISTERED",
    "ENDPOINT_UNREGISTERED",
    "ERROR",
    "EVENT",
    "KINDS",
    "PROTOCOL_VERSION",
    "REQUEST",
    "RESPONSE",
    "Backoff",
    "Batcher",
    "Bus",
    "BusClient",
    "BusConfig",
    "BusMetrics",
    "BusServer",
    "CallbackSubscription",
    "ClientHandler",
    "Codec",
    "CodecRegistry",
    "Connection",
    "ConnectionClosed",
    "ConnectionHandler",
    "Correlator",
    "Endpoint",
    "EndpointRegistry",
    "FrameDecoder",
    "FramedStream",
    "Handler",
    "HealthMonitor",
    "HealthStatus",
    "JsonCodec",
    "LatencyHistogram",
    "LocalEndpoint",
    "MemoryTransport",
    "Message",
    "MessageType",
    "MessageTypeRegistry",
    "MsgpackCodec",
    "PeerInfo",
    "PendingRequest",
    "Policy",
    "Reconnector",
    "RemoteSubscription",
    "Route",
    "Router",
    "ServerPeer",
    "StreamConnection",
    "Subscription",
    "TcpConfig",
    "TopicTrie",
    "Transport",
    "TransportRegistry",
    "check_payload",
    "default_socket_path",
    "encode_frame",
    "encode_frames",
    "get_codec",
    "is_valid_type",
    "message_from_wire",
    "message_to_wire",
    "new_id",
    "open_socket_stream",
    "open_transport",
    "register_builtin_transports",
    "retry",
    "serve_sockets",
    "split_pattern",
    "topic_matches",
    "validate_pattern",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symphony.bus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
