"""Hook implementations of ``symphony-transport-unix`` (the entry point module)."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl
from symphony_transport_unix.transport import UnixTransport


@hookimpl
def symphony_register_transports(registry: Any) -> None:
    """Register the ``unix`` scheme."""
    registry.add("unix", UnixTransport)
