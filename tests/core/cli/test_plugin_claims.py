"""Command names and config sections cannot be hijacked (issue 10.7): through the real CLI,
with the repository's own symphony-workflow installed and a newcomer claiming its names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from symphony.plugins.resolve import KERNEL_DISTRIBUTIONS
from symphony_sdk.testing import write_plugin_distribution

SYMPHONY = str(Path(sys.executable).parent / "symphony")
REPO = Path(__file__).resolve().parents[3]

HIJACK = '''
import click
from symphony.hookspecs import hookimpl

@click.command("{name}")
def command():
    """Hijacked."""
    click.echo("hijacked")

@hookimpl
def symphony_register_commands(registry):
    registry.add(command)
'''


def run(site: Path, tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYMPHONY_")}
    full_env.update(
        PYTHONPATH=str(site),
        SYMPHONY_USER_CONFIG=str(tmp / "user.toml"),
        SYMPHONY_CACHE_DIR=str(tmp / "cache"),
        **env,
    )
    return subprocess.run(
        [SYMPHONY, *args], capture_output=True, text=True, env=full_env, check=False, timeout=60
    )


def hijacker(site: Path, plugin_id: str, *, command: str | None = None, section: str | None = None) -> None:
    manifest: dict[str, object] = {}
    if command:
        manifest["commands"] = [{"name": command, "summary": "Hijacked."}]
    if section:
        manifest["config_section"] = section
        manifest["config_schema"] = {"type": "object"}
    write_plugin_distribution(
        site, plugin_id, manifest=manifest, module_source=HIJACK.format(name=command or "x")
    )


def states(site: Path, tmp: Path) -> dict[str, dict[str, str]]:
    proc = run(site, tmp, "plugins", "list", "--json")
    return {p["id"]: p for p in json.loads(proc.stdout)}


@pytest.mark.parametrize("claim", ["command", "section", "both"])
def test_newcomer_cannot_take_the_workflow_plugin_s_names(tmp_path: Path, claim: str) -> None:
    site = tmp_path / "site"
    hijacker(
        site,
        "evil-flow",
        command="workflow" if claim in ("command", "both") else None,
        section="workflow" if claim in ("section", "both") else None,
    )
    found = states(site, tmp_path)
    assert found["symphony-workflow"]["state"] == "discovered"
    evil = found["evil-flow"]
    assert evil["state"] == "conflicting"
    assert "symphony-workflow" in evil["reason"] and "evil-flow" in evil["reason"]
    assert evil["error_code"] in ("plugin.command_conflict", "plugin.config_section_conflict")

    proc = run(site, tmp_path, "workflow", "--help")  # the real one still answers
    assert proc.returncode == 0, proc.stderr
    assert "hijacked" not in proc.stdout and "Validate" in proc.stdout
    proc = run(site, tmp_path, "config", "set", "workflow.max_nodes", "50")  # its schema, not the intruder's
    assert proc.returncode == 0, proc.stderr
    assert run(site, tmp_path, "config", "set", "workflow.max_nodes", "many").returncode == 4

    proc = run(site, tmp_path, "doctor", "--json", "--no-import")
    assert proc.returncode == 3
    problems = json.loads(proc.stdout)["problems"]
    assert [p["plugin"] for p in problems] == ["evil-flow"]
    assert "symphony-workflow" in problems[0]["reason"]


def test_the_user_chooses_by_disabling_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    hijacker(site, "evil-flow", command="workflow", section="workflow")
    (tmp_path / "user.toml").write_text('[plugins]\ndisabled = ["symphony-workflow"]\n')
    found = states(site, tmp_path)
    assert found["symphony-workflow"]["state"] == "disabled"
    assert found["evil-flow"]["state"] == "discovered"
    proc = run(site, tmp_path, "workflow")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hijacked"


def test_two_newcomers_with_one_name_both_conflict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    hijacker(site, "p-one", command="tool", section="tools")
    hijacker(site, "p-two", command="tool", section="tools")
    found = states(site, tmp_path)
    for plugin_id in ("p-one", "p-two"):
        assert found[plugin_id]["state"] == "conflicting"
        assert "p-one" in found[plugin_id]["reason"] and "p-two" in found[plugin_id]["reason"]
    proc = run(site, tmp_path, "tool")
    assert proc.returncode != 0 and "hijacked" not in proc.stdout


@pytest.mark.parametrize("name", ["config", "doctor", "plugins"])
def test_builtin_command_names_can_never_be_taken(tmp_path: Path, name: str) -> None:
    site = tmp_path / "site"
    hijacker(site, "evil-builtin", command=name)
    found = states(site, tmp_path)
    assert found["evil-builtin"]["state"] == "conflicting"
    assert "built into symphony" in found["evil-builtin"]["reason"]
    proc = run(site, tmp_path, name, "--help")
    assert proc.returncode == 0 and "hijacked" not in proc.stdout.lower()


def test_kernel_distributions_are_the_repository_s_own() -> None:
    names = {"symphony-core"}
    for pyproject in (REPO / "plugins").glob("*/pyproject.toml"):
        names.add(tomllib.loads(pyproject.read_text())["project"]["name"])
    assert names <= KERNEL_DISTRIBUTIONS
    # planned distributions may be listed ahead of their folder (DESIGN.md §2)
    assert KERNEL_DISTRIBUTIONS - names <= {"symphony-stale-manager", "symphony-dag-tracker", "symphony-conductor"}
