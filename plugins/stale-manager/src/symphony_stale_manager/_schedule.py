"""Triggers that run on their own: gc on a schedule, and gc when the store's disk fills up."""

from __future__ import annotations

import math
from typing import Any

import anyio

from symphony.commons.errors import SymphonyError
from symphony.commons.log import get_logger
from symphony_stale_manager._manager import StaleManager

__all__ = ["GcScheduler"]

log = get_logger("symphony.stale_manager")


class GcScheduler:
    """Runs a manager's gc every ``schedule_interval`` seconds and when the disk passes ``disk_threshold``.

    ``await scheduler.run()`` (or ``task_group.start(scheduler.run)``) loops until
    :meth:`stop` or cancellation; gc runs in a worker thread, so the event loop stays free, and
    between checks the task sleeps (nothing spins). A failing run is logged and the loop goes on.
    ``runs`` lists the trigger of every run made (``schedule`` or ``disk``).
    """

    def __init__(self, manager: StaleManager) -> None:
        self.manager = manager
        self.runs: list[str] = []
        self._scope: anyio.CancelScope | None = None
        self._stopped = False

    @property
    def enabled(self) -> bool:
        """True when the policy sets a schedule or a disk threshold."""
        policy = self.manager.policy
        return policy.schedule_interval > 0 or policy.disk_threshold > 0

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Loop until stopped: sleep to the next due check, run what is due."""
        policy = self.manager.policy
        with anyio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            if self._stopped or not self.enabled:
                return
            now = anyio.current_time()
            next_gc = now + policy.schedule_interval if policy.schedule_interval > 0 else math.inf
            next_disk = now if policy.disk_threshold > 0 else math.inf
            while True:
                await anyio.sleep(max(0.0, min(next_gc, next_disk) - anyio.current_time()))
                now = anyio.current_time()
                if now >= next_disk:
                    next_disk = now + policy.disk_check_interval
                    if await anyio.to_thread.run_sync(self.manager.over_threshold):
                        await self._run("disk", self.manager.relieve_pressure)
                if now >= next_gc:
                    next_gc = max(next_gc + policy.schedule_interval, now)
                    await self._run("schedule", lambda: self.manager.gc(trigger="schedule"))

    async def _run(self, trigger: str, fn: Any) -> None:
        self.runs.append(trigger)
        try:
            await anyio.to_thread.run_sync(fn)
        except SymphonyError as err:
            log.error("stale_manager.gc_failed", trigger=trigger, code=err.code, error=err.message)

    def stop(self) -> None:
        """Stop the loop (a run in progress finishes first)."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()
