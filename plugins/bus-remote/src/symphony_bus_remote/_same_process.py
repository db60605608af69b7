"""Is the other end of a connected socket this very process?

Busy polling (:mod:`symphony_bus_remote._busypoll`) only pays when the peer runs on another CPU: a
peer in this process shares the event loop, and polling for its answer only delays the task
that would write it. :func:`~symphony_bus_remote.open_socket_stream`
asks :func:`peer_is_this_process` before it turns polling on.

- Unix sockets: ``SO_PEERCRED`` gives the peer's pid (Linux).
- TCP (IPv4/IPv6) has no such option, so the process remembers its own local ends: every
  listening socket and every connecting socket registers its address with
  :func:`note_local_end` (the TCP transport does this). A peer whose address is one of them,
  or whose port is one this process listens on from a wildcard address while the peer's host
  is this connection's own host, is this process. Entries go with their socket objects (weak
  references), so nothing accumulates.

A wrong "no" only costs the polling window; a wrong "yes" (a stale entry whose port another
process reuses) only turns polling off for that connection. Neither changes what is delivered.
"""

from __future__ import annotations

import os
import socket
import struct
import weakref
from typing import Any, Final

__all__ = ["note_local_end", "peer_credentials", "peer_is_this_process"]

_CRED: Final = struct.Struct("3i")
_AF_UNIX: Final = getattr(socket, "AF_UNIX", None)
_IP_FAMILIES: Final = frozenset({socket.AF_INET, socket.AF_INET6})
_WILDCARDS: Final = ("0.0.0.0", "::")

# (host, port) -> weak reference to the socket bound there, in this process
_local_ends: dict[tuple[str, int], weakref.ref[socket.socket]] = {}


def peer_credentials(sock: Any) -> tuple[int | None, int | None, int | None]:
    """``(pid, uid, gid)`` of the process at the other end of a connected Unix socket (a
    :class:`socket.socket`, or the socket object an event loop's transport exposes).

    Uses ``SO_PEERCRED`` on Linux; ``(None, None, None)`` where it is unavailable (other
    platforms, other socket families).
    """
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None, None, None
    try:
        pid, uid, gid = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, opt, _CRED.size))
    except (OSError, struct.error):
        return None, None, None
    return pid, uid, gid


def _ip_address(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return None


def note_local_end(sock: socket.socket) -> None:
    """Remember ``sock``'s local address as one of this process's (IP sockets; others are
    ignored). Call it on a listening socket once bound, and on a connecting socket once its
    ``connect`` has started (the local port is assigned by then)."""
    if sock.family not in _IP_FAMILIES:
        return
    try:
        key = _ip_address(sock.getsockname())
    except OSError:
        return
    if key is None:
        return

    def forget(ref: weakref.ref[socket.socket], key: tuple[str, int] = key) -> None:
        if _local_ends.get(key) is ref:
            del _local_ends[key]

    _local_ends[key] = weakref.ref(sock, forget)


def _is_local(key: tuple[str, int]) -> bool:
    ref = _local_ends.get(key)
    return ref is not None and ref() is not None


def peer_is_this_process(sock: socket.socket) -> bool:
    """Whether the peer of the connected socket ``sock`` is this process (see module docs)."""
    family = sock.family
    if family == _AF_UNIX:
        return peer_credentials(sock)[0] == os.getpid()
    if family not in _IP_FAMILIES or not _local_ends:
        return False
    try:
        peer = _ip_address(sock.getpeername())
        own = _ip_address(sock.getsockname())
    except OSError:
        return False
    if peer is None:
        return False
    if _is_local(peer):
        return True
    # A listener bound to a wildcard address answers on every local address: the peer is that
    # listener when its host is this end's host (a connection within this machine).
    return own is not None and peer[0] == own[0] and any(_is_local((w, peer[1])) for w in _WILDCARDS)
