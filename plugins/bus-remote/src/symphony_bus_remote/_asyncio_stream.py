"""A byte stream over a connected socket driven by an asyncio transport (the asyncio fast path).

:class:`~symphony_bus_remote.SocketByteStream` waits for readability with
:func:`anyio.wait_readable`, which on asyncio registers the socket with the event loop before
every wait and removes it after (two ``epoll_ctl`` system calls), and then reads in Python.
Here the event loop owns the socket for the whole connection: it reads in its own (C, with
uvloop) code as soon as bytes arrive, and :meth:`AsyncioSocketStream.receive` only picks up
what is already there, or waits on one future. Writes go straight to the loop's transport,
which sends at once when the socket can take it and buffers the rest.

Used only when the running anyio backend is asyncio (see
:func:`symphony_bus_remote.open_socket_stream`); trio keeps ``SocketByteStream``. It is an
:class:`anyio.abc.ByteStream` like any other: cancellation, ``EndOfStream``,
``ClosedResourceError`` and ``BrokenResourceError`` behave as anyio documents them.

Flow control both ways: reading pauses while more than :data:`READ_HIGH_WATER` bytes wait to
be picked up (so a slow consumer pushes back on the peer, as with a plain socket), and
``send`` waits while the loop holds more than :data:`WRITE_HIGH_WATER` unsent bytes.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

from symphony_bus_remote._busypoll import DEFAULT_BUSY_POLL, BusyPoll, BusyPollAttribute

__all__ = ["READ_HIGH_WATER", "WRITE_HIGH_WATER", "AsyncioSocketStream", "running_asyncio_loop"]

READ_HIGH_WATER: Final = 1 << 20
"""Received bytes waiting to be picked up above which the loop stops reading the socket."""
WRITE_HIGH_WATER: Final = 1 << 20
"""Unsent bytes held by the loop above which ``send`` waits until they drain."""
_YIELD_EVERY: Final = 32


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio event loop, or ``None`` (no loop, or another backend such as trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Protocol(asyncio.Protocol):
    """Collects what the loop reads and wakes the one waiting reader or writer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.read_waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self.wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self.wake_reader()
        return True  # keep our half open: the peer may still be reading

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self.error = exc
        self.wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None:
            self.drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wake_reader(self) -> None:
        waiter = self.read_waiter
        if waiter is not None:
            self.read_waiter = None
            if not waiter.done():
                waiter.set_result(None)


class AsyncioSocketStream(anyio.abc.ByteStream):
    """An :class:`anyio.abc.ByteStream` over a connected stream socket owned by the running
    asyncio event loop. Create it with :meth:`wrap` (from a task on the asyncio backend)."""

    def __init__(
        self,
        sock: socket.socket,
        transport: asyncio.Transport,
        protocol: _Protocol,
        *,
        busy_poll: float = DEFAULT_BUSY_POLL,
    ) -> None:
        self._sock = sock
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._reads = 0
        self._writes = 0
        self._busy = BusyPoll(busy_poll) if busy_poll > 0 else None

    @classmethod
    async def wrap(cls, sock: socket.socket, *, busy_poll: float = DEFAULT_BUSY_POLL) -> AsyncioSocketStream:
        """Hand the connected socket ``sock`` to the running asyncio loop and return the stream
        (``busy_poll``: see :mod:`symphony_bus_remote._busypoll`; 0 = off). Raises
        ``NotImplementedError`` on a loop that cannot adopt sockets."""
        sock.setblocking(False)
        protocol = _Protocol()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=sock)
        return cls(sock, transport, protocol, busy_poll=busy_poll)

    def _input(self) -> bool:
        """Whether there is something for :meth:`receive` to act on (for busy polling)."""
        protocol = self._protocol
        return bool(protocol.chunks) or protocol.lost or protocol.eof or self._closed

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        transport = self._transport
        sock = self._sock

        def raw() -> Any:
            return transport.get_extra_info("socket") or sock

        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.raw_socket: raw,
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: lambda: transport.get_extra_info("sockname"),
            SocketAttribute.remote_address: lambda: transport.get_extra_info("peername"),
        }
        busy = self._busy
        if busy is not None:
            attributes[BusyPollAttribute.busy_poll] = lambda: busy
        return attributes

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        chunks = protocol.chunks
        self._reads += 1
        if self._reads >= _YIELD_EVERY:
            self._reads = 0
            await anyio.lowlevel.checkpoint()
        while not chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.lost or protocol.eof:
                if protocol.error is not None and not protocol.eof:
                    raise anyio.BrokenResourceError from protocol.error
                raise anyio.EndOfStream
            self._reads = 0
            busy = self._busy
            if busy is None:
                await self._park()
            else:
                await busy.wait(self._input, self._park)
        if self._closed:
            raise anyio.ClosedResourceError
        chunk = chunks.popleft()
        if len(chunk) > max_bytes:
            chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        elif chunks and len(chunk) < max_bytes:
            # Join what else arrived, up to max_bytes: fewer, larger reads for the framer.
            parts = [chunk]
            size = len(chunk)
            while chunks and size + len(chunks[0]) <= max_bytes:
                nxt = chunks.popleft()
                parts.append(nxt)
                size += len(nxt)
            chunk = b"".join(parts)
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered <= READ_HIGH_WATER // 4:
            protocol.reading_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()
        return chunk

    async def _park(self, slot: str = "read_waiter") -> None:
        """Wait until the protocol wakes the future it finds in ``slot``."""
        protocol = self._protocol
        waiter = self._loop.create_future()
        setattr(protocol, slot, waiter)
        try:
            await waiter
        finally:
            setattr(protocol, slot, None)

    def try_send(self, item: bytes) -> int:
        """Hand ``item`` to the loop's transport now (it writes at once what the socket takes
        and buffers the rest): ``len(item)``, or ``-1`` when the caller should use :meth:`send`
        instead (time to yield to the loop, the transport's buffer is full, or the stream is
        closed or broken)."""
        protocol = self._protocol
        if self._closed or protocol.lost or protocol.write_paused or self._writes + 1 >= _YIELD_EVERY:
            return -1
        self._writes += 1
        self._transport.write(item)
        return len(item)

    async def send(self, item: bytes) -> None:
        protocol = self._protocol
        self._writes += 1
        if self._writes >= _YIELD_EVERY:
            self._writes = 0
            await anyio.lowlevel.checkpoint()
        while protocol.write_paused and not protocol.lost:
            self._writes = 0
            await self._park("drain_waiter")
        if self._closed:
            raise anyio.ClosedResourceError
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.error
        self._transport.write(item)

    async def send_eof(self) -> None:
        transport = self._transport
        if not self._closed and not transport.is_closing() and transport.can_write_eof():
            try:
                transport.write_eof()
            except (OSError, RuntimeError):
                pass

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.close()  # unsent bytes still go out first
            protocol = self._protocol
            protocol.wake_reader()
            protocol.resume_writing()
        await anyio.lowlevel.checkpoint()
