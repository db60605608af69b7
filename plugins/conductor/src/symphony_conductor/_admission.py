"""Instrument nodes through arbitration and the model pool.

The conductor wraps the DAG tracker's executors in :class:`AdmittingExecutor`. For a node
whose implementation names a ``model_key`` (see :class:`symphony_sdk.Instrument`), the
wrapper asks the ``arbitration`` service for the model's resources (owner: the run id,
registered as a ``run`` owner unless configured; class: the run's priority), leases the
model from the ``pool-manager`` service, runs the node with the instance as
``context.model``, and releases both when the node ends, whatever the outcome
(``symphony_arbitration_engine.admitted``). Any other node, or any node when either
service is not installed, runs as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Admissions", "AdmittingExecutor", "admit_through"]


class Admissions:
    """The pool and the arbitration engine a conductor admits instrument nodes through.

    ``priority_of(run_id)`` gives a run's class. The services are looked up on first need;
    when either is not installed, :meth:`services` returns ``None`` and nodes run unadmitted.
    """

    def __init__(self, kernel: Any, priority_of: Callable[[str], str]) -> None:
        self.kernel = kernel
        self.priority_of = priority_of
        self._services: tuple[Any, Any] | None = None
        self._missing = False

    async def services(self) -> tuple[Any, Any] | None:
        """``(arbitration engine, pool)``, or ``None`` when either plugin is not installed (or
        disabled); a plugin that is installed but fails to start fails the node with its error."""
        if self._services is None and not self._missing:
            usable = set(self.kernel.service_names())
            if not {"arbitration", "pool-manager"} <= usable:
                self._missing = True
                return None
            self._services = (await self.kernel.aservice("arbitration"), await self.kernel.aservice("pool-manager"))
        return self._services

    async def release_run(self, run_id: str) -> None:
        """Reclaim every lease ``run_id`` still holds (a node that never gave its model back)."""
        if self._services is not None:
            await self._services[1].release_owner(run_id)


class AdmittingExecutor:
    """An executor running instrument nodes inside ``admitted(engine, pool, request)``."""

    def __init__(self, inner: Any, admissions: Admissions) -> None:
        self.inner = inner
        self.admissions = admissions
        self.name: str = inner.name

    async def submit(self, task: Any, implementation: Any, context: Any) -> Any:
        """Run ``task`` on the wrapped executor; an instrument with a ``model_key`` holds its
        arbitration grant and model lease for the whole execution."""
        key = getattr(implementation, "model_key", None)
        services = await self.admissions.services() if isinstance(key, str) and key else None
        if services is None:
            return await self.inner.submit(task, implementation, context)
        from symphony_arbitration_engine import Owner, admitted, request_for

        engine, pool = services
        assert isinstance(key, str)
        if key not in pool.keys():
            loader = implementation.model_loader()
            if loader is not None:
                pool.register(key, loader)
        if task.run_id not in engine.owners():  # a run is an owner of its own (configured ones keep their weights)
            engine.add_owner(Owner(task.run_id, kind="run"))
        request = request_for(pool, task.run_id, key, priority=self.admissions.priority_of(task.run_id))
        async with admitted(engine, pool, request) as admission:
            return await self.inner.submit(task, implementation, attrs.evolve(context, model=admission.instance))

    async def aclose(self) -> None:
        """Close the wrapped executor."""
        await self.inner.aclose()


def admit_through(tracker: Any, admissions: Admissions) -> None:
    """Wrap each of ``tracker``'s executors once (a second call changes nothing)."""
    for name, executor in list(tracker.executors.items()):
        if not isinstance(executor, AdmittingExecutor):
            tracker.executors[name] = AdmittingExecutor(executor, admissions)
