"""Fixtures of the DAG-tracker tests: the test node types and a tracker over a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dag_nodes
import pytest

from symphony_dag_tracker import DagTracker
from symphony_workflow import NodeTypeRegistry


@pytest.fixture
def registry() -> NodeTypeRegistry:
    """Every node type of :mod:`dag_nodes`."""
    return dag_nodes.registry()


@pytest.fixture
def tracker(tmp_path: Path, registry: NodeTypeRegistry) -> Iterator[DagTracker]:
    """A tracker keeping its checkpoints under ``tmp_path / "state"``."""
    t = DagTracker(tmp_path / "state", node_types=registry)
    try:
        yield t
    finally:
        t.close()
