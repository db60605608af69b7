"""Byte streams over connected stdlib sockets: :class:`SocketByteStream` (any anyio backend)
and :func:`open_socket_stream`, which picks the best stream for the running backend (the
loop-owned :class:`~symphony_bus_remote._asyncio_stream.AsyncioSocketStream` on asyncio) and decides
whether its reader busy-polls. The socket transports (unix, tcp) read every connection through
it; import both names from :mod:`symphony_bus_remote`.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

# Imported here, not on the first accept: with no descriptor left, importing needs one too.
from symphony_bus_remote._asyncio_stream import AsyncioSocketStream, running_asyncio_loop
from symphony_bus_remote._busypoll import DEFAULT_BUSY_POLL, BusyPoll, BusyPollAttribute
from symphony_bus_remote._same_process import peer_is_this_process

__all__ = ["SocketByteStream", "open_socket_stream"]

_YIELD_EVERY: Final = 32


class SocketByteStream(anyio.abc.ByteStream):
    """An :class:`anyio.abc.ByteStream` over a connected stdlib socket, driven by
    :func:`anyio.wait_readable` / :func:`anyio.wait_writable`.

    Compared with anyio's own socket streams it reads and writes straight away when the socket
    is ready and only waits when it would block, which saves an event-loop round trip per
    call (the request/response benchmark shows it). It still yields to the event loop at least
    every 32 calls so a busy peer cannot starve other tasks. A partially written buffer is
    always finished (shielded from cancellation) so the frame stream never goes out of step.
    """

    def __init__(self, sock: socket.socket, *, busy_poll: float = DEFAULT_BUSY_POLL) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._closed = False
        self._reads = 0
        self._writes = 0
        # The last read emptied the socket (it returned less than asked): the next one waits
        # for readability first instead of failing a recv() with EAGAIN.
        self._drained = False
        # Polling readiness needs select.poll (not on Windows, where busy polling is off).
        self._busy = BusyPoll(busy_poll) if busy_poll > 0 and hasattr(select, "poll") else None
        self._poller: select.poll | None = None

    @property
    def socket(self) -> socket.socket:
        """The underlying socket."""
        return self._sock

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self._sock

        def remote() -> Any:
            try:
                return sock.getpeername()
            except OSError:
                return None

        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.raw_socket: lambda: sock,
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: sock.getsockname,
            SocketAttribute.remote_address: remote,
        }
        busy = self._busy
        if busy is not None:
            attributes[BusyPollAttribute.busy_poll] = lambda: busy
        return attributes

    async def receive(self, max_bytes: int = 65536) -> bytes:
        sock = self._sock
        self._reads += 1
        if self._reads >= _YIELD_EVERY:
            self._reads = 0
            await anyio.lowlevel.checkpoint()
        if self._drained:
            self._drained = False
            self._reads = 0
            if self._closed:
                raise anyio.ClosedResourceError
            await self._wait_readable()
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                data = sock.recv(max_bytes)
            except BlockingIOError:
                self._reads = 0
                await self._wait_readable()
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                if self._closed:
                    raise anyio.ClosedResourceError from None
                raise anyio.BrokenResourceError from exc
            if not data:
                raise anyio.EndOfStream
            if len(data) < max_bytes:
                self._drained = True
            return data

    async def _wait_readable(self) -> None:
        busy = self._busy
        if busy is None:
            await anyio.wait_readable(self._sock)
        else:
            await busy.wait(self._readable, self._park)

    async def _park(self) -> None:
        await anyio.wait_readable(self._sock)

    def _readable(self) -> bool:
        """Whether a read would not block (for busy polling)."""
        if self._closed:
            return True
        poller = self._poller
        if poller is None:
            self._poller = poller = select.poll()
            poller.register(self._sock, select.POLLIN)
        return bool(poller.poll(0))

    def try_send(self, item: bytes) -> int:
        """Write what the socket takes right now, without waiting: the number of bytes sent,
        or ``-1`` when the caller should use :meth:`send` instead (it is time to yield to the
        event loop, or the stream is closed)."""
        if self._closed or self._writes + 1 >= _YIELD_EVERY:
            return -1
        self._writes += 1
        try:
            return self._sock.send(item)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            if self._closed:
                raise anyio.ClosedResourceError from None
            raise anyio.BrokenResourceError from exc

    async def send(self, item: bytes) -> None:
        sock = self._sock
        self._writes += 1
        if self._writes >= _YIELD_EVERY:
            self._writes = 0
            await anyio.lowlevel.checkpoint()
        view = memoryview(item)
        started = False
        while view:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                sent = sock.send(view)
            except BlockingIOError:
                self._writes = 0
                if started:
                    # Half a frame is out: finish it whatever happens, or the stream is corrupt.
                    with anyio.CancelScope(shield=True):
                        await anyio.wait_writable(sock)
                else:
                    await anyio.wait_writable(sock)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                if self._closed:
                    raise anyio.ClosedResourceError from None
                raise anyio.BrokenResourceError from exc
            started = True
            view = view[sent:]

    async def send_eof(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                anyio.notify_closing(self._sock)
            except Exception:
                pass
            self._sock.close()
        await anyio.lowlevel.checkpoint()


async def open_socket_stream(sock: socket.socket, *, busy_poll: float = DEFAULT_BUSY_POLL) -> anyio.abc.ByteStream:
    """The best byte stream for the connected socket ``sock`` under the running backend, whose
    reader may busy-poll for up to ``busy_poll`` seconds after a request while its answer is
    awaited (see :mod:`symphony_bus_remote._busypoll`; 0 = off, and off anyway when the peer is
    this very process).

    On asyncio the event loop adopts the socket for the whole connection
    (:class:`~symphony_bus_remote._asyncio_stream.AsyncioSocketStream`: no per-read registration
    with the loop, reads done by the loop itself); elsewhere (trio), or on a loop that cannot
    adopt sockets, a :class:`SocketByteStream`. Both are plain :class:`anyio.abc.ByteStream` objects.
    """
    if busy_poll and peer_is_this_process(sock):
        busy_poll = 0.0  # the peer shares this process (and event loop): polling cannot help
    if running_asyncio_loop() is not None:
        try:
            return await AsyncioSocketStream.wrap(sock, busy_poll=busy_poll)
        except NotImplementedError:
            pass
    return SocketByteStream(sock, busy_poll=busy_poll)
