"""Fixtures for the artifact store's tests: a fresh store on a real SQLite file in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony_artifact_store import ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    """A store under ``tmp_path/store`` (inline up to 4 KiB, blake3, verify always)."""
    with ArtifactStore(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def cold_store(tmp_path: Path) -> Iterator[ArtifactStore]:
    """A store with a cold tier in ``tmp_path/cold``."""
    with ArtifactStore(tmp_path / "store", cold_root=tmp_path / "cold") as opened:
        yield opened
