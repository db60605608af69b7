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
