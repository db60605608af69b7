"""The plugin module: adds the ``symphony serve`` and ``symphony bus`` commands."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``symphony serve`` and ``symphony bus ...`` (imported only when one is invoked)."""
    from symphony_bus_remote._bus_cmd import bus
    from symphony_bus_remote._serve_cmd import serve

    registry.add(serve)
    registry.add(bus)
