"""The front doors stay small and honest: ``symphony.bus``, ``symphony.bus.links`` and
``symphony_bus_remote`` export at most 30 names each, and every one of them resolves. (That no
package imports another's private modules is checked for every distribution in
``tests/integration/test_private_imports.py``.)"""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["symphony.bus", "symphony.bus.links", "symphony_bus_remote"])
def test_front_door_is_small_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert 0 < len(module.__all__) <= 30
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
