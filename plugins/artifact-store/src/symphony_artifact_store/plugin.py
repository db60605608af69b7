"""Hook implementations: the ``artifact-store`` service and the ``symphony artifacts`` command."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl

_STORES: dict[int, Any] = {}
"""The store each kernel's service opened, by ``id(kernel)``, closed at its shutdown."""


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``artifact-store`` service (an :class:`ArtifactStore`), opened on first use."""

    def build() -> Any:
        from symphony_artifact_store._store import ArtifactStore

        store = ArtifactStore.from_kernel(kernel)
        _STORES[id(kernel)] = store
        return store

    registry.add_factory("artifact-store", build)


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``symphony artifacts ...``."""
    from symphony_artifact_store.cli import artifacts

    registry.add(artifacts)


@hookimpl
def symphony_shutdown(kernel: Any) -> None:
    """Close the store the service opened, if it was used."""
    store = _STORES.pop(id(kernel), None)
    if store is not None:
        store.close()
