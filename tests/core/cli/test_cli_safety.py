"""The `symphony` command facing broken or hostile plugins, run as a real process.

Safe mode loads no plugin code; text from manifests, configs and messages is printed as text
(never rich markup, control characters escaped); a crashing plugin command is one line; small
things a user notices (typo suggestions, tables, short ids, disabled plugins in --help).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from symphony_sdk.testing import write_plugin_distribution

SYMPHONY = str(Path(sys.executable).parent / "symphony")

MARKING_PLUGIN = '''
import click, os, pathlib
from symphony.hookspecs import hookimpl

pathlib.Path(os.environ["MARK_FILE"]).write_text("imported")

@click.command("marked")
def marked():
    """Run the marked plugin."""
    click.echo("marked ran")

@click.command("crash")
def crash():
    """Crash."""
    raise RuntimeError("kaboom [red]inside[/red]")

@hookimpl
def symphony_register_commands(registry):
    registry.add(marked)
    registry.add(crash)
'''


def run(
    site: Path | None, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
    full_env.update(env or {})
    return subprocess.run(
        [SYMPHONY, *args], capture_output=True, text=True, env=full_env, check=False, timeout=timeout
    )


@pytest.fixture
def marked(tmp_path: Path) -> tuple[Path, Path]:
    """A site with a plugin that leaves a mark file when imported, and the mark file."""
    site = tmp_path / "site"
    write_plugin_distribution(
        site,
        "p-marked",
        manifest={
            "commands": [{"name": "marked", "summary": "Run the marked plugin."}, {"name": "crash"}],
            "activation": "on-startup",
            "config_section": "marked",
            "config_schema": {"type": "object", "properties": {"level": {"type": "integer"}}},
        },
        module_source=MARKING_PLUGIN,
    )
    return site, tmp_path / "imported.mark"


# --------------------------------------------------------------------------- safe mode


def test_safe_mode_loads_no_plugin_and_lists_no_plugin_command(marked: tuple[Path, Path]) -> None:
    site, mark = marked
    env = {"MARK_FILE": str(mark)}
    ran = run(site, "--no-plugins", "marked", env=env)
    assert ran.returncode == 2 and "marked ran" not in ran.stdout
    assert "--no-plugins" in ran.stderr
    helped = run(site, "--no-plugins", "--help", env=env)
    assert helped.returncode == 0
    assert "marked" not in helped.stdout and "textstats" not in helped.stdout and "Plugin commands" not in helped.stdout
    for args in (("plugins", "list"), ("doctor",), ("config", "show", "--json")):
        proc = run(site, "--no-plugins", *args, env=env)
        assert proc.returncode == 0, proc.stderr
    assert not mark.exists(), "safe mode imported a plugin"
    assert run(site, "--help", env=env).returncode == 0 and not mark.exists()  # --help imports nothing either
    assert run(site, "marked", env=env).stdout.strip() == "marked ran" and mark.exists()


def test_safe_mode_ignores_plugin_sections_of_the_config(marked: tuple[Path, Path], tmp_path: Path) -> None:
    site, mark = marked
    user = tmp_path / "user.toml"
    user.write_text('[marked]\nlevel = "not a number"\n\n[textstats]\ntop = -5\n\n[gone]\nx = 1\n')
    env = {"MARK_FILE": str(mark), "SYMPHONY_USER_CONFIG": str(user), "SYMPHONY_TEXTSTATS__TOP": "oops"}
    for args in (("plugins", "list", "--json"), ("doctor", "--json"), ("config", "get", "logging.level")):
        proc = run(site, "--no-plugins", *args, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "unknown configuration key" not in proc.stderr
    assert json.loads(run(site, "--no-plugins", "plugins", "list", "--json", env=env).stdout) == []
    assert not mark.exists()


def test_safe_mode_hints_do_not_suggest_installing_what_is_installed(tmp_path: Path) -> None:
    proc = run(None, "--no-plugins", "serve", "--socket", str(tmp_path / "s.sock"), timeout=30)
    assert proc.returncode != 0
    assert "pip install symphony-transport-unix" not in proc.stderr
    assert "--no-plugins" in proc.stderr


# --------------------------------------------------------------------------- hostile text

ESC = "\x1b"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    write_plugin_distribution(  # an id with brackets: invalid, and listed under its entry point's name
        site,
        "fake-n",
        manifest='[plugin]\nid = "fake-n[/x]"\nversion = "1"\nkind = "service"\napi = ">=0.1"\n',
        entry_point_name="fake-n[/x]",
    )
    write_plugin_distribution(
        site,
        "p-escape",
        manifest={
            "version": f"1.0{ESC}[2J{ESC}]0;pwned\x07",
            "summary": f"[bold]loud[/bold] {ESC}[31mred",
            "provides": ["service:escape"],
            "commands": [{"name": "esc", "summary": f"{ESC}[31mred [bold]x[/bold]"}],
        },
    )
    write_plugin_distribution(
        site,
        "p-brackets",
        manifest={"provides": ["service:brackets"]},
        module_source="raise RuntimeError('[red]boom[/red] in [/x] and [link=file:///etc]here[/link]')\n",
    )
    return site


@pytest.mark.parametrize("terminal", ["0", "1"], ids=["piped", "terminal"])
def test_hostile_manifests_are_printed_as_text(hostile: Path, terminal: str) -> None:
    env = {"TTY_COMPATIBLE": terminal, "COLUMNS": "200"}
    for args in (
        ("plugins", "list"),
        ("plugins", "list", "--load"),
        ("doctor",),
        ("plugins", "inspect", "fake-n[/x]"),
        ("plugins", "inspect", "p-escape"),
        ("plugins", "inspect", "p-brackets", "--load"),
    ):
        proc = run(hostile, *args, env=env)
        out = proc.stdout + proc.stderr
        assert proc.returncode in (0, 3), (args, out)
        assert "MarkupError" not in out and "Traceback (most recent" not in proc.stderr, (args, out)
        assert f"{ESC}[2J" not in out and f"{ESC}]0;" not in out and "\x07" not in out, (args, out)
        if terminal == "0":
            assert ESC not in out, (args, out)
    helped = run(hostile, "--help", env=env).stdout
    assert "esc" in helped and ESC not in helped and "[bold]x[/bold]" in helped
    listed = run(hostile, "plugins", "list", env=env).stdout
    assert "fake-n[/x]" in listed
    assert "\\x1b[2J" in listed  # escaped, visible
    doctor = run(hostile, "doctor", env=env).stdout
    assert "[red]boom[/red] in [/x]" in doctor and "[link=file:///etc]here[/link]" in doctor
    inspected = run(hostile, "plugins", "inspect", "p-escape", env=env).stdout
    assert "[bold]loud[/bold]" in inspected


# --------------------------------------------------------------------------- plugin crashes


def test_a_crashing_plugin_command_prints_one_line_and_logs_the_traceback(
    marked: tuple[Path, Path], tmp_path: Path
) -> None:
    site, mark = marked
    cache = tmp_path / "cache"
    proc = run(site, "crash", env={"MARK_FILE": str(mark), "SYMPHONY_CACHE_DIR": str(cache)})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "p-marked" in lines[0] and "RuntimeError: kaboom [red]inside[/red]" in lines[0]
    (report,) = (cache / "crash-reports").glob("p-marked-*.txt")
    assert str(report) in lines[0]
    assert "Traceback (most recent call last)" in report.read_text()


# --------------------------------------------------------------------------- small things


def test_a_top_level_typo_gets_a_suggestion() -> None:
    proc = run(None, "plugin", "list")
    assert proc.returncode == 2
    assert "Did you mean 'plugins'" in proc.stderr


def test_tables_are_tab_separated_when_piped_and_wrap_whole_ids_on_a_terminal(hostile: Path) -> None:
    piped = run(None, "plugins", "list").stdout.splitlines()
    assert piped[0].split("\t")[:3] == ["plugin", "state", "version"]
    assert any(line.startswith("symphony-transport-stdio\tdiscovered\t") for line in piped)
    for width in ("100", "60", "30"):
        shown = run(None, "plugins", "list", env={"TTY_COMPATIBLE": "1", "COLUMNS": width}).stdout
        text = re.sub(r"\x1b\[[0-9;]*m", "", shown)
        assert all(len(line) <= int(width) for line in text.splitlines()), text
        for plugin_id in ("symphony-transport-stdio", "symphony-workflow", "symphony-textstats"):
            assert plugin_id in text, (width, text)


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ('[plugins]\ndisabled = ["symphony-textstats"]\n', "disabled"),
        ("[textstats]\nmax_bytes = 0\n", "misconfigured"),
    ],
)
def test_help_leaves_out_commands_of_unusable_plugins(tmp_path: Path, settings: str, why: str) -> None:
    user = tmp_path / "user.toml"
    user.write_text(settings)
    env = {"SYMPHONY_USER_CONFIG": str(user)}
    helped = run(None, "--help", env=env).stdout
    assert "textstats" not in helped and "workflow" in helped
    assert "textstats" not in run(None, "--config", str(user), "--help").stdout
    ran = run(None, "textstats", "README.md", env=env)
    assert ran.returncode == 2 and why in ran.stderr


def test_plugins_inspect_accepts_the_short_id_and_a_unique_prefix() -> None:
    for name in ("textstats", "symphony-texts", "texts"):
        proc = run(None, "plugins", "inspect", name, "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["id"] == "symphony-textstats"
    ambiguous = run(None, "plugins", "inspect", "transport")
    assert ambiguous.returncode == 1 and "symphony-transport-tcp" in ambiguous.stderr


# --------------------------------------------------------------------------- validate

BAD_MANIFEST = """
[plugin]
id = "Bad Id"
version = "0.1.0"
kind = "gizmo"
api = "not a range"
provides = ["nocolon"]
"""


def test_plugins_validate_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "symphony.toml"
    path.write_text(BAD_MANIFEST)
    proc = run(None, "plugins", "validate", str(path), "--json")
    assert proc.returncode == 1
    messages = [e["message"] for e in json.loads(proc.stdout)["errors"]]
    assert any("plugin.id" in m for m in messages)
    assert any("unknown kind 'gizmo'" in m for m in messages)
    assert any("plugin.provides[0]" in m for m in messages)
    assert any("plugin.api: 'not a range' is not a 'version-range'" in m for m in messages)


PYPROJECT = """
[project]
name = "symphony-hello"
version = "0.1.0"

[project.entry-points."symphony.plugins"]
symphony-hello = "symphony_hello.plugin"
"""

HATCHLING = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def _project(root: Path, pyproject: str) -> Path:
    pkg = root / "src" / "symphony_hello"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text("")
    (pkg / "symphony.toml").write_text(
        '[plugin]\nid = "symphony-hello"\nversion = "0.1.0"\nkind = "service"\napi = ">=0.1,<0.2"\n'
    )
    (root / "pyproject.toml").write_text(pyproject)
    return root


def test_plugins_validate_fails_when_the_wheel_would_not_ship_the_manifest(tmp_path: Path) -> None:
    no_backend = run(None, "plugins", "validate", str(_project(tmp_path / "a", PYPROJECT)))
    assert no_backend.returncode == 1 and "build-system" in no_backend.stderr
    excluded = PYPROJECT + HATCHLING + '\n[tool.hatch.build.targets.wheel]\nexclude = ["*.toml"]\n'
    left_out = run(None, "plugins", "validate", str(_project(tmp_path / "b", excluded)))
    assert left_out.returncode == 1 and "leaves out symphony_hello/symphony.toml" in left_out.stderr
    good = run(None, "plugins", "validate", str(_project(tmp_path / "c", PYPROJECT + HATCHLING)))
    assert good.returncode == 0, good.stderr
    assert "ships it" in good.stdout
