"""Hook implementations of ``symphony-transport-tcp`` (the entry point module)."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl
from symphony_transport_tcp.transport import TcpTransport


@hookimpl
def symphony_register_transports(registry: Any) -> None:
    """Register the ``tcp`` scheme."""
    registry.add("tcp", TcpTransport)
