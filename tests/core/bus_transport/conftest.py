"""Fixtures for the transport tests: short socket directories, captured log events and a
BusServer in a child process."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest


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


SERVER_SCRIPT = Path(__file__).with_name("bus_server_proc.py")


class ServerProcess:
    """A BusServer running in a child process (see ``bus_server_proc.py``)."""

    def __init__(self, process: Any, url: str, pid: int) -> None:
        self.process = process
        self.url = url
        self.pid = pid

    async def kill(self) -> None:
        """SIGKILL the server and reap it."""
        if self.process.returncode is None:
            self.process.kill()
        with anyio.fail_after(10):
            await self.process.wait()


@asynccontextmanager
async def run_server_process(url: str, *args: str, log: Path | None = None) -> AsyncIterator[ServerProcess]:
    """Start ``bus_server_proc.py`` on ``url`` and wait until it serves; kill it on exit."""
    from anyio.streams.buffered import BufferedByteReceiveStream

    with open(log or os.devnull, "ab") as err:
        process = await anyio.open_process(
            [sys.executable, str(SERVER_SCRIPT), url, *args], stdout=subprocess.PIPE, stderr=err
        )
    server = None
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 4096)
        ready, bound, pid = line.decode().split()
        assert ready == "READY"
        server = ServerProcess(process, bound, int(pid))
        yield server
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            with anyio.move_on_after(10):
                await process.wait()
            await process.aclose()


@pytest.fixture
def server_process() -> Any:
    """``async with server_process(url, *args) as server:`` -- a BusServer in a child process."""
    return run_server_process
