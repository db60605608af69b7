"""The fairness report: Gini coefficients of wait and of share, deviation from fair share, totals.

Over a window of the engine's recent history (finished requests plus grants still held):

- an owner's **usage** is the sum over its grants of the dominant share of the demand times
  the time held (resource-seconds, normalised by capacity); its **share** is its usage over
  everyone's;
- its **fair share** is max-min fair given demand: an owner with nothing waiting at the end
  of the window got all it asked for, so its fair share is what it got; the owners with work
  still waiting split the rest in proportion to their weights. **Deviation** is
  ``|share - fair| / fair``;
- **Gini of wait** is over the waits of every granted request; **Gini of share** is over the
  owners' shares divided by their weights (0 is perfectly even, 1 is one owner has everything);
- per class: count and p50 / p99 wait.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from symphony_arbitration_engine.engine import ArbitrationEngine
from symphony_arbitration_engine.model import PriorityClass

__all__ = ["FairnessReport", "OwnerTotals", "fairness_report", "gini", "percentile"]


def gini(values: Iterable[float]) -> float:
    """The Gini coefficient of non-negative ``values`` (0 for none, or all zero)."""
    ordered = sorted(v for v in values if v >= 0)
    n = len(ordered)
    total = sum(ordered)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * v for i, v in enumerate(ordered))
    return (2 * weighted) / (n * total) - (n + 1) / n


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by nearest rank; 0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


@attrs.frozen
class OwnerTotals:
    """One owner's totals over the window."""

    owner: str
    weight: float
    requests: int
    granted: int
    denied: int
    total_wait: float
    mean_wait: float
    usage: float
    share: float
    fair_share: float
    deviation: float


@attrs.frozen
class FairnessReport:
    """What :func:`fairness_report` computes (see the module docstring)."""

    window: float
    at: float
    gini_wait: float
    gini_share: float
    max_deviation: float
    mean_wait: float
    by_class: dict[str, dict[str, float]]
    owners: tuple[OwnerTotals, ...]

    def is_fair(self, tolerance: float = 0.1) -> bool:
        """Every active owner within ``tolerance`` (relative) of its fair share."""
        return self.max_deviation <= tolerance

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "window": self.window,
            "at": self.at,
            "gini_wait": round(self.gini_wait, 6),
            "gini_share": round(self.gini_share, 6),
            "max_deviation": round(self.max_deviation, 6),
            "mean_wait": round(self.mean_wait, 6),
            "by_class": self.by_class,
            "owners": [
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in attrs.asdict(o).items()}
                for o in self.owners
            ],
        }


def fairness_report(engine: ArbitrationEngine, *, window: float | None = None, now: float | None = None) -> FairnessReport:
    """The fairness of ``engine`` over the last ``window`` seconds (default: its config's)."""
    at = engine.now() if now is None else now
    span = engine.config.window if window is None else window
    start = at - span
    weights = engine.owner_weights()
    usage: dict[str, float] = {}
    requests: dict[str, list[int]] = {}
    waits_by_owner: dict[str, float] = {}
    waits: list[float] = []
    by_class: dict[PriorityClass, list[float]] = {c: [] for c in PriorityClass}
    for f in [*engine.finished, *engine.running(at)]:
        if f.ended < start:
            continue
        counts = requests.setdefault(f.owner, [0, 0, 0])
        counts[0] += 1
        if f.granted is None:
            counts[2] += 1
            continue
        counts[1] += 1
        wait = f.granted - f.submitted
        waits.append(wait)
        by_class[f.priority].append(wait)
        waits_by_owner[f.owner] = waits_by_owner.get(f.owner, 0.0) + wait
        usage[f.owner] = usage.get(f.owner, 0.0) + f.dominant * (f.ended - max(f.granted, start))
    for _, owner, _, _ in engine.waiting():
        requests.setdefault(owner, [0, 0, 0])[0] += 1
    active = sorted(requests)
    total_usage = sum(usage.values())
    backlogged = {owner for _, owner, _, _ in engine.waiting()}
    satisfied_share = sum(usage.get(o, 0.0) for o in active if o not in backlogged) / (total_usage or 1.0)
    backlog_weight = sum(weights.get(o, 1.0) for o in active if o in backlogged) or 1.0
    owners = []
    for o in active:
        weight = weights.get(o, 1.0)
        share = usage.get(o, 0.0) / total_usage if total_usage else 0.0
        if o in backlogged:
            fair = weight / backlog_weight * (1.0 - satisfied_share)
        else:
            fair = share
        count, granted, denied = requests[o]
        owners.append(
            OwnerTotals(
                owner=o,
                weight=weight,
                requests=count,
                granted=granted,
                denied=denied,
                total_wait=waits_by_owner.get(o, 0.0),
                mean_wait=waits_by_owner.get(o, 0.0) / granted if granted else 0.0,
                usage=usage.get(o, 0.0),
                share=share,
                fair_share=fair,
                deviation=abs(share - fair) / fair if total_usage and fair else 0.0,
            )
        )
    return FairnessReport(
        window=span,
        at=at,
        gini_wait=gini(waits),
        gini_share=gini(o.share / o.weight for o in owners) if total_usage else 0.0,
        max_deviation=max((o.deviation for o in owners), default=0.0),
        mean_wait=statistics.fmean(waits) if waits else 0.0,
        by_class={
            c.name.lower(): {
                "count": len(w),
                "p50_wait": round(percentile(w, 50), 6),
                "p99_wait": round(percentile(w, 99), 6),
            }
            for c, w in sorted(by_class.items(), reverse=True)
        },
        owners=tuple(owners),
    )
