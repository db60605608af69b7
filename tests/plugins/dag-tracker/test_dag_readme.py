"""The README's Python snippet runs and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "plugins" / "dag-tracker" / "README.md"


@pytest.mark.slow
def test_readme_snippet_prints_its_output(tmp_path: Path) -> None:
    text = README.read_text()
    match = re.search(r"```python\n(.*?)```\s*Output:\s*\n+```\n(.*?)```", text, re.S)
    assert match is not None
    code, expected = match.groups()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected
