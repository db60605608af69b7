"""Manifests and config files that are devices, FIFOs or huge: a clear message, never a hang.

Each case runs the real CLI in a subprocess with a timeout: reading ``/dev/zero`` used to end
in MemoryError and a FIFO used to block ``--help``, ``plugins list``, ``doctor`` and ``config show``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from symphony_sdk.testing import write_plugin_distribution

SYMPHONY = str(Path(sys.executable).with_name("symphony"))
COMMANDS = [["--help"], ["plugins", "list"], ["doctor"], ["config", "show"]]

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run(
        [SYMPHONY, *args], capture_output=True, text=True, env=full_env, timeout=60, check=False
    )


def _no_crash(proc: subprocess.CompletedProcess[str]) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "MemoryError" not in out, out
    return " ".join(out.split())  # undo the console's line wrapping


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SYMPHONY_CACHE_DIR": str(tmp_path / "cache"),
        "SYMPHONY_USER_CONFIG": str(tmp_path / "missing.toml"),
        "PYTHONPATH": str(tmp_path / "site"),
    }


@pytest.mark.parametrize("kind", ["zero", "fifo"])
def test_special_manifest_is_reported_not_read(tmp_path: Path, env: dict[str, str], kind: str) -> None:
    package = write_plugin_distribution(tmp_path / "site", "p-special")
    manifest = package / "symphony.toml"
    manifest.unlink()
    if kind == "zero":
        manifest.symlink_to("/dev/zero")
    else:
        os.mkfifo(manifest)
    for args in COMMANDS:
        proc = run(args, env)
        text = _no_crash(proc)
        if args in (["--help"], ["config", "show"]):
            assert proc.returncode == 0, text
        if args in (["plugins", "list"], ["doctor"]):
            assert "p-special" in text, text
        if args == ["doctor"]:
            assert str(manifest) in text and "not a regular file" in text, text


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo", "link-to-zero"])
def test_special_user_config_is_a_clear_error(tmp_path: Path, env: dict[str, str], target: str) -> None:
    if target == "fifo":
        path = tmp_path / "config.toml"
        os.mkfifo(path)
    elif target == "link-to-zero":
        path = tmp_path / "config.toml"
        path.symlink_to("/dev/zero")
    else:
        path = Path(target)
    env["SYMPHONY_USER_CONFIG"] = str(path)
    for args in COMMANDS:
        proc = run(args, env)
        text = _no_crash(proc)
        if args == ["--help"]:
            assert proc.returncode == 0, text
            continue
        if args == ["config", "show"]:  # always works, so the user can see and repair; problems on stderr
            assert f"cannot read config file {path}" in proc.stderr, text
        else:
            assert proc.returncode != 0, text
        assert f"cannot read config file {path}" in text and "not a regular file" in text, text


def test_user_config_over_the_size_limit(tmp_path: Path, env: dict[str, str]) -> None:
    big = tmp_path / "config.toml"
    big.write_text("# padding\n" * 200)
    env.update({"SYMPHONY_USER_CONFIG": str(big), "SYMPHONY_CONFIG_DIR": str(tmp_path / "conf")})
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "default.toml").write_text("[fs]\nmax_file_size = 1000\n")
    text = _no_crash(run(["config", "show"], env))
    assert f"{big} is 2000 bytes, over the limit of 1000 bytes" in text, text
