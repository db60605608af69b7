"""Hook implementations: what the kernel calls when the arbitration engine is activated."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl


@hookimpl
def symphony_activate(kernel: Any) -> None:
    """Add the ``symphony_arbitration_decision`` hookspec."""
    from symphony_arbitration_engine import hookspecs

    caller = getattr(kernel.hook, "symphony_arbitration_decision", None)
    if caller is None or getattr(caller, "spec", None) is None:
        kernel.add_hookspecs(hookspecs)


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``arbitration`` service, configured from the ``[arbitration]`` section."""
    from symphony_arbitration_engine.service import engine_from_kernel

    registry.add_factory("arbitration", lambda: engine_from_kernel(kernel))


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``symphony arbitration ...``."""
    from symphony_arbitration_engine.cli import arbitration

    registry.add(arbitration)
