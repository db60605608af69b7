from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

import symphony_sdk
from symphony_sdk import Operator, ValidationError, check_manifest, manifest_path_of
from symphony_sdk.testing import open_test_kernel, write_plugin_distribution


def test_public_api_is_importable() -> None:
    for name in symphony_sdk.__all__:
        assert getattr(symphony_sdk, name) is not None


class Double(Operator):
    name = "math.double"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["x"],
        "properties": {"x": {"type": "number"}},
    }
    output_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["y"],
        "properties": {"y": {"type": "integer"}},
    }

    def process(self, inputs: Any) -> dict[str, Any]:
        return {"y": inputs["x"] * 2}


def test_operator_validates_inputs_and_outputs() -> None:
    assert Double().run({"x": 3}) == {"y": 6}
    with pytest.raises(ValidationError) as info:
        Double().run({"x": "three"})
    assert info.value.context["path"] == "x"
    with pytest.raises(ValidationError) as info:
        Double().run({"x": 1.25})  # 2.5 is not an integer: the output check catches it
    assert info.value.code == "operator.invalid_output"
    assert Double().describe()["name"] == "math.double"


def test_operator_must_implement_process() -> None:
    class Incomplete(Operator):
        name = "nothing"

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]


def test_check_manifest_reports_without_raising(tmp_path: Path) -> None:
    good = write_plugin_distribution(tmp_path, "p-good") / "symphony.toml"
    assert check_manifest(good).ok
    bad = write_plugin_distribution(tmp_path, "p-old", manifest={"api": ">=3"}) / "symphony.toml"
    report = check_manifest(bad)
    assert not report.ok and report.errors[0].code == "plugin.incompatible_api"
    missing = check_manifest(tmp_path / "nope.toml")
    assert missing.manifest is None and missing.errors[0].code == "plugin.manifest_missing"


def test_manifest_path_of_finds_the_package_manifest() -> None:
    path = manifest_path_of("symphony_textstats.plugin")
    assert path.name == "symphony.toml" and path.parent.name == "symphony_textstats"


def test_factory_kernels_do_not_autoload_installed_plugins(symphony_kernel_factory) -> None:
    assert symphony_kernel_factory().plugins == []
    ids = [r.id for r in symphony_kernel_factory(autoload=True).plugins]
    assert "symphony-textstats" in ids


@pytest.mark.anyio
async def test_open_test_kernel_runs_lifecycle(symphony_kernel_factory) -> None:
    async with open_test_kernel(["symphony_workflow.plugin", "symphony_textstats.plugin"]) as kernel:
        assert kernel.running
        assert (await kernel.aservice("text-stats")).analyze_text("a b").words == 2
    assert not kernel.running


_HANDLER_PLUGIN = '''
from symphony_sdk import hookimpl
from symphony.commons.errors import NotFoundError


@hookimpl
def symphony_startup(kernel):
    async def lookup(msg):
        name = msg.payload["name"]
        if name != "ada":
            raise NotFoundError(f"no user {name!r}", code="users.unknown", context={"name": name})
        return {"name": "ada", "admin": True}

    kernel.bus.handle("users.lookup", lookup)
'''


@pytest.mark.anyio
async def test_a_plugins_bus_handler_is_reached_through_a_client(
    symphony_kernel_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from symphony_sdk import NotFoundError
    from symphony_sdk.testing import connect_test_client

    write_plugin_distribution(
        tmp_path, "sdk-users", manifest={"activation": "on-startup"}, module_source=_HANDLER_PLUGIN
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    async with open_test_kernel(["sdk_users.plugin"]) as kernel, connect_test_client(kernel, codec="json") as client:
        reply = await client.request("users.lookup", {"name": "ada"}, timeout=5)
        assert reply.payload == {"name": "ada", "admin": True}
        with pytest.raises(NotFoundError) as info:
            await client.request("users.lookup", {"name": "bob"}, timeout=5)
        assert info.value.code == "users.unknown" and info.value.context == {"name": "bob"}
        async with client.subscribe("users.#", traffic=True) as traffic:
            await client.request("users.lookup", {"name": "ada"}, timeout=5)
            seen = [await traffic.receive(timeout=5) for _ in range(2)]
        assert [m.kind for m in seen] == ["request", "response"]


@pytest.mark.anyio
async def test_connect_test_client_serves_a_bare_bus_on_a_unix_socket(tmp_path: Path) -> None:
    from symphony.bus import Bus
    from symphony_sdk.testing import connect_test_client

    async with Bus() as bus:
        bus.handle("demo.echo", lambda msg: msg.payload)
        async with connect_test_client(bus, f"unix://{tmp_path / 'bus.sock'}") as client:
            assert (await client.request("demo.echo", [1, 2], timeout=5)).payload == [1, 2]
            assert (tmp_path / "bus.sock").exists()


def test_invoke_command_runs_a_plugin_command_against_a_test_kernel(
    symphony_kernel_factory: Any, tmp_path: Path
) -> None:
    from symphony_sdk.testing import invoke_command

    text = tmp_path / "t.txt"
    text.write_text("plugins extend the kernel; plugins are small\n")
    kernel = symphony_kernel_factory(
        plugins=["symphony_workflow.plugin", "symphony_textstats.plugin"], overrides={"textstats.top": 1}
    )
    result = invoke_command(kernel, ["textstats", str(text), "--json"])
    assert result.exit_code == 0, result.output
    assert '"plugins"' in result.output and kernel.plugin("symphony-textstats").state.value == "active"
    # a command the kernel's plugins do not provide is a usage error, not a crash
    assert invoke_command(kernel, ["hello"]).exit_code == 2


def test_check_manifest_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "symphony.toml"
    path.write_text('[plugin]\nid = "Bad Id"\nversion = ""\nkind = "gizmo"\napi = "nope"\n')
    report = check_manifest(path)
    assert not report.ok and report.manifest is None
    keys = {e.context.get("key") for e in report.errors}
    assert {"plugin.id", "plugin.version", "plugin.kind", "plugin.api"} <= keys


def test_connect_test_client_names_the_missing_distribution() -> None:
    import subprocess
    import sys

    probe = """
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "symphony_bus_remote":
            raise ImportError("not installed")
        return None

sys.meta_path.insert(0, Blocker())
import anyio
from symphony.bus import Bus
from symphony.commons.errors import NotFoundError
from symphony_sdk.testing import connect_test_client

async def main():
    try:
        async with connect_test_client(Bus()):
            pass
    except NotFoundError as exc:
        print(exc.code, exc.hint)

anyio.run(main)
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sdk.bus_remote_missing pip install symphony-sdk[remote]")
