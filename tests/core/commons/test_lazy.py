"""``lazy_getattr``: front-door names imported on first use and cached."""

from __future__ import annotations

import sys
import types

import pytest

from symphony.commons.lazy import lazy_getattr


def test_names_are_imported_on_first_use_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("lazy_demo_pkg")
    monkeypatch.setitem(sys.modules, "lazy_demo_pkg", package)
    package.__getattr__ = lazy_getattr("lazy_demo_pkg", {"dumps": "json", "nope": "json"})  # type: ignore[attr-defined]
    import json

    assert package.dumps is json.dumps
    assert package.__dict__["dumps"] is json.dumps  # cached: later reads skip __getattr__
    with pytest.raises(AttributeError, match="has no attribute 'loads'"):
        package.loads  # noqa: B018
    with pytest.raises(AttributeError):
        package.nope  # noqa: B018  # listed, but its module has no such name


def test_the_packages_use_it() -> None:
    import symphony
    import symphony_sdk
    import symphony_workflow

    assert symphony.Kernel.__name__ == "Kernel"
    assert symphony_sdk.TransportRegistry.__name__ == "TransportRegistry"
    assert symphony_workflow.validate.__name__ == "validate"
    with pytest.raises(AttributeError):
        symphony_workflow.check_parts  # noqa: B018  # private now
