"""The workflow package's import graph: a small front door, no cycles, no borrowed private names."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import symphony_workflow

PACKAGE = Path(symphony_workflow.__file__).parent
MODULES = sorted(f"symphony_workflow.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _runtime_imports(path: Path) -> set[str]:
    """Modules of the package imported at run time (anywhere in the file, outside TYPE_CHECKING)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.module.startswith("symphony_workflow."):
                found.add(node.module)

    Visitor().visit(ast.parse(path.read_text()))
    return found


def test_the_front_door_is_small() -> None:
    assert len(symphony_workflow.__all__) <= 31  # 30 + NodePolicy (issue 12)
    assert set(symphony_workflow.__all__) <= set(dir(symphony_workflow))
    public = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert public == {"plugin", "hookspecs"}  # the entry point and the hookspecs; the rest is private


def test_no_import_cycle_between_modules() -> None:
    graph = {
        f"symphony_workflow.{p.stem}": _runtime_imports(p)
        for p in PACKAGE.glob("*.py")
        if p.stem != "__init__"
    }
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert order.index("symphony_workflow._model") < order.index("symphony_workflow._validation")
    assert "symphony_workflow._validation" not in graph["symphony_workflow._model"]


def test_each_module_imports_first_in_a_fresh_process() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('symphony_workflow')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_no_private_name_is_imported_across_packages() -> None:
    """Modules of this package import no ``_name`` from another package (symphony core included)."""
    offenders = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and not node.module.startswith("symphony_workflow")
            ):
                offenders += [
                    f"{path.name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
    assert offenders == []


def test_importing_the_plugin_module_loads_no_model_code() -> None:
    """The entry point stays cheap: the front door imports its private modules on first use."""
    script = (
        "import sys, symphony_workflow.plugin, symphony_workflow\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('symphony_workflow._'))\n"
        "assert loaded == [], loaded\n"
        "symphony_workflow.validate\n"
        "assert 'symphony_workflow._validation' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
