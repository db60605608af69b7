"""symphony.commons.debug: duck() output and its switches (the leftover-call scanner: test_no_duck_in_shipped_code)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.commons import debug
from symphony.commons.config import load_config
from symphony.commons.debug import (
    PREFIX,
    configure_duck_from_config,
    duck_enabled,
    enable_duck,
)

# The probe is called through the module attribute on purpose: the shipped-code scanner only
# looks at src/ folders, and tests need real calls.
probe = debug.duck


@pytest.fixture(autouse=True)
def _restore_duck(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SYMPHONY_DUCK", raising=False)
    saved = (debug._state.explicit, debug._state.env, debug._state.config)
    enable_duck(None)
    debug._state.config = None
    debug._state.update()
    yield
    debug._state.explicit, debug._state.env, debug._state.config = saved
    debug._state.update()


def test_disabled_by_default_returns_value_silently(capsys: pytest.CaptureFixture[str]) -> None:
    assert not duck_enabled()
    marker = object()
    assert probe(marker) is marker
    assert probe() is None
    assert capsys.readouterr() == ("", "")


def test_enabled_writes_one_line_with_caller_location(capsys: pytest.CaptureFixture[str]) -> None:
    enable_duck(True)
    line_no = sys._getframe().f_lineno + 1
    result = probe({"a": 1}, label="payload", size=3, name="x")
    assert result == {"a": 1}
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    expected_file = os.path.relpath(__file__)
    assert err == f"{PREFIX} {expected_file}:{line_no} payload={{'a': 1}} size=3 name='x'\n"


def test_output_variants(capsys: pytest.CaptureFixture[str]) -> None:
    enable_duck(True)
    probe(42)
    probe(label="checkpoint")
    probe()
    probe(None, step=2)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 3)[3] if line.count(" ") >= 3 else "" for line in lines] == [
        "42",
        "checkpoint",
        "",
        "None step=2",
    ]
    assert all(line.startswith("[DUCK DEBUGGING] ") for line in lines)


def test_broken_repr_is_survived(capsys: pytest.CaptureFixture[str]) -> None:
    class Bad:
        def __repr__(self) -> str:
            raise RuntimeError("nope")

    enable_duck(True)
    bad = Bad()
    assert probe(bad) is bad
    assert "repr failed" in capsys.readouterr().err


def test_switch_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dev = load_config(environ={}, env="development", user_file=tmp_path / "u.toml", config_dir=None)
    prod = load_config(environ={}, env="production", user_file=tmp_path / "u.toml", config_dir=None)
    configure_duck_from_config(dev)
    assert duck_enabled()
    configure_duck_from_config(prod)
    assert not duck_enabled()
    monkeypatch.setenv("SYMPHONY_DUCK", "1")
    enable_duck(None)  # re-read the environment
    assert duck_enabled()  # env beats config
    enable_duck(False)
    assert not duck_enabled()  # explicit beats env
    monkeypatch.setenv("SYMPHONY_DUCK", "off")
    enable_duck(None)
    configure_duck_from_config(dev)
    assert not duck_enabled()


def test_env_var_read_at_import() -> None:
    code = "from symphony.commons.debug import duck; duck(7, label='n')"
    env = {**os.environ, "SYMPHONY_DUCK": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stderr == "[DUCK DEBUGGING] <string>:1 n=7\n"
    env["SYMPHONY_DUCK"] = "0"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert proc.stderr == ""
