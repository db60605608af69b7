"""`make demo` must keep working: run its script as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "COLUMNS": "160",
            "PATH": "/usr/bin:/bin",
            "HOME": str(ROOT),
            "SYMPHONY_ENV": "test",
            "SYMPHONY_CACHE_DIR": str(ROOT / ".venv" / "demo-cache"),
            "SYMPHONY_USER_CONFIG": str(ROOT / ".venv" / "no-user-config.toml"),
        },
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "symphony-textstats" in proc.stdout
    assert "README.md:" in proc.stdout
    (words,) = [line for line in proc.stdout.splitlines() if "most common words" in line]
    top = [w.split(" (")[0] for w in words.split(": ", 1)[1].split(", ")]
    assert "symphony" in top and "plugin" in top
    assert all(w.isalpha() for w in top), top  # words that say what the tool is for, not 0, 1, ms
