"""Hook implementations: the ``conductor`` service, the ``run.*`` bus handlers, ``symphony run``
and ``symphony runs``.

The conductor activates at kernel start (so a served bus answers ``run.*`` from the start);
this module stays small and imports the conductor itself, the workflow plugin and the DAG
tracker only when a run or a request needs them.
"""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl

_CONDUCTORS: dict[int, Any] = {}
"""The conductor each kernel's service built, by ``id(kernel)``, stopped at its shutdown."""


def _conductor(kernel: Any) -> Any:
    conductor = _CONDUCTORS.get(id(kernel))
    if conductor is None:
        from symphony_conductor._conductor import Conductor

        conductor = Conductor.from_kernel(kernel)
        _CONDUCTORS[id(kernel)] = conductor
    return conductor


@hookimpl
def symphony_activate(kernel: Any) -> None:
    """Add the conductor's hookspec (``symphony_choose_implementation``)."""
    from symphony_conductor import hookspecs

    caller = getattr(kernel.hook, "symphony_choose_implementation", None)
    if caller is None or not caller.has_spec():
        kernel.add_hookspecs(hookspecs)


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``conductor`` service (a :class:`~symphony_conductor.Conductor`), built on first use."""
    registry.add_factory("conductor", lambda: _conductor(kernel))


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``symphony run`` and ``symphony runs``."""
    from symphony_conductor._cli import run, runs

    registry.add(run)
    registry.add(runs)


@hookimpl
def symphony_startup(kernel: Any) -> None:
    """Answer ``run.submit``, ``run.status``, ``run.list`` and ``run.control`` on the kernel's bus."""
    from symphony_conductor._bus import register_handlers

    register_handlers(kernel, lambda: _conductor(kernel))


@hookimpl
async def symphony_shutdown(kernel: Any) -> None:
    """Cancel the runs still going (their checkpoints let them resume) and forget the conductor."""
    conductor = _CONDUCTORS.pop(id(kernel), None)
    if conductor is not None:
        await conductor.aclose()
