"""`make demo` must keep working: run its script as a real process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_report_then_takes_every_operator_from_the_memo(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "COLUMNS": "160",
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "HOME": str(tmp_path),
            "SYMPHONY_ENV": "test",
            "SYMPHONY_CACHE_DIR": str(tmp_path / "cache"),
            "SYMPHONY_CONFIG_DIR": str(tmp_path / "config"),
            "SYMPHONY_USER_CONFIG": str(tmp_path / "no-user-config.toml"),
        },
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    first, second = re.findall(r"^run (\w+) completed in [\d.]+ s: (.*)$", out, re.MULTILINE)
    assert first[1] == "8 completed"  # the first run executes every node
    assert second[1] == "8 completed (5 cached)"  # the second takes the five operators from the memo
    for node in ("prose", "sizes", "outline", "stats", "compose"):
        assert f"  {node}: completed" in out and f"  {node}: cached" in out
    assert re.search(r"^# \d+ documents, \d+ words of prose$", out, re.MULTILINE)
    assert "| README.md |" in out and "| plugins/conductor/README.md |" in out
    assert f"run.status {first[0]}: completed, 8 nodes, 0 cached" in out
    assert "symphony-dag-tracker" in out and "symphony-demo-ops" in out
