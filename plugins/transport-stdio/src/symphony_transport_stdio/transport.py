"""The ``stdio`` transport: JSON-RPC 2.0 lines over a child process's stdin/stdout.

URL
---
``stdio:?cmd=<program>&arg=<arg>&arg=<arg>...[&cwd=<dir>][&env=NAME=VALUE...]``

* ``cmd`` (required to connect): the program; found on ``PATH`` like any command.
* ``arg`` (repeatable, in order): its arguments. Values are percent-decoded, so
  ``arg=hello%20world`` is one argument with a space.
* ``cwd``: working directory of the child. ``env`` (repeatable): variables added to the
  child's environment (the rest is inherited).

Example: ``stdio:?cmd=python&arg=-m&arg=my_ext.server`` runs ``python -m my_ext.server``.
The ``command`` option (a list of strings) may replace ``cmd``/``arg`` when building a URL is
awkward; options ``cwd``/``env`` (a mapping) likewise.

``stdio:`` with no ``cmd`` *serves* on the current process's own stdin/stdout: this is the
child side (see :func:`symphony_transport_stdio.serve_stdio`).

Lifecycle
---------
Connecting starts the child. Closing the connection closes its stdin (a well-behaved child
exits on end of input), waits ``shutdown_timeout`` seconds (default 2), then terminates and
finally kills it. The child's death or a broken pipe ends the connection with a
:class:`~symphony.commons.errors.TransportError` (``transport.child_exited`` naming the exit
code, or ``transport.broken``): requests waiting on it fail at once, nothing hangs.

Other options: ``stderr`` = ``"inherit"`` (default: the child's stderr is this process's),
``"devnull"``, or a file path; ``max_line`` = longest accepted line (default 16 MiB).

Lines that are not JSON-RPC are answered (on the serving side) with the standard error
responses and logged; on the connecting side they are logged and skipped, so a child that
prints stray text to stdout does not break the link.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel

from symphony.bus import Codec, Connection, ConnectionClosed, Message, PeerInfo
from symphony.bus.links import ConnectionHandler, run_handler
from symphony.commons.errors import ConfigError, TransportError
from symphony.commons.log import get_logger
from symphony_transport_stdio.jsonrpc import JsonRpcCodec, JsonRpcError, LineSplitter, error_response

__all__ = ["FdByteStream", "JsonRpcConnection", "StdioTransport", "parse_stdio_url"]

_log = get_logger("symphony_transport_stdio")

DEFAULT_MAX_LINE: Final = 16 * 1024 * 1024
DEFAULT_SHUTDOWN_TIMEOUT: Final = 2.0


def parse_stdio_url(url: str) -> dict[str, Any]:
    """``{"command": [...], "cwd": str | None, "env": {...}}`` from a ``stdio:`` URL.

    >>> parse_stdio_url("stdio:?cmd=python&arg=-m&arg=my.mod")["command"]
    ['python', '-m', 'my.mod']
    >>> parse_stdio_url("stdio:")["command"]
    []
    """
    if not isinstance(url, str) or not url.lower().startswith("stdio:"):
        raise ConfigError(
            f"not a stdio transport URL: {url!r}", code="transport.bad_url", context={"url": repr(url)}
        )
    rest = url[len("stdio:") :]
    if rest.startswith("//"):
        rest = rest[2:]
    path, _, query = rest.partition("?")
    if path.strip("/"):
        raise ConfigError(
            f"stdio URL {url!r}: put the command in the query, e.g. stdio:?cmd=python&arg=-m&arg=mod",
            code="transport.bad_url",
            context={"url": url},
        )
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigError(
            f"bad stdio URL query in {url!r}: {exc}", code="transport.bad_url", context={"url": url}
        ) from None
    command: list[str] = []
    cwd: str | None = None
    env: dict[str, str] = {}
    for key, value in pairs:
        if key == "cmd":
            if command:
                raise ConfigError(
                    "stdio URL: 'cmd' given twice", code="transport.bad_url", context={"url": url}
                )
            command.append(value)
        elif key == "arg":
            if not command:
                raise ConfigError(
                    "stdio URL: 'arg' before 'cmd'", code="transport.bad_url", context={"url": url}
                )
            command.append(value)
        elif key == "cwd":
            cwd = value
        elif key == "env":
            name, sep, val = value.partition("=")
            if not sep or not name:
                raise ConfigError(
                    f"stdio URL: env entries are NAME=VALUE, not {value!r}",
                    code="transport.bad_url",
                    context={"url": url},
                )
            env[name] = val
        else:
            raise ConfigError(
                f"stdio URL: unknown parameter {key!r} (known: cmd, arg, cwd, env)",
                code="transport.bad_url",
                context={"url": url, "parameter": key},
            )
    if command and not command[0]:
        raise ConfigError("stdio URL: 'cmd' is empty", code="transport.bad_url", context={"url": url})
    return {"command": command, "cwd": cwd, "env": env}


class FdByteStream(anyio.abc.ByteStream):
    """A byte stream over two raw file descriptors (e.g. this process's stdin and stdout),
    made non-blocking and driven by :func:`anyio.wait_readable` / :func:`anyio.wait_writable`."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._rfd = read_fd
        self._wfd = write_fd
        self._saved = {fd: os.get_blocking(fd) for fd in {read_fd, write_fd}}
        for fd in self._saved:
            os.set_blocking(fd, False)
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                data = os.read(self._rfd, max_bytes)
            except BlockingIOError:
                await anyio.wait_readable(self._rfd)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                raise anyio.BrokenResourceError from exc
            if not data:
                raise anyio.EndOfStream
            return data

    async def send(self, item: bytes) -> None:
        view = memoryview(item)
        while view:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                written = os.write(self._wfd, view)
            except BlockingIOError:
                with anyio.CancelScope(shield=view.nbytes != len(item)):
                    await anyio.wait_writable(self._wfd)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                raise anyio.BrokenResourceError from exc
            view = view[written:]

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            for fd, blocking in self._saved.items():
                try:
                    anyio.notify_closing(fd)
                except Exception:
                    pass
                try:
                    os.set_blocking(fd, blocking)
                except OSError:
                    pass
        await anyio.lowlevel.checkpoint()


class JsonRpcConnection(Connection):
    """A :class:`~symphony.bus.Connection` speaking JSON-RPC 2.0 lines.

    ``role="server"`` answers malformed lines with JSON-RPC error responses (as a JSON-RPC
    server must); ``role="client"`` logs and skips them. ``process`` is the child to reap on
    close (connecting side).
    """

    native = False
    _codec: JsonRpcCodec

    def __init__(
        self,
        receive_stream: anyio.abc.ByteReceiveStream,
        send_stream: anyio.abc.ByteSendStream,
        *,
        peer: PeerInfo,
        role: str = "client",
        process: anyio.abc.Process | None = None,
        max_line: int = DEFAULT_MAX_LINE,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        super().__init__(codec=JsonRpcCodec(), peer=peer)
        self._in = receive_stream
        self._out = send_stream
        self._role = role
        self._process = process
        self._splitter = LineSplitter(max_line=max_line)
        self._ready: deque[Message] = deque()
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._shutdown_timeout = shutdown_timeout

    def set_codec(self, codec: Codec) -> None:
        """Only the JSON-RPC codec is possible here (this connection does not negotiate)."""
        if getattr(codec, "name", None) != "jsonrpc":
            raise ConfigError(
                "a stdio connection always speaks JSON-RPC",
                code="transport.bad_option",
                context={"codec": repr(codec)},
            )

    @property
    def process(self) -> anyio.abc.Process | None:
        """The child process (connecting side)."""
        return self._process

    async def _write(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionClosed("the stdio connection is closed", code="transport.closed_locally")
        try:
            async with self._send_lock:
                await self._out.send(data)
        except anyio.ClosedResourceError:
            raise ConnectionClosed(
                "the stdio connection is closed", code="transport.closed_locally"
            ) from None
        except (anyio.BrokenResourceError, OSError) as exc:
            raise await self._ended("sending", exc) from exc

    async def send(self, msg: Message) -> None:
        """Write one JSON-RPC line."""
        await self._write(self._codec.encode(msg) + b"\n")

    async def send_many(self, msgs: Iterable[Message]) -> None:
        """Write many JSON-RPC lines with one write."""
        encode = self._codec.encode
        data = b"".join(encode(m) + b"\n" for m in msgs)
        if data:
            await self._write(data)

    async def _ended(self, action: str, exc: BaseException | None = None) -> TransportError:
        """The error for a stream that ended: the child's exit code when there is a child."""
        process = self._process
        if process is not None:
            with anyio.move_on_after(0.5):
                await process.wait()
            code = process.returncode
            if code is not None:
                return ConnectionClosed(
                    f"the child process exited with code {code} ({self.peer.address})",
                    code="transport.child_exited",
                    context={"returncode": code, "command": self.peer.address, "action": action},
                )
        if exc is None:
            return ConnectionClosed("the peer closed the stdio stream", code="transport.closed")
        return TransportError(
            f"the stdio stream broke while {action}: {type(exc).__name__}",
            code="transport.broken",
            context={"action": action, "command": self.peer.address},
        )

    async def receive_many(self) -> list[Message]:
        """Every message available after at most one read (at least one)."""
        ready = self._ready
        while not ready:
            try:
                chunk = await self._in.receive(65536)
            except anyio.EndOfStream:
                problem = self._splitter.check_eof()
                if problem is not None:
                    _log.warning("transport.stdio.truncated_line", peer=self.peer.address)
                raise await self._ended("receiving") from None
            except anyio.ClosedResourceError:
                raise ConnectionClosed(
                    "the stdio connection is closed", code="transport.closed_locally"
                ) from None
            except (anyio.BrokenResourceError, OSError) as exc:
                raise await self._ended("receiving", exc) from exc
            for line in self._splitter.feed(chunk):
                items = [line] if isinstance(line, JsonRpcError) else self._codec.decode_line(line)
                for item in items:
                    if isinstance(item, JsonRpcError):
                        await self._bad_input(item)
                    else:
                        ready.append(item)
        out = list(ready)
        ready.clear()
        return out

    async def receive(self) -> Message:
        """The next message."""
        if not self._ready:
            self._ready.extend(await self.receive_many())
        return self._ready.popleft()

    async def _bad_input(self, err: JsonRpcError) -> None:
        _log.warning(
            "transport.stdio.bad_input",
            peer=self.peer.address,
            code=err.code,
            rpc_code=err.rpc_code,
            error=err.message[:200],
        )
        if self._role == "server":
            try:
                await self._write(error_response(err) + b"\n")
            except TransportError:
                pass

    async def aclose(self) -> None:
        """Close the streams; a child gets end of input, then is terminated, then killed."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            for stream in (self._out, self._in):
                try:
                    await stream.aclose()
                except (anyio.BrokenResourceError, OSError):
                    pass
            process = self._process
            if process is not None and process.returncode is None:
                with anyio.move_on_after(self._shutdown_timeout):
                    await process.wait()
                if process.returncode is None:
                    process.terminate()
                    with anyio.move_on_after(1.0):
                        await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            if process is not None:
                await process.aclose()


def _stderr_target(value: Any) -> Any:
    if value in (None, "inherit"):
        return None
    if value == "devnull":
        return subprocess.DEVNULL
    try:
        return open(Path(value), "ab")
    except OSError as exc:
        raise ConfigError(
            f"cannot open the stderr file {value}: {exc.strerror}",
            code="transport.bad_option",
            context={"option": "stderr", "value": str(value)},
        ) from exc


class StdioTransport:
    """``stdio:?cmd=...`` -- JSON-RPC 2.0 over a child's stdin/stdout (see the module docs)."""

    scheme: Final = "stdio"

    async def connect(self, url: str, *, options: Mapping[str, Any] | None = None) -> Connection:
        """Start the child process and return a connection to it."""
        spec = parse_stdio_url(url)
        opts = dict(options or {})
        command = list(opts.get("command") or spec["command"])
        if not command or not all(isinstance(part, str) for part in command):
            raise ConfigError(
                f"stdio URL {url!r} names no command to run",
                code="transport.stdio.no_command",
                context={"url": url},
                hint="write stdio:?cmd=python&arg=-m&arg=your.module",
            )
        env = dict(os.environ)
        env.update(spec["env"])
        env.update({str(k): str(v) for k, v in dict(opts.get("env") or {}).items()})
        cwd = opts.get("cwd") or spec["cwd"]
        stderr = _stderr_target(opts.get("stderr"))
        try:
            process = await anyio.open_process(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env
            )
        except OSError as exc:
            raise TransportError(
                f"cannot start {command[0]!r}: {exc.strerror or exc}",
                code="transport.connect_failed",
                context={"command": command, "errno": exc.errno},
                hint="check the cmd= part of the stdio URL (the program must be on PATH)",
            ) from exc
        finally:
            if stderr not in (None, subprocess.DEVNULL):
                stderr.close()
        assert process.stdin is not None and process.stdout is not None
        peer = PeerInfo("stdio", " ".join(command), pid=process.pid, extra={"command": command})
        return JsonRpcConnection(
            process.stdout,
            process.stdin,
            peer=peer,
            role="client",
            process=process,
            max_line=int(opts.get("max_line", DEFAULT_MAX_LINE)),
            shutdown_timeout=float(opts.get("shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT)),
        )

    async def serve(
        self,
        url: str,
        handler: ConnectionHandler,
        *,
        options: Mapping[str, Any] | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve JSON-RPC on this process's stdin/stdout (``stdio:`` with no command) until
        stdin ends. Options ``read_fd``/``write_fd`` pick other descriptors."""
        spec = parse_stdio_url(url)
        if spec["command"]:
            raise ConfigError(
                "serving on stdio uses this process's own stdin/stdout: write plain 'stdio:'",
                code="transport.bad_url",
                context={"url": url},
            )
        opts = dict(options or {})
        read_fd = int(opts.get("read_fd", sys.stdin.fileno() if sys.stdin else 0))
        write_fd = int(opts.get("write_fd", sys.stdout.fileno() if sys.stdout else 1))
        stream = FdByteStream(read_fd, write_fd)
        conn = JsonRpcConnection(
            stream,
            stream,
            peer=PeerInfo("stdio", "parent", pid=os.getppid()),
            role="server",
            max_line=int(opts.get("max_line", DEFAULT_MAX_LINE)),
        )
        task_status.started("stdio:")
        await run_handler(conn, handler, "stdio:")

    def __repr__(self) -> str:
        return "StdioTransport()"
