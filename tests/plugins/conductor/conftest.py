"""Fixtures for the conductor's tests: the repository's examples and a kernel with every
installed plugin (the conductor, the workflow plugin, the example operators)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from symphony import Kernel

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO / "examples" / "workflows"
TEMPLATES = REPO / "examples" / "templates"
TEXT_REPORT = WORKFLOWS / "text-report.json"
README_REPORT = WORKFLOWS / "readme-report.json"


@pytest.fixture
def templates_env(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example templates on the template library's path."""
    monkeypatch.setenv("SYMPHONY_WORKFLOW_TEMPLATES", str(TEMPLATES))
    return TEMPLATES


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data directory (artifact store, checkpoints) for this test."""
    data = tmp_path / "data"
    monkeypatch.setenv("SYMPHONY_DATA_DIR", str(data))
    return data


@pytest.fixture
async def kernel(store_env: Path, templates_env: Path) -> AsyncIterator[Kernel]:
    """A running kernel with the installed plugins."""
    async with Kernel.open(env="test") as k:
        yield k


def text_report(**changes: Any) -> dict[str, Any]:
    """The ``text-report`` example as a document, with node fields changed: ``{node_id: {field: value}}``."""
    doc: dict[str, Any] = json.loads(TEXT_REPORT.read_text("utf-8"))
    for node in doc["workflow"]["nodes"]:
        node.update(changes.get(node["id"], {}))
    return doc
