"""Suite-wide fixtures: anyio backends (asyncio and trio), an isolated environment, short socket
directories and captured log events."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per anyio backend."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _isolated_symphony_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from the user's real config and cache directories."""
    home = tmp_path_factory.mktemp("symphony-home")
    monkeypatch.setenv("SYMPHONY_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("SYMPHONY_USER_CONFIG", str(home / "user.toml"))
    monkeypatch.setenv("SYMPHONY_CACHE_DIR", str(home / "cache"))
    for name in ("SYMPHONY_ENV", "SYMPHONY_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A private, short directory for Unix sockets (pytest's tmp paths can exceed 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sym-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class LogEvents(logging.Handler):
    """Collects the structlog event dicts logged under the ``symphony`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.events.append(dict(record.msg))

    def named(self, event: str) -> list[dict[str, Any]]:
        """The captured events called ``event``."""
        return [e for e in self.events if e.get("event") == event]


@pytest.fixture
def log_events() -> Iterator[LogEvents]:
    """Every log event emitted while the test runs."""
    from symphony.commons.log import get_logger

    get_logger("symphony.tests").debug("log capture starting")  # make sure logging is configured
    handler = LogEvents()
    logger = logging.getLogger("symphony")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


class PluginWheel:
    """What a built plugin wheel holds: its file names and its ``entry_points.txt``."""

    def __init__(self, path: Path) -> None:
        import zipfile

        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.names = archive.namelist()
            entry = next(n for n in self.names if n.endswith("entry_points.txt"))
            self.entry_points = archive.read(entry).decode()


@pytest.fixture
def build_wheel(tmp_path: Path) -> Any:
    """``build_wheel(project_dir)``: build the project's wheel alone (no deps) and open it."""
    import subprocess
    import sys

    def build(project: Path) -> PluginWheel:
        out = tmp_path / "wheels"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(project)],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        (wheel,) = out.glob("*.whl")
        return PluginWheel(wheel)

    return build
