"""The kernel distribution stands alone: no socket machinery and no private event-loop calls in
core, and a working in-process bus when ``symphony-bus-remote`` is not installed."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

CORE_SRC = Path(__file__).resolve().parents[3] / "core" / "src"
FORBIDDEN = {"socket", "ssl", "select", "selectors", "symphony_bus_remote"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_core_module_imports_socket_ssl_or_select() -> None:
    offenders = {
        str(path.relative_to(CORE_SRC)): sorted(_imported_modules(path) & FORBIDDEN)
        for path in sorted(CORE_SRC.rglob("*.py"))
        if _imported_modules(path) & FORBIDDEN
    }
    assert offenders == {}
    assert len(list(CORE_SRC.rglob("*.py"))) > 20  # the scan saw the package


def test_the_scan_catches_an_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import ssl\n    from socket import socketpair\n")
    assert _imported_modules(module) & FORBIDDEN == {"socket", "ssl"}


_CORE_ONLY = textwrap.dedent(
    """
    import importlib.abc
    import sys


    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "symphony_bus_remote":
                raise ImportError(f"{name} is blocked for this test (as if not installed)")
            return None


    sys.meta_path.insert(0, Blocker())

    import anyio

    from symphony.bus import Bus, Message, open_transport
    from symphony.kernel import Kernel


    async def main():
        async with Bus() as bus:
            bus.handle("demo.add", lambda msg: msg.payload["a"] + msg.payload["b"])
            reply = await bus.request("demo.add", {"a": 2, "b": 3}, timeout=2)
            async with bus.subscribe("demo.#") as sub:
                await bus.publish(Message("demo.tick", {"n": 1}))
                tick = await sub.receive(timeout=2)
        assert open_transport("memory://x").scheme == "memory"
        async with Kernel.open(plugins=[], autoload=False) as kernel:
            kernel.bus.handle("demo.ping", lambda msg: "pong")
            pong = await kernel.bus.request("demo.ping", None, timeout=2)
        assert "symphony_bus_remote" not in sys.modules
        print(reply.payload, tick.payload["n"], pong.payload)


    anyio.run(main)
    """
)


def test_the_in_process_bus_works_without_bus_remote() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CORE_ONLY], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5", "1", "pong"]


def _private_event_loop_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"asyncio", "trio", "lowlevel"}
            and node.attr.startswith("_")
            and not node.attr.endswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_no_core_module_calls_private_event_loop_functions(tmp_path: Path) -> None:
    offenders = {
        str(path.relative_to(CORE_SRC)): _private_event_loop_calls(path)
        for path in sorted(CORE_SRC.rglob("*.py"))
        if _private_event_loop_calls(path)
    }
    assert offenders == {}
    sample = tmp_path / "m.py"
    sample.write_text("import asyncio\nget = asyncio._get_running_loop\n")
    assert _private_event_loop_calls(sample) == ["asyncio._get_running_loop"]
