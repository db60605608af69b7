"""The child side of the stdio transport: answer JSON-RPC on this process's stdin/stdout.

    # my_ext/server.py -- run by the parent as stdio:?cmd=python&arg=-m&arg=my_ext.server
    import anyio
    from symphony_transport_stdio import serve_stdio

    async def add(msg):
        return msg.payload["a"] + msg.payload["b"]

    anyio.run(serve_stdio, {"math.add": add})

:func:`serve_stdio` takes a :class:`~symphony.bus.Bus` (requests are routed by its
handlers, notifications published on it) or a mapping of method pattern -> handler (a bus is
made for them). It returns when stdin ends -- the parent closed the connection or died.

While it serves, file descriptor 1 is pointed at stderr: a stray ``print()`` in handler code
lands in the log instead of corrupting the JSON-RPC stream (the protocol keeps a private
duplicate of the original stdout).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from symphony.bus import Bus, Message
from symphony_bus_remote import BusServer
from symphony_transport_stdio.transport import StdioTransport

__all__ = ["serve_stdio"]


async def serve_stdio(
    target: Bus | Mapping[str, Callable[[Message], Any]] | None = None,
    *,
    read_fd: int | None = None,
    write_fd: int | None = None,
    protect_stdout: bool = True,
) -> None:
    """Answer JSON-RPC requests and notifications on stdin/stdout until stdin ends."""
    if isinstance(target, Bus):
        bus, own = target, False
    else:
        bus, own = Bus(name="stdio-child"), True
        for pattern, handler in (target or {}).items():
            bus.handle(pattern, handler)
    rfd = sys.stdin.fileno() if read_fd is None else read_fd
    wfd = sys.stdout.fileno() if write_fd is None else write_fd
    saved_stdout = None
    if protect_stdout and write_fd is None:
        sys.stdout.flush()
        proto_fd = os.dup(wfd)
        saved_stdout = os.dup(wfd)
        os.dup2(sys.stderr.fileno(), wfd)
        wfd = proto_fd
    try:
        server = BusServer(
            bus, "stdio:", transport=StdioTransport(), options={"read_fd": rfd, "write_fd": wfd}
        )
        if own:
            async with bus:
                await server.serve()
        else:
            await server.serve()
    finally:
        if saved_stdout is not None:
            sys.stdout.flush()
            os.dup2(saved_stdout, 1)
            os.close(saved_stdout)
            os.close(wfd)
