"""Bus metrics: plain counters, per-subscription figures and log-scale latency histograms.

Everything here is cheap enough for the hot path (an integer add, or one ``log10`` and a list
index per latency sample) and is read through :meth:`BusMetrics.snapshot`, which returns a
JSON-safe dict::

    {
      "counters": {"published": 10, "delivered": 30, "dropped": 2, "requests": 5, ...},
      "subscriptions": [{"name": ..., "pattern": ..., "policy": ..., "buffer": ...,
                         "depth": ..., "delivered": ..., "dropped": ..., "rejected": ...}],
      "latency": {"request": {"count": 5, "p50": 1.2e-05, "p95": ..., "p99": ..., ...},
                  "deliver": {...}, "fanout": {...}},
      "pending": 0,
    }

Latency histograms: ``request`` -- a request's round trip through ``dispatch``; ``deliver`` --
from ``publish`` to a subscription's consumer taking the message off its queue (one sample per
queued delivery); ``fanout`` -- how long ``publish`` took to hand one message to every
matching subscription, plain-function callbacks included (one sample per publish).

Histograms use fixed buckets ten per decade from 1 microsecond to 100 seconds (each bucket's
upper bound is about 26 % above its lower bound); percentiles read out as the upper bound of
the bucket holding that rank, clamped to the largest sample seen, so they never understate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

__all__ = ["COUNTERS", "BusMetrics", "LatencyHistogram"]

_PER_DECADE: Final = 10
_MIN_SECONDS: Final = 1e-6
_DECADES: Final = 8  # 1 us .. 100 s
_NBUCKETS: Final = _PER_DECADE * _DECADES + 1
_BOUNDS: Final[tuple[float, ...]] = tuple(_MIN_SECONDS * 10 ** (k / _PER_DECADE) for k in range(_NBUCKETS))

COUNTERS: Final[tuple[str, ...]] = (
    "published",
    "delivered",
    "dropped",
    "rejected",
    "filtered_errors",
    "callback_errors",
    "slow_consumers",
    "requests",
    "responses",
    "errors",
    "timeouts",
    "no_route",
    "orphans",
    "invalid",
)
"""Counter names every snapshot reports (``delivered``/``dropped``/``rejected`` sum all subscriptions)."""


class LatencyHistogram:
    """Latency samples (seconds) in fixed log-scale buckets, with percentile readout.

    >>> h = LatencyHistogram()
    >>> for s in (0.001, 0.002, 0.003): h.record(s)
    >>> h.count, h.percentile(50) >= 0.002
    (3, True)
    """

    __slots__ = ("_buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._buckets = [0] * (_NBUCKETS + 1)  # last bucket: above 100 s
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, seconds: float) -> None:
        """Add one sample (negative samples count as zero)."""
        if seconds <= _MIN_SECONDS:
            index = 0
            seconds = max(seconds, 0.0)
        else:
            index = math.ceil(math.log10(seconds / _MIN_SECONDS) * _PER_DECADE - 1e-9)
            if index > _NBUCKETS:
                index = _NBUCKETS
        self._buckets[index] += 1
        self.count += 1
        self.total += seconds
        if seconds < self.min:
            self.min = seconds
        if seconds > self.max:
            self.max = seconds

    def percentile(self, pct: float) -> float:
        """Upper bound (seconds) of the bucket holding the ``pct`` percentile (0 if empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(self.count * pct / 100.0))
        seen = 0
        for index, n in enumerate(self._buckets):
            seen += n
            if seen >= rank:
                bound = _BOUNDS[index] if index < _NBUCKETS else math.inf
                return min(bound, self.max)
        return self.max  # pragma: no cover - ranks never exceed the count

    def reset(self) -> None:
        """Forget every sample."""
        self.__init__()  # type: ignore[misc]

    def snapshot(self) -> dict[str, Any]:
        """``{"count", "mean", "min", "max", "p50", "p95", "p99"}`` in seconds (JSON-safe)."""
        if self.count == 0:
            return {"count": 0, "mean": 0.0, "min": 0.0, "max": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0}
        return {
            "count": self.count,
            "mean": self.total / self.count,
            "min": self.min,
            "max": self.max,
            "p50": self.percentile(50),
            "p95": self.percentile(95),
            "p99": self.percentile(99),
        }


class BusMetrics:
    """The counters and histograms of one bus.

    Counters are plain attributes (``metrics.published += 1``); per-subscription figures live on
    the subscriptions and are summed (plus those of closed subscriptions) in :meth:`snapshot`.
    """

    def __init__(
        self,
        subscriptions: Callable[[], Iterable[Any]] = tuple,
        pending: Callable[[], int] = int,
    ) -> None:
        self.published: int
        self.requests: int
        self.responses: int
        self.errors: int
        self.timeouts: int
        self.no_route: int
        self.orphans: int
        self.invalid: int
        self.callback_errors: int
        self.filtered_errors: int
        self.slow_consumers: int
        # delivered/dropped/rejected of subscriptions that were closed (live ones are summed live)
        self.retired: dict[str, int]
        self.request_latency = LatencyHistogram()
        self.deliver_latency = LatencyHistogram()
        self.fanout_latency = LatencyHistogram()
        self._subscriptions = subscriptions
        self._pending = pending
        self.reset()

    def retire(self, sub: Any) -> None:
        """Fold a closing subscription's counts into the totals."""
        self.retired["delivered"] += sub.delivered
        self.retired["dropped"] += sub.dropped
        self.retired["rejected"] += sub.rejected

    def snapshot(self) -> dict[str, Any]:
        """Every figure as a JSON-safe dict (see the module docs for the shape)."""
        subs = [sub.stats() for sub in self._subscriptions()]
        counters = {name: getattr(self, name) for name in COUNTERS}
        for key in ("delivered", "dropped", "rejected"):
            counters[key] = self.retired[key] + sum(s[key] for s in subs)
        return {
            "counters": counters,
            "subscriptions": subs,
            "latency": {
                "request": self.request_latency.snapshot(),
                "deliver": self.deliver_latency.snapshot(),
                "fanout": self.fanout_latency.snapshot(),
            },
            "pending": self._pending(),
        }

    def reset(self) -> None:
        """Zero every counter and histogram (subscriptions keep their own figures)."""
        for name in COUNTERS:
            setattr(self, name, 0)
        self.retired = {"delivered": 0, "dropped": 0, "rejected": 0}
        self.request_latency.reset()
        self.deliver_latency.reset()
        self.fanout_latency.reset()
