"""The ``[bus]`` configuration section: its JSON Schema and the typed :class:`BusConfig`.

Each key's meaning and default are the ``description`` and ``default`` in :data:`BUS_CONFIG_SCHEMA`.
Environment variables follow the config rules: ``SYMPHONY_BUS__DEFAULT_TIMEOUT=2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

__all__ = ["BUS_CONFIG_SCHEMA", "BusConfig"]

MIB: Final = 1024 * 1024

BUS_CONFIG_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bus",
    "description": "The Symphony message bus: timeouts, heartbeats, queues, codec and its socket.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "default_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 5.0,
            "description": "Seconds a request waits for its answer when the caller gives no timeout.",
        },
        "heartbeat_interval": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 1.0,
            "description": "Seconds between health checks and endpoint pings.",
        },
        "heartbeat_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 3.0,
            "description": "Seconds without a heartbeat after which an endpoint is unhealthy.",
        },
        "default_buffer": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1_000_000,
            "default": 100,
            "description": "Queue size of subscriptions that do not choose one.",
        },
        "default_policy": {
            "enum": ["wait", "drop-oldest"],
            "default": "wait",
            "description": "Backpressure policy of subscriptions that do not choose one.",
        },
        "slow_consumer_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "default": 2.0,
            "description": "Seconds a 'wait' subscription's queue may stay full before the "
            "subscriber is flagged a slow consumer and dropped (a remote one is disconnected); "
            "the longest a publisher is held by one full subscription.",
        },
        "max_frame_size": {
            "type": "integer",
            "minimum": 1024,
            "maximum": 1024 * MIB,
            "default": 16 * MIB,
            "description": "Largest frame (bytes) a transport accepts.",
        },
        "codec": {
            "type": "string",
            "minLength": 1,
            "default": "msgpack",
            "description": "Codec for socket connections: json, msgpack, or one a plugin provides.",
        },
        "busy_poll": {
            "type": "number",
            "minimum": 0,
            "maximum": 0.01,
            "default": 0.0001,
            "description": "Seconds after a request or an answer it sent a socket reader may keep the "
            "loop turning before it parks (busy polling; symphony-bus-remote); 0 = off.",
        },
        "unknown_message_types": {
            "enum": ["allow", "strict"],
            "default": "allow",
            "description": "Accept or reject inbound messages whose (type, version) nobody registered.",
        },
        "validate_inbound": {
            "type": "boolean",
            "default": True,
            "description": "Validate payloads of messages arriving from remote peers against their schema.",
        },
        "socket": {
            "type": ["string", "null"],
            "default": None,
            "description": "Unix socket path `symphony serve` listens on and `symphony bus` connects to; "
            "null or empty = the platform default.",
        },
    },
}
"""JSON Schema of the ``[bus]`` config section (the lead registers it as a core section)."""


@attrs.frozen(slots=True)
class BusConfig:
    """The ``[bus]`` section, typed, with the schema's defaults filled in."""

    default_timeout: float = 5.0
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 3.0
    default_buffer: int = 100
    default_policy: Literal["wait", "drop-oldest"] = "wait"
    slow_consumer_timeout: float = 2.0
    max_frame_size: int = 16 * MIB
    codec: str = "msgpack"
    busy_poll: float = 0.0001
    unknown_message_types: Literal["allow", "strict"] = "allow"
    validate_inbound: bool = True
    socket: str | None = None

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None, *, source: str = "Bus(config=...)", validated: bool = False
    ) -> BusConfig:
        """Validate ``data`` against :data:`BUS_CONFIG_SCHEMA` and build a :class:`BusConfig`.

        ``validated=True`` skips the check for a section the kernel's layered config already
        validated (``Bus.from_kernel``). Raises :class:`~symphony.commons.errors.ConfigError`
        exactly as the layered config does (:func:`symphony.commons.config.validate_section`):
        ``config.unknown_key`` or ``config.invalid``, naming the key and the rule that failed;
        ``source`` is shown as where the values came from.
        """
        raw = dict(data or {})
        if not validated:
            from symphony.commons.config import validate_section

            validate_section("bus", raw, BUS_CONFIG_SCHEMA, source=source)
        schema = BUS_CONFIG_SCHEMA["properties"]
        # JSON numbers may be written as integers; the typed fields are floats.
        values: dict[str, Any] = {
            k: float(v) if schema[k].get("type") == "number" else v for k, v in raw.items() if k in schema
        }
        return cls(**values)
