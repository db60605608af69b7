"""The `symphony` command as a user runs it: a real process, real installed-looking plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symphony_sdk.testing import write_plugin_distribution

SYMPHONY = str(Path(sys.executable).parent / "symphony")

COMMAND_PLUGIN = '''
import click
from symphony.hookspecs import hookimpl

@click.command("hello")
@click.argument("name")
def hello(name):
    """Say hello."""
    click.echo(f"hello {name}")

@hookimpl
def symphony_register_commands(registry):
    registry.add(hello)
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    write_plugin_distribution(
        root,
        "p-hello",
        manifest={"commands": [{"name": "hello", "summary": "Say hello."}]},
        module_source=COMMAND_PLUGIN,
    )
    write_plugin_distribution(
        root,
        "p-broken",
        manifest={"commands": [{"name": "explode", "summary": "Boom."}], "provides": ["service:broken"]},
        module_source="raise RuntimeError('broken at import')\n",
    )
    return root


def run(site: Path | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
    full_env.update(env or {})
    return subprocess.run(
        [SYMPHONY, *args], capture_output=True, text=True, env=full_env, check=False, timeout=60
    )


def test_version() -> None:
    proc = run(None, "--version")
    assert proc.returncode == 0
    assert "plugin API" in proc.stdout


def test_help_lists_plugin_commands_without_importing_a_broken_plugin(site: Path) -> None:
    proc = run(site, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout and "[p-hello]" in proc.stdout
    assert "explode" in proc.stdout
    assert "broken at import" not in proc.stdout + proc.stderr


def test_plugin_command_runs(site: Path) -> None:
    proc = run(site, "hello", "ada")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello ada"


def test_broken_plugin_command_fails_clearly_and_alone(site: Path) -> None:
    proc = run(site, "explode")
    assert proc.returncode == 1
    assert "p-broken" in proc.stderr and "broken at import" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert run(site, "hello", "x").returncode == 0


def test_plugins_list_json(site: Path) -> None:
    proc = run(site, "plugins", "list", "--json")
    assert proc.returncode == 0, proc.stderr  # the broken one is not imported by a plain list
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert rows["p-hello"]["state"] == "discovered"
    assert rows["p-hello"]["commands"] == ["hello"]
    assert "symphony-textstats" in rows


def test_plugins_list_load_reports_import_failures_with_exit_3(site: Path) -> None:
    proc = run(site, "plugins", "list", "--json", "--load")
    assert proc.returncode == 3
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert rows["p-broken"]["state"] == "import-failed"
    assert "broken at import" in rows["p-broken"]["reason"]
    assert rows["p-hello"]["state"] == "active"


def test_plugins_list_table(site: Path) -> None:
    proc = run(site, "plugins", "list")
    assert proc.returncode == 0
    assert "p-hello" in proc.stdout and "discovered" in proc.stdout


def test_plugins_inspect_shows_traceback(site: Path) -> None:
    proc = run(site, "plugins", "inspect", "p-broken", "--load", "--json")
    assert proc.returncode == 3
    data = json.loads(proc.stdout)
    assert data["state"] == "import-failed"
    assert "RuntimeError: broken at import" in data["traceback"]
    missing = run(site, "plugins", "inspect", "p-nope")
    assert missing.returncode == 1
    assert "no plugin 'p-nope'" in missing.stderr


def test_incompatible_and_conflicting_plugins_exit_3(tmp_path: Path) -> None:
    root = tmp_path / "site"
    write_plugin_distribution(root, "p-old", manifest={"api": ">=5"})
    write_plugin_distribution(root, "p-x", manifest={"provides": ["codec:same"]})
    write_plugin_distribution(root, "p-y", manifest={"provides": ["codec:same"]})
    proc = run(root, "plugins", "list", "--json")
    assert proc.returncode == 3
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert rows["p-old"]["state"] == "incompatible"
    assert rows["p-x"]["state"] == rows["p-y"]["state"] == "conflicting"
    assert "p-x" in rows["p-y"]["reason"] and "p-y" in rows["p-y"]["reason"]
    strict = run(root, "--strict", "plugins", "list")
    assert strict.returncode == 1
    assert "p-old" in strict.stderr


def test_plugins_validate(tmp_path: Path) -> None:
    good = Path(__file__).parents[3] / "examples" / "extensions" / "textstats"
    proc = run(None, "plugins", "validate", str(good), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["id"] == "symphony-textstats"
    bad = tmp_path / "symphony.toml"
    bad.write_text('[plugin]\nid = "x"\nversion = "1"\nkind = "gizmo"\napi = ">=0.1"\n')
    proc = run(None, "plugins", "validate", str(bad))
    assert proc.returncode == 1
    assert "unknown kind 'gizmo'" in proc.stderr


def test_plugins_validate_without_the_sdk_names_it(tmp_path: Path) -> None:
    probe = (
        "import importlib.abc, sys\n"
        "class Blocker(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'symphony_sdk':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Blocker())\n"
        "from symphony.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    manifest = tmp_path / "symphony.toml"
    manifest.write_text('[plugin]\nid = "x"\nversion = "1"\nkind = "service"\napi = ">=0.1"\n')
    proc = subprocess.run(
        [sys.executable, "-c", probe, "plugins", "validate", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "plugin SDK" in proc.stderr and "cli.needs_sdk" in proc.stderr


def test_plugins_schema_is_json() -> None:
    proc = run(None, "plugins", "schema")
    assert json.loads(proc.stdout)["title"].startswith("Symphony plugin manifest")


def test_config_set_keeps_comments_and_get_reads_back(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('# my settings\n[logging]\n# keep me\nlevel = "info"\n')
    env = {"SYMPHONY_USER_CONFIG": str(user)}
    proc = run(None, "config", "set", "logging.level", "warning", env=env)
    assert proc.returncode == 0, proc.stderr
    text = user.read_text()
    assert "# my settings" in text and "# keep me" in text and 'level = "warning"' in text
    proc = run(None, "config", "get", "logging.level", "--json", env=env)
    assert json.loads(proc.stdout) == {"key": "logging.level", "value": "warning", "source": str(user)}
    proc = run(None, "config", "set", "textstats.top", "7", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "top = 7" in user.read_text()


def test_config_set_rejects_a_bad_value_and_leaves_the_file(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("# untouched\n")
    proc = run(None, "config", "set", "textstats.top", "many", env={"SYMPHONY_USER_CONFIG": str(user)})
    assert proc.returncode == 4
    assert "textstats.top" in proc.stderr
    assert user.read_text() == "# untouched\n"


def test_bad_config_file_gives_exit_4_naming_file_and_key(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[logging]\nlevel = 5\n")
    proc = run(None, "plugins", "list", env={"SYMPHONY_USER_CONFIG": str(user)})
    assert proc.returncode == 4
    assert str(user) in proc.stderr and "logging.level" in proc.stderr
    proc = run(None, "config", "show", env={"SYMPHONY_USER_CONFIG": str(user)})
    assert proc.returncode == 0  # show always works; the problem goes to stderr
    assert str(user) in proc.stderr and "logging.level" in proc.stderr
    user.write_text("[nonsense]\nx = 1\n")
    for args in (("config", "show"), ("plugins", "list")):
        proc = run(None, *args, env={"SYMPHONY_USER_CONFIG": str(user)})
        assert proc.returncode == 0, proc.stderr  # a section nobody claims is only a warning
        assert "nonsense" in proc.stderr


def test_bad_environment_variable_names_the_variable() -> None:
    proc = run(None, "plugins", "list", env={"SYMPHONY_FS__MAX_FILE_SIZE": "huge"})
    assert proc.returncode == 4
    assert "SYMPHONY_FS__MAX_FILE_SIZE" in proc.stderr
    proc = run(None, "config", "show", env={"SYMPHONY_FS__MAX_FILE_SIZE": "huge"})
    assert proc.returncode == 0
    assert "SYMPHONY_FS__MAX_FILE_SIZE" in proc.stderr


def test_config_show_sources(tmp_path: Path) -> None:
    proc = run(None, "config", "show", "--json", "--sources", env={"SYMPHONY_LOGGING__LEVEL": "error"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["config"]["logging"]["level"] == "error"
    assert data["sources"]["logging.level"] == "env:SYMPHONY_LOGGING__LEVEL"


def test_doctor_reports_problems(site: Path) -> None:
    proc = run(site, "doctor", "--json")
    assert proc.returncode == 3
    report = json.loads(proc.stdout)
    assert [p["plugin"] for p in report["problems"]] == ["p-broken"]
    assert report["index"]["status"] in ("warm", "cold")


def test_safe_mode_skips_plugins(site: Path) -> None:
    proc = run(site, "--no-plugins", "plugins", "list", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == []
