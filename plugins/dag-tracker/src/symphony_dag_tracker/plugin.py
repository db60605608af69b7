"""Hook implementations: the ``dag-tracker`` service."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl

_TRACKERS: dict[int, Any] = {}
"""The tracker each kernel's service opened, by ``id(kernel)``, closed at its shutdown."""


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``dag-tracker`` service (a :class:`DagTracker`), opened on first use."""

    def build() -> Any:
        from symphony_dag_tracker._tracker import DagTracker

        tracker = DagTracker.from_kernel(kernel)
        _TRACKERS[id(kernel)] = tracker
        return tracker

    registry.add_factory("dag-tracker", build)


@hookimpl
def symphony_shutdown(kernel: Any) -> None:
    """Close the tracker the service opened, if it was used."""
    tracker = _TRACKERS.pop(id(kernel), None)
    if tracker is not None:
        tracker.close()
