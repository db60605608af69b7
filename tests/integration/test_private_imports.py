"""No distribution imports another package's private modules or names: every package under
``core/src``, ``sdk/src``, ``plugins/*/src`` and ``examples/extensions/*/src`` reaches other
packages only through their public modules (``symphony.bus``, ``symphony.bus.links``,
``symphony_bus_remote`` ...), never through ``symphony.bus._message`` or ``from x import _y``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "core" / "src", ROOT / "sdk" / "src"]
SOURCES += sorted(ROOT.glob("plugins/*/src")) + sorted(ROOT.glob("examples/extensions/*/src"))
PACKAGES = {
    f"{src.relative_to(ROOT).as_posix()}/{pkg.name}": pkg
    for src in SOURCES
    for pkg in sorted(src.iterdir())
    if (pkg / "__init__.py").is_file()
}


def _private_imports(path: Path, own: str) -> list[str]:
    """Dotted names imported in ``path`` that have a private part and do not belong to ``own``."""
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


def test_every_distribution_is_checked() -> None:
    names = {key.rsplit("/", 1)[1] for key in PACKAGES}
    expected = {"symphony", "symphony_sdk", "symphony_bus_remote", "symphony_transport_unix", "symphony_workflow"}
    assert expected <= names
    assert len(PACKAGES) >= len(list(ROOT.glob("plugins/*/src"))) + 2


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_private_module_of_another_package_is_imported(package: str) -> None:
    folder = PACKAGES[package]
    offenders = {
        str(path.relative_to(folder)): found
        for path in sorted(folder.rglob("*.py"))
        if (found := _private_imports(path, folder.name))
    }
    assert offenders == {}


def test_the_private_import_check_sees_one(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from symphony.bus._x import y\nfrom symphony_bus_remote import _link\nimport symphony_other._y\n"
        "import os\nfrom symphony.bus.links import Signal\nfrom mine._own import z\nfrom . import _rel\n"
    )
    assert _private_imports(module, "mine") == [
        "symphony.bus._x",
        "symphony.bus._x.y",
        "symphony_bus_remote._link",
        "symphony_other._y",
    ]
