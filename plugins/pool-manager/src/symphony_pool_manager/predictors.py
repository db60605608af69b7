"""Predictors: guesses of which models will be wanted soon, so the pool can warm them first.

A predictor is any object with ``name``, ``predict(now)`` returning :class:`Prediction` s and
``observe(key, now)`` called on every lease (to learn). Plugins contribute predictors through
the ``symphony_pool_predictors`` hook; the pool ships two:

- :class:`TimeOfDayPredictor` learns, per hour of the day, how often each model is leased and
  predicts the models used in the coming hour.
- :class:`WorkflowPredictor` is told which instruments a submitted run will need
  (``expect(run_id, keys)``) and predicts them until the run is done; it also learns which
  model usually follows which, and predicts the follower of a model just leased.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Prediction", "Predictor", "TimeOfDayPredictor", "WorkflowPredictor"]


@attrs.frozen(order=True)
class Prediction:
    """A model key and how likely it is to be leased soon (0..1)."""

    probability: float
    key: str
    source: str = ""


@runtime_checkable
class Predictor(Protocol):
    """What the pool asks for predictions and tells about leases."""

    name: str

    def predict(self, now: float) -> Sequence[Prediction]:
        """Models likely to be leased soon; cheap (called on the event loop)."""
        ...

    def observe(self, key: str, now: float) -> None:
        """A lease of ``key`` happened at ``now`` (the pool's clock)."""
        ...


def _local_hour(now: float) -> int:
    del now
    return time.localtime().tm_hour


class TimeOfDayPredictor:
    """Per hour of the day, how often each model was leased; predicts the coming hour's models.

    ``hour_of(now)`` maps the pool's clock to an hour (0-23); the default reads the wall clock,
    tests pass their own. Every ``decay_every`` seconds of the pool's clock all counts are
    multiplied by ``decay``, so the predictor follows drift in habits.
    """

    name = "time-of-day"

    def __init__(
        self,
        *,
        hour_of: Callable[[float], int] = _local_hour,
        min_uses: int = 2,
        decay: float = 0.9,
        decay_every: float = 86400.0,
    ) -> None:
        self._hour_of = hour_of
        self._min_uses = min_uses
        self._decay = decay
        self._decay_every = decay_every
        self._decayed_at: float | None = None
        self._counts: dict[int, Counter[str]] = defaultdict(Counter)

    def observe(self, key: str, now: float) -> None:
        """Count a lease of ``key`` in the hour ``now`` falls in (ageing old counts first)."""
        if self._decayed_at is None:
            self._decayed_at = now
        elif now - self._decayed_at >= self._decay_every:
            self._decayed_at = now
            self.decay()
        self._counts[self._hour_of(now) % 24][key] += 1

    def predict(self, now: float) -> list[Prediction]:
        """Models used this hour and the next, by their share of that hour's leases."""
        hour = self._hour_of(now) % 24
        merged: Counter[str] = Counter()
        for h in (hour, (hour + 1) % 24):
            merged.update(self._counts.get(h, Counter()))
        total = sum(merged.values())
        if not total:
            return []
        out = [
            Prediction(count / total, key, self.name)
            for key, count in merged.items()
            if count >= self._min_uses
        ]
        return sorted(out, key=lambda p: (-p.probability, p.key))

    def decay(self) -> None:
        """Age every count by the decay factor (``observe`` does it every ``decay_every`` seconds)."""
        for counter in self._counts.values():
            for key in list(counter):
                counter[key] = int(counter[key] * self._decay)
                if counter[key] <= 0:
                    del counter[key]


class WorkflowPredictor:
    """Warms the instruments a submitted run will need; learns which model follows which.

    ``expect(run_id, keys)`` when a run is submitted (``keys`` in the order its nodes will
    run); the first ``lookahead`` keys not yet leased by the run are predicted with
    probability 1.0, later ones lower. ``done(run_id)`` forgets the run.
    """

    name = "workflow"

    def __init__(self, *, lookahead: int = 2) -> None:
        self._lookahead = lookahead
        self._runs: dict[str, list[str]] = {}
        self._follows: dict[str, Counter[str]] = defaultdict(Counter)
        self._last: str | None = None

    def expect(self, run_id: str, keys: Iterable[str]) -> None:
        """A run was submitted that will lease ``keys`` (in order)."""
        self._runs[run_id] = list(keys)

    def done(self, run_id: str) -> None:
        """The run ended; stop predicting for it."""
        self._runs.pop(run_id, None)

    def observe(self, key: str, now: float) -> None:
        """Advance every run expecting ``key`` next and learn the follower of the last lease."""
        del now
        for keys in self._runs.values():
            if keys and keys[0] == key:
                keys.pop(0)
        if self._last is not None and self._last != key:
            self._follows[self._last][key] += 1
        self._last = key

    def predict(self, now: float) -> list[Prediction]:
        """The next models of every expected run, then the learned follower of the last lease."""
        del now
        best: dict[str, float] = {}
        for keys in self._runs.values():
            for position, key in enumerate(keys[: self._lookahead]):
                best[key] = max(best.get(key, 0.0), 1.0 / (position + 1))
        if self._last is not None and self._follows.get(self._last):
            followers = self._follows[self._last]
            total = sum(followers.values())
            key, count = max(followers.items(), key=lambda item: (item[1], item[0]))
            best[key] = max(best.get(key, 0.0), count / total)
        return sorted(
            (Prediction(p, k, self.name) for k, p in best.items()), key=lambda p: (-p.probability, p.key)
        )
