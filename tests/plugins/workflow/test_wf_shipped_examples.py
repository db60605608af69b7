"""Every shipped example works with what the repository installs, through the real ``symphony`` CLI.

Issue 9: each file in ``examples/workflows`` validates strictly (JSON Schema too) against the node
types the installed plugins provide; each template version in ``examples/templates``
instantiates with its own example parameters into a workflow that validates the same way; the
commands ``symphony workflow --help`` prints as examples run as printed.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from symphony_workflow._templates import load_template

from .conftest import EXAMPLE_FILES, REPO, TEMPLATES
from .test_wf_cli import _symphony

TEMPLATE_FILES = sorted(TEMPLATES.glob("*.json"))


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_symphony(), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def _validate_strictly(path: Path) -> None:
    proc = _cli("workflow", "validate", "--strict", "--schema", "--json", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["valid"] is True and result["errors"] == [] and result["warnings"] == [], result


def test_there_are_examples_to_check() -> None:
    assert len(EXAMPLE_FILES) >= 3 and len(TEMPLATE_FILES) >= 2


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_shipped_workflow_validates_against_the_installed_node_types(path: Path) -> None:
    _validate_strictly(path)


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_shipped_template_instantiates_into_a_valid_workflow(path: Path, tmp_path: Path) -> None:
    template = load_template(path)
    assert template.examples, f"{path.name} ships no example parameters"
    values = dict(template.examples[0])
    missing = [p.name for p in template.parameters if not p.optional and p.name not in values]
    assert not missing, f"{path.name}: its example leaves out required {missing}"
    target = tmp_path / "instance.json"
    args = ["workflow", "template", "instantiate", template.id, "--version", f"={template.version}"]
    args += ["--path", str(path), "-o", str(target)]
    for name, value in values.items():
        args += ["-p", f"{name}={json.dumps(value)}"]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    _validate_strictly(target)


def test_the_examples_in_workflow_help_run_as_printed(tmp_path: Path) -> None:
    proc = _cli("workflow", "--help")
    assert proc.returncode == 0, proc.stderr
    commands = [
        line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("symphony workflow ")
    ]
    assert len(commands) >= 3, proc.stdout
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    for command in commands:
        words = shlex.split(command)
        ran = _cli(*words[1:], cwd=tmp_path)
        assert ran.returncode == 0, f"{command}\n{ran.stdout}{ran.stderr}"
