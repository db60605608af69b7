"""Heartbeats and health of the parties on a bus.

Every registered endpoint is *tracked* (anything else can be tracked by name too). A tracked
party reports signs of life with :meth:`HealthMonitor.beat` -- transports call it for every
frame a peer sends, and for each answered ping. The monitor's :meth:`~HealthMonitor.check`,
run by the bus every ``heartbeat_interval`` seconds, turns silence into a status:

* ``healthy`` -- a beat within the last ``timeout / 2`` seconds;
* ``degraded(reason)`` -- a beat is late (``"heartbeat late"``), or the party said so itself
  (``beat(name, degraded="warming up")``, ``mark_degraded``);
* ``unhealthy(error)`` -- no beat for ``timeout`` seconds
  (``OperationTimeoutError(code="bus.heartbeat_timeout")``), or someone reported a failure
  (``mark_unhealthy(name, error)``). The next beat makes it healthy again.

Unhealthy endpoints are skipped by request routing. Each change calls ``on_change(name, old,
new)``; the bus publishes it as a ``bus.endpoint.health`` event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs

from symphony.commons.errors import NotFoundError, OperationTimeoutError, SymphonyError

__all__ = ["DEGRADED", "HEALTHY", "UNHEALTHY", "HealthMonitor", "HealthState", "HealthStatus"]

HealthState = Literal["healthy", "degraded", "unhealthy"]
HEALTHY: Final = "healthy"
DEGRADED: Final = "degraded"
UNHEALTHY: Final = "unhealthy"


@attrs.frozen(slots=True)
class HealthStatus:
    """A party's health: ``state``, the ``reason`` (degraded) or ``error`` (unhealthy, as a
    :class:`SymphonyError`), when it was entered (``since``) and the last beat (monotonic s)."""

    state: HealthState
    reason: str | None = None
    error: SymphonyError | None = attrs.field(default=None, eq=False)
    since: float = 0.0
    last_beat: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "state": self.state,
            "reason": self.reason,
            "error": None if self.error is None else self.error.to_wire(),
            "since": self.since,
            "last_beat": self.last_beat,
        }


OnChange = Callable[[str, "HealthStatus | None", HealthStatus], None]


class HealthMonitor:
    """Tracks heartbeats and derives health statuses (see the module docs).

    ``clock`` (default :func:`time.monotonic`) can be replaced for tests.
    """

    def __init__(
        self,
        *,
        interval: float = 1.0,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: OnChange | None = None,
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.on_change = on_change
        self._status: dict[str, HealthStatus] = {}
        self._last: dict[str, float] = {}

    # -- tracking ---------------------------------------------------------------------------

    def track(self, name: str) -> None:
        """Start tracking ``name`` as healthy, as if it had just beaten."""
        if name not in self._status:
            now = self.clock()
            self._last[name] = now
            self._set(name, HealthStatus(HEALTHY, since=now))

    def forget(self, name: str) -> None:
        """Stop tracking ``name``."""
        self._status.pop(name, None)
        self._last.pop(name, None)

    def beat(self, name: str, *, degraded: str | None = None) -> None:
        """A sign of life from ``name`` (tracked from now on); ``degraded`` says it is alive but
        impaired. Cheap: called for every frame a remote peer sends."""
        now = self.clock()
        self._last[name] = now
        current = self._status.get(name)
        if degraded is None:
            if current is None or current.state != HEALTHY:
                self._set(name, HealthStatus(HEALTHY, since=now))
        elif current is None or current.state != DEGRADED or current.reason != degraded:
            self._set(name, HealthStatus(DEGRADED, degraded, since=now))

    def mark_degraded(self, name: str, reason: str) -> None:
        """Report ``name`` as degraded for ``reason`` (until its next plain beat)."""
        self._mark(name, DEGRADED, reason, None)

    def mark_unhealthy(self, name: str, error: SymphonyError) -> None:
        """Report ``name`` as unhealthy because of ``error`` (until its next beat)."""
        self._mark(name, UNHEALTHY, error.message, error)

    def _mark(self, name: str, state: HealthState, reason: str | None, error: SymphonyError | None) -> None:
        """Set ``name``'s status now (or from now on, if it was not tracked)."""
        now = self.clock()
        self._last.setdefault(name, now)
        self._set(name, HealthStatus(state, reason, error, since=now))

    def _set(self, name: str, status: HealthStatus) -> None:
        old = self._status.get(name)
        self._status[name] = status
        if self.on_change is not None and (
            old is None or old.state != status.state or old.reason != status.reason
        ):
            self.on_change(name, self._view(name, old), attrs.evolve(status, last_beat=self._last.get(name)))

    def _view(self, name: str, status: HealthStatus | None) -> HealthStatus | None:
        if status is None:
            return None
        return attrs.evolve(status, last_beat=self._last.get(name))

    # -- evaluation -------------------------------------------------------------------------

    def check(self, now: float | None = None) -> list[str]:
        """Re-evaluate every tracked party against the clock; return the names that changed."""
        now = self.clock() if now is None else now
        changed: list[str] = []
        late_after = self.timeout / 2
        last = self._last
        for name, status in list(self._status.items()):
            if status.state == UNHEALTHY:
                continue
            silent = now - last.get(name, now)
            if silent >= self.timeout:
                error = OperationTimeoutError(
                    f"no heartbeat from {name!r} for {silent:.3f} s (timeout {self.timeout} s)",
                    code="bus.heartbeat_timeout",
                    context={"endpoint": name, "silent": round(silent, 6), "timeout": self.timeout},
                )
                self._set(name, HealthStatus(UNHEALTHY, error.message, error, since=now))
                changed.append(name)
            elif silent >= late_after and status.state == HEALTHY:
                self._set(name, HealthStatus(DEGRADED, "heartbeat late", since=now))
                changed.append(name)
        return changed

    # -- queries ----------------------------------------------------------------------------

    def status(self, name: str) -> HealthStatus:
        """The status of ``name``; NotFoundError (``bus.unknown_endpoint``) if untracked."""
        status = self._view(name, self._status.get(name))
        if status is None:
            raise NotFoundError(
                f"{name!r} is not tracked by the health monitor",
                code="bus.unknown_endpoint",
                context={"endpoint": name},
            )
        return status

    def is_available(self, name: str) -> bool:
        """Whether ``name`` is tracked and not unhealthy (what routing asks)."""
        status = self._status.get(name)
        return status is not None and status.state != UNHEALTHY

    def unhealthy(self) -> list[str]:
        """Names of the unhealthy parties, sorted."""
        return sorted(n for n, s in self._status.items() if s.state == UNHEALTHY)

    def degraded(self) -> list[str]:
        """Names of the degraded parties, sorted."""
        return sorted(n for n, s in self._status.items() if s.state == DEGRADED)

    def healthy(self) -> list[str]:
        """Names of the healthy parties, sorted."""
        return sorted(n for n, s in self._status.items() if s.state == HEALTHY)

    def statuses(self) -> dict[str, HealthStatus]:
        """Every tracked party's status."""
        return {name: self._view(name, status) for name, status in self._status.items()}  # type: ignore[misc]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every tracked party's status, JSON-safe."""
        return {name: status.to_dict() for name, status in sorted(self.statuses().items())}

    def __contains__(self, name: object) -> bool:
        return name in self._status

    def __len__(self) -> int:
        return len(self._status)
