"""The front doors stay small and honest: ``symphony.bus`` and ``symphony_bus_remote`` export at
most 30 names each, every one of them resolves, and neither bus-remote, the transports nor the sdk import
another package's private modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONSUMERS = {
    "symphony_bus_remote": ROOT / "plugins" / "bus-remote" / "src" / "symphony_bus_remote",
    "symphony_transport_unix": ROOT / "plugins" / "transport-unix" / "src" / "symphony_transport_unix",
    "symphony_transport_tcp": ROOT / "plugins" / "transport-tcp" / "src" / "symphony_transport_tcp",
    "symphony_transport_stdio": ROOT / "plugins" / "transport-stdio" / "src" / "symphony_transport_stdio",
    "symphony_sdk": ROOT / "sdk" / "src" / "symphony_sdk",
}


@pytest.mark.parametrize("package", ["symphony.bus", "symphony_bus_remote"])
def test_front_door_is_small_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert 0 < len(module.__all__) <= 30
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def _private_imports(path: Path, own: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != own and any(p.startswith("_") and not p.endswith("__") for p in parts[1:]):
                found.append(name)
    return found


@pytest.mark.parametrize("package", sorted(CONSUMERS))
def test_no_private_names_of_another_package_are_imported(package: str) -> None:
    folder = CONSUMERS[package]
    offenders = {
        path.name: _private_imports(path, package)
        for path in sorted(folder.rglob("*.py"))
        if _private_imports(path, package)
    }
    assert offenders == {}


def test_the_private_import_check_sees_one(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from symphony.bus._x import y\nfrom symphony_bus_remote import _link\nimport os\n")
    assert _private_imports(module, "mine") == ["symphony.bus._x", "symphony.bus._x.y", "symphony_bus_remote._link"]
