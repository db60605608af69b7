"""Fixtures for the workflow plugin's tests: the repository's example workflows and templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony_workflow import Workflow, load

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "workflows"
TEMPLATES = REPO / "examples" / "templates"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
FIXTURES = Path(__file__).resolve().parent / "data"
"""Test documents richer than the shipped examples, using node types only tests declare."""
FIXTURE_WORKFLOWS = FIXTURES / "workflows"
FIXTURE_TEMPLATES = FIXTURES / "templates"


@pytest.fixture
def examples_dir() -> Path:
    """``examples/workflows``."""
    return EXAMPLES


@pytest.fixture
def templates_dir() -> Path:
    """``data/templates``: templates with branches, versions and hypothetical node types."""
    return FIXTURE_TEMPLATES


@pytest.fixture
def triage() -> Workflow:
    """The ticket-triage fixture (branch, merge, conditional edges)."""
    return load(FIXTURE_WORKFLOWS / "ticket-triage.json")


@pytest.fixture
def embed() -> Workflow:
    """The parallel-embed fixture (parallel, join, a disabled node, a control edge)."""
    return load(FIXTURE_WORKFLOWS / "parallel-embed.json")


@pytest.fixture
def report() -> Workflow:
    """The text-report example (uses the textstats operator)."""
    return load(EXAMPLES / "text-report.json")
