"""The shipped examples: every workflow and template loads, validates and round-trips; the README runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from symphony_workflow import TemplateLibrary, dumps, load, loads, render, to_binary, validate

from .conftest import EXAMPLE_FILES, REPO, TEMPLATES

KNOWN = {"textstats.analyze", "docs.join", "docs.sizes", "markdown.outline", "report.compose"}
"""The node types the repository installs (the textstats example extension)."""


def test_there_are_at_least_three_workflows_and_two_templates() -> None:
    assert len(EXAMPLE_FILES) >= 3
    assert len(TemplateLibrary.from_paths([TEMPLATES])) >= 2


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_workflow(path: Path) -> None:
    wf = load(path)
    report = validate(wf, node_types=KNOWN)
    assert report.valid, report.to_dict()
    assert loads(dumps(wf)) == wf and loads(to_binary(wf, compress="zstd")) == wf
    for fmt in ("text", "mermaid", "dot"):
        assert wf.name in render(wf, fmt) or fmt == "mermaid"


def test_every_template_version_instantiates() -> None:
    library = TemplateLibrary.from_paths([TEMPLATES])
    for tid in library.ids():
        for version in library.versions(tid):
            template = library.get(tid, f"={version}")
            values = dict(template.examples[0]) if template.examples else {}
            for p in template.parameters:
                if not p.optional and p.name not in values:
                    values[p.name] = "Example"
            result = template.instantiate(values, node_types=KNOWN)
            assert validate(result.workflow, node_types=KNOWN).valid


def test_readme_example_runs(tmp_path: Path) -> None:
    text = (REPO / "plugins" / "workflow" / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    script = tmp_path / "readme_example.py"
    script.write_text(code.group(1))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart TD") and proc.stdout.strip().endswith("True")
