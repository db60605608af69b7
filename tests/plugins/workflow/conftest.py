"""Fixtures for the workflow plugin's tests: the repository's example workflows and templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony_workflow import Workflow, load

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "workflows"
TEMPLATES = REPO / "examples" / "templates"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


@pytest.fixture
def examples_dir() -> Path:
    """``examples/workflows``."""
    return EXAMPLES


@pytest.fixture
def templates_dir() -> Path:
    """``examples/templates``."""
    return TEMPLATES


@pytest.fixture
def triage() -> Workflow:
    """The ticket-triage example (branch, merge, conditional edges)."""
    return load(EXAMPLES / "ticket-triage.json")


@pytest.fixture
def embed() -> Workflow:
    """The parallel-embed example (parallel, join, a disabled node, a control edge)."""
    return load(EXAMPLES / "parallel-embed.json")


@pytest.fixture
def report() -> Workflow:
    """The text-report example (uses the textstats operator)."""
    return load(EXAMPLES / "text-report.json")
