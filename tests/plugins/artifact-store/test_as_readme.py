"""Every Python snippet of the plugin's README runs and prints what the README says it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "plugins" / "artifact-store" / "README.md"


def snippets() -> list[tuple[str, str]]:
    """(code, expected output) for each ```python block, the output taken from what follows it."""
    text = README.read_text()
    found = []
    for match in re.finditer(r"```python\n(.*?)```\n(.*?)(?=```python|\Z)", text, re.S):
        code, after = match.group(1), match.group(2)
        block = re.match(r"\s*Output:\s*\n+```\n(.*?)```", after, re.S)
        inline = re.match(r"\s*Output: `(.*?)`", after, re.S)
        expected = block.group(1) if block else (inline.group(1) + "\n" if inline else "")
        found.append((code, expected))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("index", range(4))
def test_readme_snippet_runs(index: int, tmp_path: Path) -> None:
    code, expected = snippets()[index]
    env = {**os.environ, "SYMPHONY_ARTIFACT_STORE__ROOT": str(tmp_path / "store")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert expected and proc.stdout == expected


def test_readme_has_four_snippets() -> None:
    assert len(snippets()) == 4
