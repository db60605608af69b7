"""The real ``symphony artifacts gc | tier | trash list | trash empty`` commands (a process each),
the store's own ``trash NAME`` and ``restore`` beside them, and a standalone wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from symphony_artifact_store import ArtifactStore

DAY = 86400.0
PACKAGE = Path(__file__).resolve().parents[3] / "plugins" / "stale-manager"
SYMPHONY = str(Path(sys.executable).with_name("symphony"))


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYMPHONY_ARTIFACT_STORE__ROOT": str(tmp_path / "store"),
           "SYMPHONY_ARTIFACT_STORE__COLD_ROOT": str(tmp_path / "cold"),
           "SYMPHONY_STALE_MANAGER__GRACE": "1d", "SYMPHONY_STALE_MANAGER__KEEP_WITHIN": "0"}  # fmt: skip
    return subprocess.run(
        [SYMPHONY, "artifacts", *args], capture_output=True, env=env, timeout=60, check=False, text=True
    )


def cli_json(tmp_path: Path, *args: str) -> Any:
    proc = cli(tmp_path, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_gc_dry_run_then_gc_then_trash_and_restore(tmp_path: Path, age: Any) -> None:
    with ArtifactStore(tmp_path / "store", cold_root=tmp_path / "cold") as store:
        junk = str(store.put(b"j" * 9000))
        kept = str(store.put(b"k" * 9000))
        idle = str(store.put(b"i" * 9000, tags=["keep"]))
        store.set_ref("reports/latest", kept)
        age(store, [junk, kept], 60 * DAY)
        age(store, [idle], 10 * DAY)
    plan = cli_json(tmp_path, "gc", "--dry-run")
    assert plan["dry_run"] and plan["trashed"] == []
    assert {(a["digest"], a["action"]) for a in plan["plan"]["actions"]} == {
        (junk, "trash"),
        (kept, "cold"),
        (idle, "warm"),
    }
    rules = {a["digest"]: a["rule"] for a in plan["plan"]["actions"]}
    assert rules[junk].startswith("no rule keeps it") and rules[idle].startswith("idle 10.0d")
    text = cli(tmp_path, "gc", "--dry-run").stdout
    assert f"trash    {junk[:27]}…" in text and "would: trash 1, purge 0, restore 0, warm 1, cold 1" in text
    done = cli_json(tmp_path, "gc")
    assert done["trashed"] == [junk] and sorted(m["tier"] for m in done["moved"]) == ["cold", "warm"]
    assert [i["digest"] for i in cli_json(tmp_path, "trash", "list")] == [junk]
    assert cli(tmp_path, "get", "reports/latest").stdout == "k" * 9000  # read back from the cold tier
    assert cli_json(tmp_path, "restore", junk)["restored"] == [junk]
    assert cli_json(tmp_path, "trash", junk)["trashed"] == [junk]  # the store's own `trash NAME` still works
    assert cli_json(tmp_path, "trash", "empty") == {"purged": [junk]}
    assert cli_json(tmp_path, "trash", "list") == []
    missing = cli(tmp_path, "restore", junk, "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"]["code"] == "artifact.not_found"


@pytest.mark.slow
def test_tier_only_and_bad_input(tmp_path: Path, age: Any) -> None:
    with ArtifactStore(tmp_path / "store") as store:
        old = str(store.put(b"o" * 9000))
        age(store, [old], 10 * DAY)
    tiered = cli_json(tmp_path, "tier")
    assert tiered["moved"] == [{"digest": old, "tier": "warm"}] and tiered["trashed"] == []
    assert cli_json(tmp_path, "show", old)["encoding"] == "zstd"
    bad = cli(tmp_path, "trash", "empty", "--older-than", "soon")
    assert bad.returncode == 1 and "--older-than" in bad.stderr and "stale.duration.invalid" in bad.stderr
    help_text = cli(tmp_path, "trash", "--help").stdout
    assert "list" in help_text and "empty" in help_text


@pytest.mark.slow
def test_wheel_builds_standalone_with_its_manifest(build_wheel: Any) -> None:
    wheel = build_wheel(PACKAGE)
    assert wheel.path.name.startswith("symphony_stale_manager-")
    assert {"symphony_stale_manager/symphony.toml", "symphony_stale_manager/py.typed"} <= set(wheel.names)
    assert "symphony-stale-manager = symphony_stale_manager.plugin" in wheel.entry_points
