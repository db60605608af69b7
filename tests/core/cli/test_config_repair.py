"""Configuration never stops the tool (issue 9): through the real `symphony` command.

A plugin section's problem fails that plugin only; a section nobody claims is a warning;
`config set/unset/show`, `doctor` and `--help` work whatever the files hold.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from symphony_sdk.testing import write_plugin_distribution

SYMPHONY = str(Path(sys.executable).parent / "symphony")

GADGET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"level": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1}},
}

COMMAND_PLUGIN = '''
import click
from symphony.hookspecs import hookimpl

@click.command("{name}")
def command():
    """Say who answers."""
    click.echo("{answer}")

@hookimpl
def symphony_register_commands(registry):
    registry.add(command)
'''


def run(site: Path | None, user: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYMPHONY_")}
    full_env["SYMPHONY_USER_CONFIG"] = str(user)
    full_env["SYMPHONY_CACHE_DIR"] = str(user.parent / "cache")
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
    full_env.update(env)
    return subprocess.run(
        [SYMPHONY, *args], capture_output=True, text=True, env=full_env, check=False, timeout=60
    )


def add_plugin(site: Path, plugin_id: str, section: str, *, command: str | None = None) -> None:
    manifest: dict[str, object] = {"config_section": section, "config_schema": GADGET_SCHEMA}
    source = ""
    if command:
        manifest["commands"] = [{"name": command, "summary": "Say who answers."}]
        source = COMMAND_PLUGIN.format(name=command, answer=f"{plugin_id} answers")
    write_plugin_distribution(site, plugin_id, manifest=manifest, module_source=source)


def uninstall(site: Path, plugin_id: str) -> None:
    package = plugin_id.replace("-", "_")
    shutil.rmtree(site / package)
    for info in site.glob(f"{package}-*.dist-info"):
        shutil.rmtree(info)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    add_plugin(root, "p-gadget", "gadget")
    add_plugin(root, "p-other", "other", command="other-cmd")
    return root


@pytest.fixture
def user(tmp_path: Path) -> Path:
    return tmp_path / "user.toml"


def test_uninstalled_plugin_section_is_a_warning_and_can_be_removed(site: Path, user: Path) -> None:
    proc = run(site, user, "config", "set", "gadget.level", "3")
    assert proc.returncode == 0, proc.stderr
    uninstall(site, "p-gadget")

    proc = run(site, user, "plugins", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "[gadget]" in proc.stderr and "warning" in proc.stderr.lower()
    assert proc.stderr.count("[gadget]") == 1  # shown once
    assert run(site, user, "other-cmd").stdout.strip() == "p-other answers"

    proc = run(site, user, "doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["config"]["warnings"]
    assert [w["section"] for w in warnings] == ["gadget"]
    assert warnings[0]["code"] == "config.unclaimed_section"

    assert run(site, user, "config", "show").returncode == 0
    assert run(site, user, "--help").returncode == 0

    proc = run(site, user, "config", "unset", "gadget.level")
    assert proc.returncode == 0, proc.stderr
    assert "gadget" not in tomllib.loads(user.read_text())  # no empty table left behind
    proc = run(site, user, "doctor", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["config"]["warnings"] == []


@pytest.mark.parametrize(
    ("where", "rule"),
    [("file", "maximum=10"), ("env", "maximum=10"), ("env-text", "type=integer"), ("profile", "maximum=10")],
)
def test_bad_plugin_value_fails_that_plugin_only(
    site: Path, user: Path, tmp_path: Path, where: str, rule: str
) -> None:
    env: dict[str, str] = {}
    if where == "file":
        user.write_text("[gadget]\nlevel = 99\n")
        source = str(user)
    elif where == "env":
        env["SYMPHONY_GADGET__LEVEL"] = "99"
        source = "SYMPHONY_GADGET__LEVEL"
    elif where == "env-text":
        env["SYMPHONY_GADGET__LEVEL"] = "lots"
        source = "SYMPHONY_GADGET__LEVEL"
    else:
        conf = tmp_path / "conf"
        conf.mkdir()
        (conf / "test.toml").write_text("[gadget]\nlevel = 99\n")
        env.update(SYMPHONY_CONFIG_DIR=str(conf), SYMPHONY_ENV="test")
        source = str(conf / "test.toml")

    proc = run(site, user, "plugins", "list", "--json", **env)
    assert proc.returncode == 3, proc.stderr  # the command ran; one plugin is unusable
    states = {p["id"]: p for p in json.loads(proc.stdout)}
    gadget = states["p-gadget"]
    assert gadget["state"] == "misconfigured"
    assert source in gadget["reason"] and "gadget.level" in gadget["reason"] and rule in gadget["reason"]
    assert states["p-other"]["state"] == "discovered"
    assert run(site, user, "other-cmd", **env).stdout.strip() == "p-other answers"

    proc = run(site, user, "doctor", "--json", **env)
    assert proc.returncode == 3
    assert [p["plugin"] for p in json.loads(proc.stdout)["problems"]] == ["p-gadget"]
    assert run(site, user, "config", "show", **env).returncode == 0
    assert run(site, user, "--help", **env).returncode == 0

    if where == "file":  # the tool repairs it
        proc = run(site, user, "config", "set", "gadget.level", "4")
        assert proc.returncode == 0, proc.stderr
        assert tomllib.loads(user.read_text()) == {"gadget": {"level": 4}}
        proc = run(site, user, "plugins", "list", "--json")
        assert proc.returncode == 0, proc.stderr


def test_set_refuses_out_of_range_and_leaves_the_file(site: Path, user: Path) -> None:
    user.write_text("# mine\n")
    proc = run(site, user, "config", "set", "gadget.level", "11")
    assert proc.returncode == 4
    assert "gadget.level" in proc.stderr and "maximum=10" in proc.stderr
    assert user.read_text() == "# mine\n"


def test_broken_core_section_is_strict_but_repairable(site: Path, user: Path) -> None:
    user.write_text('# keep\n[logging]\nlevel = "loud"\nformat = "nope"\n[gadget]\nlevel = 99\n')
    proc = run(site, user, "plugins", "list")
    assert proc.returncode == 4 and "logging" in proc.stderr  # core stays strict
    for args in (("config", "show"), ("--help",), ("other-cmd", "--help"), ("config", "get", "gadget.level")):
        proc = run(site, user, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    proc = run(site, user, "doctor", "--json")
    assert proc.returncode == 4
    report = json.loads(proc.stdout)
    assert {p["key"] for p in report["config"]["problems"]} == {"logging.format", "logging.level"} or report[
        "config"
    ]["problems"][0]["key"].startswith("logging.")

    # each edit may leave other problems, never add one, and fixes its own key
    assert run(site, user, "config", "set", "logging.level", "debug").returncode == 0
    assert run(site, user, "config", "unset", "logging.format").returncode == 0
    assert run(site, user, "config", "set", "gadget.level", "2").returncode == 0
    assert tomllib.loads(user.read_text()) == {"logging": {"level": "debug"}, "gadget": {"level": 2}}
    assert user.read_text().startswith("# keep\n")
    proc = run(site, user, "doctor", "--json")
    assert proc.returncode == 0, proc.stdout


def test_broken_core_environment_variable_still_lets_the_user_repair(site: Path, user: Path) -> None:
    env = {"SYMPHONY_LOGGING__LEVEL": "loud"}
    assert run(site, user, "plugins", "list", **env).returncode == 4
    assert run(site, user, "config", "show", **env).returncode == 0
    assert run(site, user, "config", "set", "gadget.level", "2", **env).returncode == 0
    proc = run(site, user, "doctor", "--json", **env)
    assert proc.returncode == 4 and "SYMPHONY_LOGGING__LEVEL" in proc.stdout


def test_config_show_prints_toml(site: Path, user: Path) -> None:
    proc = run(site, user, "config", "show")
    assert proc.returncode == 0, proc.stderr
    assert "False" not in proc.stdout and "None" not in proc.stdout
    data = tomllib.loads(proc.stdout)
    assert data["kernel"]["strict_plugins"] is False
    assert data["gadget"] == {"level": 1}
    assert "file" not in data["logging"]  # null has no TOML form: shown as a comment
    assert "# file is not set" in proc.stdout
    proc = run(site, user, "config", "show", "--sources")
    assert tomllib.loads(proc.stdout)["logging"]["level"] == "info"


def test_config_set_negative_number_and_unset_prunes(tmp_path: Path, user: Path) -> None:
    write_plugin_distribution(
        tmp_path / "site",
        "p-signed",
        manifest={
            "config_section": "signed",
            "config_schema": {
                "type": "object",
                "properties": {"offset": {"type": "integer", "minimum": -100, "maximum": 100}},
            },
        },
    )
    site = tmp_path / "site"
    proc = run(site, user, "config", "set", "signed.offset", "-3")
    assert proc.returncode == 0, proc.stderr
    assert "signed.offset = -3" in proc.stdout
    assert tomllib.loads(user.read_text()) == {"signed": {"offset": -3}}
    proc = run(site, user, "config", "unset", "signed.offset")
    assert proc.returncode == 0
    assert tomllib.loads(user.read_text()) == {}
    assert "[signed]" not in user.read_text()


def test_the_kernel_s_logging_follows_the_configuration(site: Path, user: Path) -> None:
    user.write_text("[gadget]\nlevel = 99\n[gone]\nx = 1\n")
    proc = run(site, user, "plugins", "list", "--json")
    assert "plugin unavailable" in proc.stderr and "[gone]" in proc.stderr
    proc = run(site, user, "plugins", "list", "--json", SYMPHONY_LOGGING__LEVEL="error")
    assert proc.returncode == 3
    assert "plugin unavailable" not in proc.stderr and "[gone]" not in proc.stderr
