"""Fixtures for the pool tests (the loaders themselves live in ``pool_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pool_helpers import FakeClock


@pytest.fixture
def vectors_file(tmp_path: Path) -> Path:
    """A small word-vector file the ``WordVectors`` loader reads."""
    path = tmp_path / "vectors.txt"
    path.write_text("the 0.1 0.2 0.3\ncat 0.5 0.1 0.0\nsat 0.0 0.4 0.9\nmat 1.0 0.0 0.2\n")
    return path


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved clock."""
    return FakeClock()
