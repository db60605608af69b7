from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from symphony.plugins.discovery import DiscoveryIndex, discover
from symphony.plugins.states import PluginState


def test_discovery_reads_manifests_without_importing(
    add_plugin: Callable[..., Path], plugin_root: Path
) -> None:
    add_plugin("p-boom", source="raise RuntimeError('import side effect')\n")
    records, status = discover(search_path=[str(plugin_root)])
    assert [r.id for r in records] == ["p-boom"]
    assert records[0].state is PluginState.DISCOVERED
    assert records[0].manifest is not None and records[0].manifest.summary == "test plugin p-boom"
    assert "p_boom.plugin" not in sys.modules
    assert status == "cold"


def test_index_is_warm_then_invalidated_by_a_new_distribution(
    add_plugin: Callable[..., Path], plugin_root: Path
) -> None:
    add_plugin("p-one")
    assert discover(search_path=[str(plugin_root)])[1] == "cold"
    records, status = discover(search_path=[str(plugin_root)])
    assert status == "warm"
    assert [r.id for r in records] == ["p-one"]
    time.sleep(0.01)  # let the directory mtime move on coarse filesystems
    add_plugin("p-two")
    records, status = discover(search_path=[str(plugin_root)])
    assert status == "cold"
    assert [r.id for r in records] == ["p-one", "p-two"]


def test_index_is_invalidated_by_a_manifest_edit(add_plugin: Callable[..., Path], plugin_root: Path) -> None:
    pkg = add_plugin("p-edit")
    discover(search_path=[str(plugin_root)])
    manifest = pkg / "symphony.toml"
    time.sleep(0.01)
    manifest.write_text(manifest.read_text().replace("test plugin p-edit", "edited summary"))
    records, status = discover(search_path=[str(plugin_root)])
    assert status == "cold"
    assert records[0].manifest is not None and records[0].manifest.summary == "edited summary"


def test_index_can_be_turned_off(add_plugin: Callable[..., Path], plugin_root: Path, monkeypatch) -> None:
    add_plugin("p-one")
    monkeypatch.setenv("SYMPHONY_NO_PLUGIN_INDEX", "1")
    assert discover(search_path=[str(plugin_root)])[1] == "disabled"
    assert discover(search_path=[str(plugin_root)])[1] == "disabled"


def test_corrupt_index_is_rebuilt(add_plugin: Callable[..., Path], plugin_root: Path) -> None:
    add_plugin("p-one")
    index = DiscoveryIndex(sys_path=[str(plugin_root)])
    index.entries()
    index.path.write_text("{not json")
    again = DiscoveryIndex(sys_path=[str(plugin_root)])
    assert [e["name"] for e in again.entries()] == ["p-one"]
    assert again.last_status == "cold"


def test_malformed_manifest_is_invalid_and_others_survive(
    add_plugin: Callable[..., Path], plugin_root: Path
) -> None:
    add_plugin("p-bad", manifest='[plugin]\nid = "p-bad"\nkind = "gizmo"\n')
    add_plugin("p-good")
    records = {r.id: r for r in discover(search_path=[str(plugin_root)])[0]}
    assert records["p-good"].state is PluginState.DISCOVERED
    bad = records["p-bad"]
    assert bad.state is PluginState.INVALID
    assert bad.error_code == "plugin.bad_manifest"
    assert "symphony.toml" in (bad.reason or "")


def test_entry_point_must_match_manifest_id(add_plugin: Callable[..., Path], plugin_root: Path) -> None:
    add_plugin("p-real", entry_point_name="p-alias")
    (record,) = discover(search_path=[str(plugin_root)])[0]
    assert record.state is PluginState.INVALID
    assert record.error_code == "plugin.id_mismatch"


def test_missing_manifest_is_invalid(add_plugin: Callable[..., Path], plugin_root: Path) -> None:
    pkg = add_plugin("p-nomanifest")
    (pkg / "symphony.toml").unlink()
    (record,) = discover(search_path=[str(plugin_root)])[0]
    assert record.state is PluginState.INVALID
    assert record.error_code == "plugin.manifest_missing"


def test_contributes_tables_survive_the_warm_index(
    add_plugin: Callable[..., Path], plugin_root: Path
) -> None:
    manifest = (
        '[plugin]\nid = "p-contrib"\nversion = "0.1.0"\nkind = "operator"\napi = ">=0.1,<0.2"\n\n'
        '[contributes.node_types."p.run"]\nkind = "operator"\ninputs = { text = "text" }\n'
    )
    add_plugin("p-contrib", manifest=manifest)
    assert discover(search_path=[str(plugin_root)])[1] == "cold"
    records, status = discover(search_path=[str(plugin_root)])
    assert status == "warm"
    assert records[0].manifest is not None
    assert records[0].manifest.contributions("node_types") == {
        "p.run": {"kind": "operator", "inputs": {"text": "text"}}
    }
