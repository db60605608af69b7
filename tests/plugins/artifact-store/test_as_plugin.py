"""The plugin inside a real kernel and the real ``symphony artifacts`` command: discovery from
the manifest, the service configured by ``[artifact_store]``, every CLI command with --json,
a standalone wheel carrying its manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from symphony.commons.errors import SymphonyError
from symphony.kernel import Kernel
from symphony_artifact_store import ArtifactStore

PACKAGE = Path(__file__).resolve().parents[3] / "plugins" / "artifact-store"
SYMPHONY = str(Path(sys.executable).with_name("symphony"))


def test_service_is_configured_from_the_section(tmp_path: Path) -> None:
    overrides = {"artifact_store": {"root": str(tmp_path / "s"), "inline_max": 16, "algorithm": "sha256",
                                    "compression": {"media_types": ["text/*"], "level": 5}}}  # fmt: skip
    kernel = Kernel.create(env="test", overrides=overrides)
    record = next(r for r in kernel.plugins if r.id == "symphony-artifact-store")
    assert record.manifest is not None and "service:artifact-store" in record.manifest.provides
    store = kernel.service("artifact-store")
    assert isinstance(store, ArtifactStore) and store.root == tmp_path / "s"
    digest = store.put(b"x" * 100, media_type="text/plain")
    info = store.info(digest)
    assert digest.algorithm == "sha256" and not info.inline and info.encoding == "zstd"
    assert store.get(digest) == b"x" * 100


def test_bad_config_fails_the_plugin_naming_the_key(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[artifact_store]\ninline_max = 1099511627776\n")
    with pytest.raises(SymphonyError) as info:
        Kernel.create(user, env="test").service("artifact-store")
    assert "artifact_store.inline_max" in str(info.value) and str(user) in str(info.value)


@pytest.mark.anyio
async def test_kernel_shutdown_closes_the_store(tmp_path: Path) -> None:
    async with Kernel.open(env="test", overrides={"artifact_store": {"root": str(tmp_path / "s")}}) as kernel:
        store = kernel.service("artifact-store")
        digest = await store.aio.put(b"through the kernel")
    with pytest.raises(SymphonyError) as info:
        store.get(digest)
    assert info.value.code == "artifact.closed"


def test_every_numeric_config_setting_has_a_maximum() -> None:
    manifest = tomllib.loads((PACKAGE / "src" / "symphony_artifact_store" / "symphony.toml").read_text())
    assert manifest["plugin"]["config_section"] == "artifact_store"

    def walk(schema: dict[str, Any], path: str) -> list[str]:
        found = [path] if schema.get("type") in ("integer", "number") and "maximum" not in schema else []
        for name, sub in schema.get("properties", {}).items():
            found += walk(sub, f"{path}.{name}")
        return found

    assert walk(manifest["config_schema"], "artifact_store") == []
    keys = set(manifest["config_schema"]["properties"])
    assert {"root", "inline_max", "algorithm", "verify_on_read", "compression"} <= keys


def cli(tmp_path: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "SYMPHONY_ARTIFACT_STORE__ROOT": str(tmp_path / "store")}
    return subprocess.run(
        [SYMPHONY, "artifacts", *args], input=stdin, capture_output=True, env=env, timeout=60, check=False
    )


def cli_json(tmp_path: Path, *args: str, stdin: bytes | None = None) -> Any:
    proc = cli(tmp_path, *args, "--json", stdin=stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_cli_commands(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("meeting notes\n")
    raw = cli_json(tmp_path, "put", str(source), "--tag", "notes", "--media-type", "text/plain")["digest"]
    summary = cli_json(tmp_path, "put", "-", "--parent", raw, "--ref", "notes/summary", stdin=b"summary")
    derived = summary["digest"]
    assert summary["ref"] == "notes/summary"
    listed = cli_json(tmp_path, "ls", "--tag", "notes")
    assert [i["digest"] for i in listed] == [raw] and listed[0]["media_type"] == "text/plain"
    shown = cli_json(tmp_path, "show", "notes/summary")
    assert shown["digest"] == derived and shown["parents"] == [raw] and shown["refs"] == ["notes/summary"]
    up = cli_json(tmp_path, "lineage", derived)
    assert up["edges"] == [{"child": derived, "parent": raw, "depth": 1}]
    text = cli(tmp_path, "lineage", raw, "--down").stdout.decode()
    assert text.splitlines() == [raw, f"└── {derived}"]
    assert cli(tmp_path, "get", "notes/summary").stdout == b"summary"
    out = tmp_path / "out.txt"
    assert cli_json(tmp_path, "get", raw[:20], "-o", str(out))["path"] == str(out)
    assert out.read_text() == "meeting notes\n"
    cli_json(tmp_path, "refs", "set", "notes/summary", raw, "--expect", derived, "-m", "back")
    conflict = cli(tmp_path, "refs", "set", "notes/summary", raw, "--expect", derived, "--json")
    assert (
        conflict.returncode == 1 and json.loads(conflict.stdout)["error"]["code"] == "artifact.ref.conflict"
    )
    history = cli_json(tmp_path, "refs", "history", "notes/summary")
    assert [(h["version"], h["digest"], h["message"]) for h in history] == [
        (1, derived, ""),
        (2, raw, "back"),
    ]
    assert [r["name"] for r in cli_json(tmp_path, "refs")] == ["notes/summary"]
    assert cli_json(tmp_path, "verify") == {
        "ok": True, "checked": 2, "missing": [], "corrupt": [], "orphaned": [], "repaired": [],
    }  # fmt: skip
    assert cli_json(tmp_path, "trash", derived)["trashed"] == [derived]
    assert cli_json(tmp_path, "ls", "--trashed")[0]["digest"] == derived
    assert cli_json(tmp_path, "restore", derived)["restored"] == [derived]
    assert cli_json(tmp_path, "stats")["objects"] == 2
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(50_000))
    stored = cli(tmp_path, "put", str(big)).stdout.decode().strip()
    (obj,) = [p for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()]
    obj.chmod(0o644)
    obj.write_bytes(b"\0" + obj.read_bytes()[1:])
    corrupt = cli(tmp_path, "get", stored)
    assert corrupt.returncode == 1 and corrupt.stdout == b"" and stored.encode() in corrupt.stderr
    verify = cli(tmp_path, "verify", "--json")
    assert verify.returncode == 1 and json.loads(verify.stdout)["corrupt"] == [stored]
    bad = cli(tmp_path, "get", "blake3:nothex:1")
    assert bad.returncode == 1 and b"malformed digest" in bad.stderr


@pytest.mark.slow
def test_wheel_builds_standalone_with_its_manifest(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(PACKAGE)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("symphony_artifact_store-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "symphony_artifact_store/symphony.toml" in names and "symphony_artifact_store/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "symphony-artifact-store = symphony_artifact_store.plugin" in text
