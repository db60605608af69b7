"""Fixtures that build real, installed-looking plugin distributions in a temp sys.path entry."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony.kernel import Kernel
from symphony_sdk.testing import write_plugin_distribution

EVENTS_MODULE = "symphony_test_events"


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh sys.path entry holding only the plugins a test writes, plus an events module."""
    root = tmp_path / "site"
    root.mkdir()
    (root / f"{EVENTS_MODULE}.py").write_text("EVENTS = []\n")
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:  # forget the test plugins' modules (only those)
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin.startswith(str(root)):
            del sys.modules[name]


@pytest.fixture
def add_plugin(plugin_root: Path) -> Callable[..., Path]:
    """``add_plugin("p-a", manifest={...}, source="...")`` writes a plugin distribution."""

    def add(
        plugin_id: str, *, manifest: dict[str, Any] | str | None = None, source: str = "", **kw: Any
    ) -> Path:
        header = f"from symphony.hookspecs import hookimpl\nfrom {EVENTS_MODULE} import EVENTS\n"
        return write_plugin_distribution(
            plugin_root, plugin_id, manifest=manifest, module_source=header + source, **kw
        )

    return add


@pytest.fixture
def make_kernel(plugin_root: Path) -> Callable[..., Kernel]:
    """Create a kernel that discovers only the test's plugins."""

    def make(**kwargs: Any) -> Kernel:
        kwargs.setdefault("search_path", [str(plugin_root)])
        return Kernel.create(**kwargs)

    return make


@pytest.fixture
def events(plugin_root: Path) -> list[Any]:
    """The list the test plugins append lifecycle events to."""
    import importlib

    return importlib.import_module(EVENTS_MODULE).EVENTS  # type: ignore[no-any-return]
