"""Lazy exports: a package's public names imported from their modules on first use.

A package front door (``__init__.py``) lists its API in ``__all__`` but imports nothing
heavy until a name is used, so importing the package (or a plugin entry point inside it)
stays cheap::

    from symphony.commons.lazy import lazy_getattr

    _LAZY = {"validate": "symphony_workflow._validation"}
    __getattr__ = lazy_getattr(__name__, _LAZY)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[name]`` on first use.

    The value is cached in the package's namespace, so later lookups are plain attribute reads;
    an unknown name raises ``AttributeError`` as a missing attribute would.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
