"""Hook implementations: the ``stale-manager`` service, its gc triggers and ``symphony artifacts gc``."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl

_SCHEDULERS: dict[int, Any] = {}
"""The scheduler each running kernel started, by ``id(kernel)``, stopped at its shutdown."""


@hookimpl
def symphony_activate(kernel: Any) -> None:
    """Add the ``symphony_collect_artifact_roots`` hookspec; with a trigger configured, activate the store first.

    The store is activated from here (not through ``requires``) only when a schedule or a disk
    threshold is set: a kernel without triggers pays nothing for this on-startup plugin, and one
    with triggers shuts the scheduler down before the store (reverse activation order).
    """
    from symphony_stale_manager import hookspecs

    caller = getattr(kernel.hook, "symphony_collect_artifact_roots", None)
    if caller is None or getattr(caller, "spec", None) is None:
        kernel.add_hookspecs(hookspecs)
    if _triggers(kernel):
        kernel.activate("symphony-artifact-store")


def _triggers(kernel: Any) -> bool:
    from symphony_stale_manager._policy import StalePolicy

    policy = StalePolicy.from_kernel(kernel)
    return policy.schedule_interval > 0 or policy.disk_threshold > 0


ROOTS_SLOT = "artifact-roots:"
"""Manifest slot prefix of plugins that report roots: they are activated before every gc plan."""


def roots_of(kernel: Any) -> Any:
    """A roots source asking every plugin's ``symphony_collect_artifact_roots``.

    Plugins whose manifest provides an ``artifact-roots:<name>`` slot are activated first (an
    on-demand plugin not yet imported would otherwise go unasked). If one cannot be activated,
    collecting fails: gc never runs without every root.
    """

    def collect() -> list[Any]:
        from symphony.commons.errors import PluginError

        wanted = kernel.providers(ROOTS_SLOT)
        kernel.activate_providers(ROOTS_SLOT)
        for record in wanted:
            if record.state.value != "active":
                raise PluginError(
                    f"cannot collect artifact roots from {record.id}: it is {record.state.value}; gc will not run without them",
                    code="stale.roots.unavailable",
                    context={"plugin": record.id, "state": record.state.value, "reason": record.reason},
                    hint=f"`symphony plugins inspect {record.id}` shows why",
                )
        return list(kernel.hook.symphony_collect_artifact_roots(kernel=kernel))

    return collect


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``stale-manager`` service (a :class:`StaleManager` over the ``artifact-store`` service)."""

    def build() -> Any:
        from symphony_stale_manager._manager import StaleManager
        from symphony_stale_manager._policy import StalePolicy

        return StaleManager(
            kernel.service("artifact-store"), StalePolicy.from_kernel(kernel), roots=roots_of(kernel)
        )

    registry.add_factory("stale-manager", build)


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``gc``, ``tier`` and ``trash list|empty`` to the store's ``symphony artifacts`` group once it is registered."""

    def extend(group: Any) -> None:
        from symphony_stale_manager.cli import extend_artifacts

        extend_artifacts(group)

    registry.extend("artifacts", extend)


@hookimpl
async def symphony_startup(kernel: Any) -> None:
    """Start the gc scheduler when ``[stale_manager]`` sets a schedule or a disk threshold."""
    if not _triggers(kernel):
        return
    from symphony_stale_manager._schedule import GcScheduler

    scheduler = GcScheduler(kernel.service("stale-manager"))
    _SCHEDULERS[id(kernel)] = scheduler
    kernel.start_soon(scheduler.run, name="stale-manager gc scheduler")


@hookimpl
async def symphony_shutdown(kernel: Any) -> None:
    """Stop the scheduler started for this kernel."""
    scheduler = _SCHEDULERS.pop(id(kernel), None)
    if scheduler is not None:
        scheduler.stop()


def scheduler_of(kernel: Any) -> Any:
    """The :class:`GcScheduler` running for ``kernel``, or None."""
    return _SCHEDULERS.get(id(kernel))
