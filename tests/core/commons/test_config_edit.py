"""Editing the user file from several processes (issue 10.5): no lost update, symlinks kept,
no temporaries left by a killed edit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from symphony.commons.config import set_user_value, unset_user_value

SCHEMAS = {"race": {"type": "object", "additionalProperties": {"type": "integer"}}}

WRITER = """
import sys, time
from pathlib import Path
from symphony.commons.config import set_user_value
user, name, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
schemas = {"race": {"type": "object", "additionalProperties": {"type": "integer"}}}
while not go.exists():
    time.sleep(0.001)
for i in range(rounds):
    set_user_value(f"race.{name}_{i}", i, user_file=user, schemas=schemas)
"""


def test_concurrent_sets_of_different_keys_lose_no_update(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("# shared\n")
    go = tmp_path / "go"
    rounds = 50
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(user), name, str(rounds), str(go)])
        for name in ("a", "b")
    ]
    go.touch()  # both start together
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    race = tomllib.loads(user.read_text())["race"]
    expected = {f"{name}_{i}": i for name in ("a", "b") for i in range(rounds)}
    assert race == expected  # every one of the 100 edits landed
    assert user.read_text().startswith("# shared\n")


def test_set_through_a_symlink_updates_the_target(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "symphony.toml"
    real.parent.mkdir()
    real.write_text("# real file\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    assert set_user_value("logging.level", "debug", user_file=link) == link
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert tomllib.loads(real.read_text()) == {"logging": {"level": "debug"}}
    unset_user_value("logging.level", user_file=link)
    assert link.is_symlink()
    assert real.read_text().startswith("# real file\n") and tomllib.loads(real.read_text()) == {}


KILLED = """
import os, sys, time
from symphony.commons.config import set_user_value
os.replace = lambda *args, **kwargs: time.sleep(600)   # stall between writing the temporary and renaming it
set_user_value("logging.level", "error", user_file=sys.argv[1])
"""


def test_a_killed_set_leaves_no_temporary_behind_on_the_next_run(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[logging]\nlevel = "info"\n')
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(user)])
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".user.toml.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert list(tmp_path.glob(".user.toml.*.tmp"))  # what the kill left
    set_user_value("logging.format", "json", user_file=user)  # the lock died with the process
    assert not list(tmp_path.glob("*.tmp"))
    assert tomllib.loads(user.read_text()) == {"logging": {"level": "info", "format": "json"}}
