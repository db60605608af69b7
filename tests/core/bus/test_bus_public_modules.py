"""The bus has two public modules: ``symphony.bus`` for users of the bus and ``symphony.bus.links``
for transport and link implementers; every other module is private."""

from __future__ import annotations

import importlib
from pathlib import Path

import symphony.bus
import symphony.bus.links


def test_only_links_is_a_public_submodule() -> None:
    folder = Path(symphony.bus.__file__).parent
    public = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert public == {"links"}


def test_links_adds_to_the_front_door_without_repeating_it() -> None:
    assert set(symphony.bus.links.__all__).isdisjoint(symphony.bus.__all__)
    assert 0 < len(symphony.bus.links.__all__) <= 30


def test_every_public_name_is_the_private_modules_own_object() -> None:
    for package in (symphony.bus, symphony.bus.links):
        for name in package.__all__:
            value = getattr(package, name)
            owners = [
                module
                for path in Path(symphony.bus.__file__).parent.glob("_*.py")
                if path.stem != "__init__"
                and getattr(module := importlib.import_module(f"symphony.bus.{path.stem}"), name, None) is value
            ]
            assert owners, f"{package.__name__}.{name} is not a private module's object"
