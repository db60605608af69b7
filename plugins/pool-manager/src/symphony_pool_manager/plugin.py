"""Hook implementations: what the kernel calls when the pool manager is activated."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl


@hookimpl
def symphony_activate(kernel: Any) -> None:
    """Add the pool hookspecs (``symphony_pool_transition``, ``symphony_pool_predictors``)."""
    from symphony_pool_manager import hookspecs

    caller = getattr(kernel.hook, "symphony_pool_transition", None)
    if caller is None or getattr(caller, "spec", None) is None:
        kernel.add_hookspecs(hookspecs)


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``pool-manager`` service, configured from the ``[pool_manager]`` section."""
    from symphony_pool_manager.service import pool_from_kernel

    registry.add_factory("pool-manager", lambda: pool_from_kernel(kernel))


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``symphony pool ...``."""
    from symphony_pool_manager.cli import pool

    registry.add(pool)


@hookimpl
async def symphony_startup(kernel: Any) -> None:
    """Run the pool's background duties (keep-alive, health, predictions) in the kernel's task group."""
    pool = kernel.service("pool-manager")
    kernel.start_soon(pool.run, name="pool-manager")


@hookimpl
async def symphony_shutdown(kernel: Any) -> None:
    """Cool every idle model (scheduled cool-down)."""
    await kernel.service("pool-manager").aclose()
