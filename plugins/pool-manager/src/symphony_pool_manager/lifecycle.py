"""The lifecycle of one model instance: five states, fixed edges, a reason on every change.

::

    cold ──▶ warming ──▶ hot ──▶ cooling ──▶ cold
                │          │         │
                └────────▶ failed ◀──┘          failed ──▶ cold   (recovery)

Any other change raises :class:`~symphony_pool_manager.errors.LifecycleError`. Each change is a
:class:`Transition` recording its reason, time (the pool's clock), how long the previous state
lasted, and metadata; the :class:`Lifecycle` keeps the history (bounded), the time spent in each
state, and counters.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from symphony_pool_manager.errors import LifecycleError

__all__ = ["EDGES", "Lifecycle", "ModelState", "Transition", "TransitionReason"]


class ModelState(enum.Enum):
    """Where a model instance is in its life."""

    COLD = "cold"
    WARMING = "warming"
    HOT = "hot"
    COOLING = "cooling"
    FAILED = "failed"


class TransitionReason(enum.Enum):
    """Why a state changed."""

    USER_REQUEST = "user-request"
    IDLE_TIMEOUT = "idle-timeout"
    HEALTH_FAILURE = "health-failure"
    MEMORY_PRESSURE = "memory-pressure"
    PREDICTIVE_PREWARM = "predictive-prewarm"
    SCHEDULED_COOLDOWN = "scheduled-cooldown"
    ERROR_RECOVERY = "error-recovery"
    LOAD_FAILURE = "load-failure"


EDGES: Mapping[ModelState, frozenset[ModelState]] = {
    ModelState.COLD: frozenset({ModelState.WARMING}),
    ModelState.WARMING: frozenset({ModelState.HOT, ModelState.FAILED}),
    ModelState.HOT: frozenset({ModelState.COOLING, ModelState.FAILED}),
    ModelState.COOLING: frozenset({ModelState.COLD, ModelState.FAILED}),
    ModelState.FAILED: frozenset({ModelState.COLD}),
}
"""The allowed changes: ``EDGES[from]`` is the set of states ``from`` may move to."""

STABLE = frozenset({ModelState.COLD, ModelState.HOT, ModelState.FAILED})


@attrs.frozen
class Transition:
    """One state change of one model."""

    key: str
    source: ModelState
    target: ModelState
    reason: TransitionReason
    at: float
    duration: float
    """How long the model stayed in ``source`` (seconds)."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "key": self.key,
            "from": self.source.value,
            "to": self.target.value,
            "reason": self.reason.value,
            "at": self.at,
            "duration": self.duration,
            "metadata": dict(self.metadata),
        }


class Lifecycle:
    """The state machine of one model: current state, history, time in each state, counters.

    Changes are synchronous (they run on the event loop between awaits), so they are atomic
    with respect to every other task of the pool.
    """

    def __init__(
        self, key: str, clock: Callable[[], float], *, history: int = 256, state: ModelState = ModelState.COLD
    ) -> None:
        self.key = key
        self._clock = clock
        self.state = state
        self.since = clock()
        self.history: deque[Transition] = deque(maxlen=history)
        self.time_in: dict[ModelState, float] = dict.fromkeys(ModelState, 0.0)
        self.transitions = 0
        self.failures = 0
        self.listeners: list[Callable[[Transition], None]] = []

    @property
    def is_stable(self) -> bool:
        """True in cold, hot and failed (nothing is in flight)."""
        return self.state in STABLE

    def can(self, target: ModelState) -> bool:
        """Whether moving to ``target`` is allowed from the current state."""
        return target in EDGES[self.state]

    def move(self, target: ModelState, reason: TransitionReason, **metadata: Any) -> Transition:
        """Change state, or raise :class:`LifecycleError` naming both states."""
        if target not in EDGES[self.state]:
            allowed = sorted(s.value for s in EDGES[self.state])
            raise LifecycleError(
                f"model {self.key!r} cannot go from {self.state.value} to {target.value}",
                context={"key": self.key, "from": self.state.value, "to": target.value, "allowed": allowed},
            )
        now = self._clock()
        duration = max(0.0, now - self.since)
        self.time_in[self.state] += duration
        transition = Transition(self.key, self.state, target, reason, now, duration, metadata)
        self.state = target
        self.since = now
        self.transitions += 1
        if target is ModelState.FAILED:
            self.failures += 1
        self.history.append(transition)
        for listener in tuple(self.listeners):
            listener(transition)
        return transition

    def time_in_states(self) -> dict[str, float]:
        """Seconds spent in each state so far, the current one included."""
        spent = {state.value: value for state, value in self.time_in.items()}
        spent[self.state.value] += max(0.0, self._clock() - self.since)
        return spent
