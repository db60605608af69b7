"""Every distribution builds a wheel on its own, and plugin wheels carry manifest + entry point."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_PROJECTS = [*ROOT.glob("plugins/*/pyproject.toml"), *ROOT.glob("examples/extensions/*/pyproject.toml")]
DISTS = [ROOT / "core", ROOT / "sdk", *sorted(p.parent for p in PLUGIN_PROJECTS)]


@pytest.mark.parametrize("dist", DISTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_distribution_builds_a_wheel(dist: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=dist,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    project = tomllib.loads((dist / "pyproject.toml").read_text())["project"]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        plugins = project.get("entry-points", {}).get("symphony.plugins", {})
        if not plugins:
            return  # core and sdk are libraries, not plugins
        assert entry_points is not None
        text = zf.read(entry_points).decode()
        assert "[symphony.plugins]" in text
        for plugin_id, target in plugins.items():
            assert f"{plugin_id} = {target}" in text
            package = target.split(":")[0].split(".")[0]
            assert f"{package}/symphony.toml" in names, f"{package}/symphony.toml missing from {wheel.name}"
            manifest = tomllib.loads(zf.read(f"{package}/symphony.toml").decode())
            assert manifest["plugin"]["id"] == plugin_id == project["name"]
