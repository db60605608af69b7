"""The ``unix`` transport: length-prefixed frames over a Unix domain stream socket.

URL forms: ``unix:///absolute/path.sock`` and ``unix:relative/path.sock`` (percent-escapes
allowed). Linux abstract-namespace sockets are not supported: they have no file permissions.

Security model
--------------
* The socket file is created with mode ``0600`` (option ``mode``) *at bind time*: the bind
  runs under a ``0177`` umask, so there is no moment at which the file is reachable by others.
* Every accepted peer's credentials are read with ``SO_PEERCRED`` (Linux); a uid outside
  ``allowed_uids`` (default: only the server's own uid) is refused with a
  ``PermissionDeniedError(code="transport.peer_refused")`` frame and the refusal is logged.
  On platforms without ``SO_PEERCRED`` the file mode is the only guard.
* A stale socket file (nothing accepts on it) is removed before binding; a live one is a
  ``ConflictError(code="transport.address_in_use")``; a non-socket file at the path is never
  touched. On shutdown the file is removed only if it is still the one this server created.

Options (besides the common ``codec``, ``max_frame_size``, ``connect_timeout``):

``mode``          (serve) permission bits of the socket file, default ``0o600``
``allowed_uids``  (serve) collection of uids allowed to connect, default ``{os.getuid()}``;
                  it is consulted on every accept, so a caller may update it while serving
``backlog``       (serve) listen backlog, default ``socket.SOMAXCONN``
``server_uids``   (connect) collection of uids the server must run as (default: not checked)
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import stat
import sys
import urllib.parse
from collections.abc import Collection, Mapping
from typing import Any, Final

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from symphony.bus import Connection, PeerInfo
from symphony.bus.links import ConnectionHandler
from symphony.commons.errors import (
    ConfigError,
    ConflictError,
    OperationTimeoutError,
    PermissionDeniedError,
    TransportError,
)
from symphony.commons.log import get_logger
from symphony_bus_remote import (
    CommonOptions,
    StreamConnection,
    common_options,
    open_socket_stream,
    peer_credentials,
    send_refusal,
    serve_sockets,
)

__all__ = ["UnixTransport", "bind_unix_listener", "parse_unix_url", "peer_credentials"]

_log = get_logger("symphony_transport_unix")

MAX_PATH_BYTES: Final = 107 if sys.platform.startswith("linux") else 103
"""Longest socket path the kernel accepts (``sun_path`` minus the terminating NUL)."""



def parse_unix_url(url: str) -> str:
    """The filesystem path of a ``unix:`` URL.

    >>> parse_unix_url("unix:///run/symphony/bus.sock")
    '/run/symphony/bus.sock'
    >>> parse_unix_url("unix:bus.sock")
    'bus.sock'
    """
    if not isinstance(url, str) or not url.lower().startswith("unix:"):
        raise ConfigError(
            f"not a unix transport URL: {url!r}",
            code="transport.bad_url",
            context={"url": repr(url)},
            hint="write unix:///absolute/path.sock",
        )
    rest = url[len("unix:") :]
    if rest.startswith("//"):
        rest = rest[2:]
        if not rest.startswith("/"):
            raise ConfigError(
                f"unix URL {url!r} names a host; write unix:///absolute/path or unix:relative/path",
                code="transport.bad_url",
                context={"url": url},
            )
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    path = urllib.parse.unquote(rest)
    if not path or "\0" in path:
        raise ConfigError(
            f"unix URL {url!r} has no usable socket path",
            code="transport.bad_url",
            context={"url": url},
            hint="write unix:///absolute/path.sock",
        )
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ConfigError(
            f"unix socket path is {len(os.fsencode(path))} bytes, over the limit of {MAX_PATH_BYTES}",
            code="transport.unix.path_too_long",
            context={"path": path, "max": MAX_PATH_BYTES},
            hint="use a shorter path (e.g. under $XDG_RUNTIME_DIR or /tmp)",
        )
    return path


def _connect_error(exc: OSError, path: str) -> Exception:
    context = {"path": path, "errno": exc.errno, "reason": exc.strerror or str(exc)}
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDeniedError(
            f"not allowed to connect to {path}: {exc.strerror}",
            code="transport.permission_denied",
            context=context,
            hint="the socket belongs to another user (its mode is 0600)",
        )
    return TransportError(
        f"cannot connect to unix:{path}: {exc.strerror or exc}",
        code="transport.connect_failed",
        context=context,
        hint="is the server running? (`symphony serve` prints its socket path)",
    )


async def _connect(sock: socket.socket, path: str) -> None:
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            return
        except (BlockingIOError, InterruptedError):
            # AF_UNIX: EAGAIN means the listen backlog is full; connect must be retried.
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)


def _is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (BlockingIOError, InterruptedError):
        return True  # backlog full: somebody is listening
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_unix_listener(path: str, *, mode: int = 0o600, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """A non-blocking listening socket bound at ``path`` with permission bits ``mode``.

    The bind happens under umask ``0o177`` so the file never exists with wider permissions;
    a stale socket file is removed first, a live one is a ConflictError.
    """
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise TransportError(
                f"cannot create the socket directory {parent}: {exc.strerror}",
                code="transport.unix.bind_failed",
                context={"path": path, "directory": parent},
            ) from exc
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ConflictError(
                f"{path} exists and is not a socket; refusing to replace it",
                code="transport.unix.not_a_socket",
                context={"path": path},
                hint="remove the file or choose another socket path",
            )
        if _is_live(path):
            raise ConflictError(
                f"another server is already listening on {path}",
                code="transport.address_in_use",
                context={"path": path},
                hint="stop the other server or choose another socket path",
            )
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PermissionDeniedError(
                f"cannot remove the stale socket {path}: {exc.strerror}",
                code="transport.unix.stale_socket",
                context={"path": path},
            ) from exc
        _log.info("transport.unix.stale_socket_removed", path=path)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConflictError(
                f"{path} was taken by another server while binding",
                code="transport.address_in_use",
                context={"path": path},
            ) from exc
        raise TransportError(
            f"cannot listen on {path}: {exc.strerror or exc}",
            code="transport.unix.bind_failed",
            context={"path": path, "errno": exc.errno},
        ) from exc
    return sock


class UnixTransport:
    """``unix:///path/to.sock`` (see the module documentation for options and security)."""

    scheme: Final = "unix"

    async def connect(self, url: str, *, options: Mapping[str, Any] | None = None) -> Connection:
        """Connect to the server listening at the URL's path."""
        path = parse_unix_url(url)
        common = common_options(options)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            with anyio.fail_after(common.connect_timeout):
                await _connect(sock, path)
        except TimeoutError:
            sock.close()
            raise OperationTimeoutError(
                f"connecting to unix:{path} took longer than {common.connect_timeout} s",
                code="transport.connect_timeout",
                context={"path": path, "timeout": common.connect_timeout},
            ) from None
        except OSError as exc:
            sock.close()
            raise _connect_error(exc, path) from exc
        except BaseException:
            sock.close()
            raise
        pid, uid, gid = peer_credentials(sock)
        server_uids: Collection[int] | None = (options or {}).get("server_uids")
        if server_uids is not None and uid is not None and uid not in server_uids:
            sock.close()
            raise PermissionDeniedError(
                f"the server on {path} runs as uid {uid}, not one of {sorted(server_uids)}",
                code="transport.server_refused",
                context={"path": path, "uid": uid, "expected": sorted(server_uids)},
            )
        return StreamConnection(
            await open_socket_stream(sock, busy_poll=common.busy_poll),
            codec=common.codec,
            peer=PeerInfo("unix", path, pid=pid, uid=uid, gid=gid),
            max_frame_size=common.max_frame_size,
        )

    async def serve(
        self,
        url: str,
        handler: ConnectionHandler,
        *,
        options: Mapping[str, Any] | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on the URL's path until cancelled; run ``handler`` per accepted peer."""
        path = parse_unix_url(url)
        opts = dict(options or {})
        common = common_options(opts)
        mode = opts.get("mode", 0o600)
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise ConfigError(
                f"unix socket mode must be permission bits such as 0o600, not {mode!r}",
                code="transport.bad_option",
                context={"option": "mode", "value": repr(mode)},
            )
        allowed: Collection[int] | None = opts.get("allowed_uids")
        if allowed is None:
            allowed = {os.getuid()}
        backlog = int(opts.get("backlog", socket.SOMAXCONN))
        listener = bind_unix_listener(path, mode=mode, backlog=backlog)
        inode = os.stat(path).st_ino
        _log.info("transport.unix.listening", path=path, mode=oct(mode))
        try:
            task_status.started(f"unix://{path}")
            await serve_sockets(
                [listener],
                functools.partial(self._accept, common=common, allowed=allowed, path=path),
                handler,
                name=f"unix:{path}",
                busy_poll=common.busy_poll,
            )
        finally:
            try:
                anyio.notify_closing(listener)
            except Exception:
                pass
            listener.close()
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except OSError:
                pass
            _log.info("transport.unix.closed", path=path)

    async def _accept(
        self, stream: anyio.abc.ByteStream, *, common: CommonOptions, allowed: Collection[int], path: str
    ) -> Connection | None:
        """Check an accepted peer's uid; refuse it (``None``) or wrap it in a connection."""
        pid, uid, gid = peer_credentials(stream.extra(SocketAttribute.raw_socket))
        if uid is not None and uid not in allowed:
            _log.warning("transport.unix.peer_refused", path=path, pid=pid, uid=uid, allowed=sorted(allowed))
            await send_refusal(
                stream,
                PermissionDeniedError(
                    f"uid {uid} may not connect to this socket",
                    code="transport.peer_refused",
                    context={"path": path, "uid": uid},
                ),
            )
            return None
        _log.debug("transport.unix.accepted", path=path, pid=pid, uid=uid)
        return StreamConnection(
            stream,
            codec=common.codec,
            peer=PeerInfo("unix", path, pid=pid, uid=uid, gid=gid),
            max_frame_size=common.max_frame_size,
        )

    def __repr__(self) -> str:
        return "UnixTransport()"
