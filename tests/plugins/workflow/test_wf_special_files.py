"""Workflow, template and parameter files that are FIFOs or devices: a clear error, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from symphony.commons.errors import FilesystemError
from symphony_workflow import load
from symphony_workflow._templates import load_template

SYMPHONY = str(Path(sys.executable).with_name("symphony"))

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")


def test_loaders_refuse_special_files(tmp_path: Path) -> None:
    fifo = tmp_path / "wf.json"
    os.mkfifo(fifo)
    for loader in (load, load_template):
        for path in (fifo, Path("/dev/zero")):
            with pytest.raises(FilesystemError) as info:
                loader(path)
            assert info.value.code == "fs.not_regular"


def test_cli_validate_on_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "wf.json"
    os.mkfifo(fifo)
    env = {
        **os.environ,
        "SYMPHONY_CACHE_DIR": str(tmp_path / "cache"),
        "SYMPHONY_USER_CONFIG": str(tmp_path / "u.toml"),
    }
    proc = subprocess.run(
        [SYMPHONY, "workflow", "validate", str(fifo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0
    assert "Traceback" not in out
    assert "not a regular file" in out, out
