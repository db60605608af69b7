"""Fixtures for the transport tests: short socket directories, captured log events and a
BusServer in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

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
