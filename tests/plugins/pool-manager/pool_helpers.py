"""Instrument-like loaders for the pool tests: a real word-vector model read from a file, and faulty ones."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from symphony_pool_manager import ResourceEstimate

MiB = 1 << 20


class FakeClock:
    """A clock the test moves by hand (keep-alive, backoff and lifecycle times)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WordVectors:
    """A tiny embedding model: reads ``word v1 v2 ...`` lines and averages vectors of a text."""

    def __init__(self, path: Path, *, declared: int = 1 * MiB) -> None:
        self.path = path
        self.declared = declared
        self.loads = 0
        self.unloads = 0
        self.healthy = True
        self.lock = threading.Lock()

    def estimate(self) -> ResourceEstimate:
        return ResourceEstimate(memory=self.declared)

    def load(self) -> dict[str, tuple[float, ...]]:
        with self.lock:
            self.loads += 1
        table: dict[str, tuple[float, ...]] = {}
        for line in self.path.read_text().splitlines():
            word, *numbers = line.split()
            table[word] = tuple(float(n) for n in numbers)
        return table

    def unload(self, instance: Any) -> None:
        with self.lock:
            self.unloads += 1
        instance.clear()

    def health(self, instance: Any) -> bool:
        return self.healthy and "the" in instance


def embed(table: dict[str, tuple[float, ...]], text: str) -> tuple[float, ...]:
    """The mean vector of the known words of ``text``."""
    rows = [table[w] for w in text.split() if w in table]
    return tuple(sum(col) / len(rows) for col in zip(*rows, strict=True)) if rows else ()


class RaisingLoader(WordVectors):
    """A model whose load raises."""

    def load(self) -> dict[str, tuple[float, ...]]:
        with self.lock:
            self.loads += 1
        raise RuntimeError("weights file is corrupt")


class HangingLoader(WordVectors):
    """A model whose load blocks until released (the test releases it at the end)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()

    def load(self) -> dict[str, tuple[float, ...]]:
        with self.lock:
            self.loads += 1
        self.release.wait(10)
        return super().load()


class GreedyLoader(WordVectors):
    """Declares 1 MiB but keeps ``actual`` bytes alive (touched, so they count in RSS)."""

    def __init__(self, path: Path, actual: int) -> None:
        super().__init__(path, declared=1 * MiB)
        self.actual = actual

    def load(self) -> dict[str, Any]:
        table: dict[str, Any] = dict(super().load())
        table["__ballast__"] = b"x" * self.actual
        return table
