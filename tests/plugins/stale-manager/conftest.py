"""Fixtures for the stale manager's tests: a real store on a real SQLite file, and a way to age it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony_artifact_store import ArtifactStore, Digest

DAY = 86400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    """A store under ``tmp_path/store`` with a cold tier in ``tmp_path/cold``."""
    with ArtifactStore(tmp_path / "store", cold_root=tmp_path / "cold") as opened:
        yield opened


def _age(
    store: ArtifactStore, digests: Iterable[Digest | str], seconds: float, *, accessed: bool = True
) -> None:
    """Pretend the artifacts were put (and, with ``accessed``, last read) ``seconds`` ago.

    Writes the index's time columns directly: the only way to make real rows old without waiting.
    """
    when = time.time() - seconds
    conn = sqlite3.connect(store.index.path, timeout=30)
    try:
        with conn:
            for d in digests:
                sets = "created = ?, last_put = ?" + (", accessed = ?" if accessed else "")
                params = [when, when] + ([when] if accessed else [])
                conn.execute(f"UPDATE objects SET {sets} WHERE digest = ?", [*params, str(d)])
            conn.execute("UPDATE ref_history SET time = MIN(time, ?)", (when,))
    finally:
        conn.close()


def _age_trash(store: ArtifactStore, digests: Iterable[Digest | str], seconds: float) -> None:
    """Pretend the artifacts were trashed ``seconds`` ago."""
    conn = sqlite3.connect(store.index.path, timeout=30)
    try:
        with conn:
            for d in digests:
                conn.execute(
                    "UPDATE objects SET trashed_at = ? WHERE digest = ?", (time.time() - seconds, str(d))
                )
    finally:
        conn.close()


@pytest.fixture
def age() -> Any:
    """``age(store, digests, seconds, accessed=True)``: make artifacts look put ``seconds`` ago."""
    return _age


@pytest.fixture
def age_trash() -> Any:
    """``age_trash(store, digests, seconds)``: make trashed artifacts look trashed ``seconds`` ago."""
    return _age_trash
