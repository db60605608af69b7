"""Shared helpers for benchmarks: timing and the JSON-line report format of DESIGN.md §5."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def emit(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    target: str | None = None,
    check: Callable[[float, float | None], bool] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Print one benchmark figure as a JSON line and return it.

    ``ratio`` is ``value / baseline_value`` when there is a baseline: below 1 means we are
    faster (for times) or smaller. ``target`` says the goal in words; ``check(value, ratio)``
    decides it, and the record's ``met`` is the answer (``run.py`` sums them up at the end).
    """
    ratio = None
    if baseline_value:
        ratio = round(value / baseline_value, 4)
    record: dict[str, Any] = {
        "name": name,
        "value": round(value, 6),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": None if baseline_value is None else round(baseline_value, 6),
        "ratio": ratio,
    }
    if target is not None:
        record["target"] = target
    if check is not None:
        record["met"] = bool(check(value, ratio))
    record.update(extra)
    print(json.dumps(record), flush=True)
    return record


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) of ``samples`` by nearest rank."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def time_per_call(fn: Callable[[], Any], *, number: int, repeat: int = 5) -> float:
    """Best-of-``repeat`` mean seconds per call of ``fn`` over ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def median(samples: Sequence[float]) -> float:
    """Median of ``samples``."""
    return statistics.median(samples)


def log(message: str) -> None:
    """Progress output for a human; goes to stderr so stdout stays JSON lines."""
    print(message, file=sys.stderr, flush=True)
