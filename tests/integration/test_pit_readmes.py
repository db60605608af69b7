"""The pool manager's and the arbitration engine's READMEs: the first example runs and prints what they show."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("plugin", ["pool-manager", "arbitration-engine"])
def test_readme_example_prints_what_it_shows(plugin: str) -> None:
    text = (REPO / "plugins" / plugin / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", text, re.S)
    assert match is not None, "no example followed by its output"
    code, shown = match.groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{plugin}/README.md", "exec"), {"__name__": "__readme__"})
    assert out.getvalue() == shown
