"""Fixtures of the SDK's tests: the reference-page generators of ``sdk/docs``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "sdk" / "docs"


@pytest.fixture
def docs_generator() -> Callable[[str], ModuleType]:
    """``docs_generator("generate_hooks")``: that script of ``sdk/docs``, loaded as a module."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return load
