"""Hook implementations of ``symphony-transport-stdio`` (the entry point module)."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl
from symphony_transport_stdio.transport import StdioTransport


@hookimpl
def symphony_register_transports(registry: Any) -> None:
    """Register the ``stdio`` scheme."""
    registry.add("stdio", StdioTransport)
