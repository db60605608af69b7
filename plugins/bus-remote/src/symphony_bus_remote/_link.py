"""One live bus connection, the part :class:`~symphony_bus_remote.BusServer` and
:class:`~symphony_bus_remote.BusClient` share: the protocol's control message types, the
worker pool that reads a connection and answers its peer's requests, and :class:`Link`, which
runs one connection (heartbeats, request deadlines, failing what waits on a lost peer).

The protocol itself is described in :mod:`symphony_bus_remote`.
"""

from __future__ import annotations

import heapq
import math
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel

from symphony.bus import Connection, Message
from symphony.bus.links import EVENT, REQUEST, Correlator, Signal, request_timeout_error
from symphony.commons.errors import (
    InternalError,
    NotFoundError,
    SerializationError,
    SymphonyError,
    TransportError,
    ValidationError,
)
from symphony.commons.log import get_logger
from symphony_bus_remote._busypoll import BusyPoll, BusyPollAttribute
from symphony_bus_remote._sockets import StreamConnection

__all__ = [
    "CONTROL_PREFIX",
    "PROTOCOL_VERSION",
    "SUBSCRIPTION_HEADER",
    "Link",
    "Workers",
    "check_data_type",
    "check_event",
    "exit_quietly",
    "peer_lost",
    "positive_seconds",
]


PROTOCOL_VERSION: Final = 1
"""Version of the bus protocol spoken after the transport connects."""

CONTROL_PREFIX: Final = "_bus."
"""Message types starting with this are control messages (never routed or published)."""

SUBSCRIPTION_HEADER: Final = "x-symphony-sub"
"""Header naming the client subscription a forwarded event is for."""

HELLO: Final = "_bus.hello"
PING: Final = "_bus.ping"
PONG: Final = "_bus.pong"
SUBSCRIBE: Final = "_bus.subscribe"
UNSUBSCRIBE: Final = "_bus.unsubscribe"
HANDLE: Final = "_bus.handle"
UNHANDLE: Final = "_bus.unhandle"
CLOSING: Final = "_bus.closing"
"""Event a side sends before it drops the connection on purpose: ``{"code", "message"}`` say why
(the other side reports that as the reason the link was lost)."""

_TIMER_GRANULARITY: Final = 0.005
"""Request deadlines fire at most this late (seconds)."""

_log = get_logger("symphony.bus.remote")
_current_time = anyio.current_time
_clock = time.monotonic
_time = time.time
"""The links' own clock (silence and request deadlines are relative times, so the plain
monotonic clock serves, without a trip through anyio's backend lookup per message)."""


def peer_lost(peer: str, reason: str) -> TransportError:
    """The error every request waiting on a lost peer fails with."""
    return TransportError(
        f"lost the connection to {peer}: {reason}",
        code="transport.peer_lost",
        context={"peer": peer, "reason": reason},
        hint="the request may or may not have been handled; retry if it is idempotent",
    )


def check_event(msg: Message, caller: str) -> None:
    """Only events go one-way: anything else is a ValidationError naming ``caller``."""
    if msg.kind != EVENT:
        raise ValidationError(
            f"{caller} takes events, not a {msg.kind!r} message",
            code="bus.not_an_event",
            context={"type": msg.type},
        )
    check_data_type(msg.type)


def check_data_type(type: str) -> None:
    """Refuse message types in the protocol's reserved ``_bus.`` namespace."""
    if type.startswith(CONTROL_PREFIX):
        raise ValidationError(
            f"message types starting with {CONTROL_PREFIX!r} are reserved for the bus protocol",
            code="bus.reserved_type",
            context={"type": type},
        )


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as a float if it is a positive number of seconds; a ValidationError naming the
    option ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError(
            f"{name} must be a positive number of seconds, not {value!r}",
            code="bus.bad_option",
            context={"option": name, "value": repr(value)},
        )
    return float(value)


async def exit_quietly(tg: anyio.abc.TaskGroup, exc: BaseException | None) -> None:
    """Close a cancelled internal task group without wrapping the caller's own exception in an
    exception group: the caller's error stays what it was (internal errors are logged then)."""
    try:
        await tg.__aexit__(None, None, None)
    except BaseException as internal:
        if exc is None:
            raise
        _log.error("bus.remote.internal_error_on_exit", error=repr(internal))


# -- the worker pool -------------------------------------------------------------------------------


class _Slot:
    __slots__ = ("event", "job")

    def __init__(self) -> None:
        self.event = Signal()
        self.job: Message | object | None = None


@types.coroutine
def _resume(coro: Any, yielded: Any) -> Any:
    """Go on awaiting the coroutine ``coro`` whose first step, run by hand, yielded ``yielded``
    (exactly what ``await coro`` would do from there: sends, throws and close reach it)."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


_READ: Final = object()
"""A worker's job meaning "be the connection's reader" (leader/followers)."""


class Workers:
    """Long-lived tasks that read the connection and answer the peer's requests.

    Leader/followers: one worker at a time holds the *reader* role. When the batch it reads
    contains a request, the reader answers it itself -- so a request is answered by the task
    that read it, without a hand-over on the critical path. If answering has to wait (the
    handler awaits something, the socket is full), the reader role first goes to an idle
    follower (or a new task), so reading goes on; an answer that is ready at once (the usual
    case) costs no hand-over at all. Other requests of the same batch go to idle followers.
    Since answering never blocks reading, a handler may itself wait on the same connection
    without deadlock. At most ``max_workers`` requests run at once (then
    requests queue, and past ``max_workers`` queued ones reading waits: backpressure); surplus
    idle workers (more than ``keep``) retire after a quiet second.

    Deadlines: each worker runs inside one long-lived cancel scope, whose deadline is set to
    ``timeout`` seconds only while an answer is actually waiting (an answer ready at once
    needs no deadline, and a cancel scope per request would cost more than the rest of the
    request path). A request past its deadline is cancelled and answered by ``timed_out``;
    the worker then goes on in a fresh scope.
    """

    def __init__(
        self,
        tg: anyio.abc.TaskGroup,
        handle: Callable[[Message], Coroutine[Any, Any, None]],
        lead: Callable[[], Awaitable[Message | None]],
        max_workers: int,
        *,
        timeout: float | None = None,
        timed_out: Callable[[Message, float], Awaitable[None]] | None = None,
        keep: int = 4,
    ) -> None:
        self._tg = tg
        self._handle = handle
        self._lead = lead
        self._max = max(1, max_workers)
        self._timeout = timeout if timed_out is not None else None
        self._timed_out = timed_out
        self._keep = keep
        self._idle: list[_Slot] = []
        self._queue: deque[Message] = deque()
        self._space: anyio.Event | None = None
        self._count = 0

    def _give(self, job: Message | object) -> bool:
        if self._idle:
            slot = self._idle.pop()
            slot.job = job
            slot.event.set()
            return True
        return False

    def start_reader(self) -> None:
        """Start the first reader."""
        self._count += 1
        self._tg.start_soon(self._work, _READ)

    def promote(self) -> None:
        """Hand the reader role on (the current reader is about to answer a request)."""
        if not self._give(_READ):
            self._count += 1
            self._tg.start_soon(self._work, _READ)

    async def submit(self, msg: Message) -> None:
        """Have a follower answer ``msg``."""
        if self._give(msg):
            return
        if self._count < self._max:
            self._count += 1
            self._tg.start_soon(self._work, msg)
            return
        while len(self._queue) >= self._max:
            self._space = space = self._space or anyio.Event()
            await space.wait()
        self._queue.append(msg)

    async def _work(self, job: Message | object | None) -> None:
        try:
            while job is not None:
                running: list[Message] = []
                finished = False
                with anyio.CancelScope() as scope:
                    finished = await self._serve(job, scope, running)
                if finished:
                    return  # the connection ended, or this worker retired
                # The scope is spent: its deadline fired. (Only this scope's own cancellation
                # lands here; a cancelled parent propagates.) The request it cancelled, if the
                # answer had not come after all, gets a timeout error.
                if running and self._timed_out is not None and self._timeout is not None:
                    await self._timed_out(running[0], self._timeout)
                job = await self._next_job()
        finally:
            self._count -= 1

    async def _serve(self, job: Message | object, scope: anyio.CancelScope, running: list[Message]) -> bool:
        """Work from ``job`` on; True when this worker is done (the connection ended, or it
        retired), False when ``scope`` is spent (a deadline fired just as an answer came)."""
        while True:
            if job is _READ:
                request = await self._lead()
                if request is None:
                    return True  # the connection ended
                # Answer it right here, and hand the reader role on only if answering has
                # to wait: most answers are ready (and sent) without ever suspending, and
                # then this task simply goes on reading.
                if await self._answer(request, scope, running, reader=True):
                    continue
            else:
                assert isinstance(job, Message)
                await self._answer(job, scope, running, reader=False)
            if scope.cancel_called:
                return False
            next_job = await self._next_job()
            if next_job is None:
                return True
            job = next_job

    async def _answer(
        self, request: Message, scope: anyio.CancelScope, running: list[Message], *, reader: bool
    ) -> bool:
        """Answer ``request``; True if this task is still the reader afterwards."""
        answering = self._handle(request)
        try:
            yielded = answering.send(None)
        except StopIteration:
            return reader
        except BaseException:
            if reader:
                self.promote()
            raise
        if reader:
            self.promote()
        timeout = self._timeout
        if timeout is None:
            await _resume(answering, yielded)
            return False
        running.append(request)
        scope.deadline = _current_time() + timeout
        await _resume(answering, yielded)
        scope.deadline = math.inf
        running.clear()
        return False

    async def _next_job(self) -> Message | object | None:
        """The next queued request, else wait as an idle follower for a job; ``None`` to
        retire (a surplus worker that got nothing within a second)."""
        queue = self._queue
        if queue:
            job = queue.popleft()
            space = self._space
            if space is not None:
                self._space = None
                space.set()
            return job
        slot = _Slot()
        self._idle.append(slot)
        if self._count > self._keep:
            with anyio.move_on_after(1.0):
                await slot.event.wait()
            if slot.job is None:  # nothing came within a second: retire
                if slot in self._idle:
                    self._idle.remove(slot)
                return None
        else:
            await slot.event.wait()
        return slot.job


# -- one live connection ---------------------------------------------------------------------------


class Link:
    """The machinery shared by both ends of a native connection: the reader loop, the
    heartbeat watchdog, the pool answering the peer's requests, and the requests waiting for
    the peer's answers. Subclasses say what to do with each kind of message."""

    def __init__(
        self,
        conn: Connection,
        *,
        label: str,
        heartbeat_interval: float | None,
        heartbeat_timeout: float | None,
        max_workers: int,
        request_timeout: float | None = None,
    ) -> None:
        self.conn = conn
        self.label = label
        self.request_timeout = request_timeout
        self.pending = Correlator()
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.max_workers = max_workers
        self.last_seen = 0.0
        self.lost_reason: str | None = None
        self.closed = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._workers: Workers | None = None
        self._bad_frames = 0
        self.held = 0
        """Calls from the reader being held by backpressure on this side (their silence is ours,
        not the peer's: the heartbeat watchdog does not count it)."""
        self._done = anyio.Event()
        self._failure: SymphonyError | None = None
        self._deadlines: list[tuple[float, str, float]] = []
        self._timer_target = math.inf
        self._timer_wake = anyio.Event()
        self._busy: BusyPoll | None = (
            conn.extra(BusyPollAttribute.busy_poll, None) if isinstance(conn, StreamConnection) else None
        )
        """The busy polling of the stream this link reads, if it polls: told when a request of
        this side is outstanding and when this side answered one (see ``_busypoll``)."""

    # -- what subclasses implement ---------------------------------------------------------

    async def on_event(self, msg: Message) -> None:
        """A data event from the peer (runs in the reader: keep it short, it keeps order)."""

    async def answer(self, msg: Message) -> Message:
        """The answer to a data request from the peer (runs in a worker). Subclasses route
        it; a link that answers nothing says so with ``bus.no_route``."""
        return msg.fail(
            NotFoundError(
                f"nothing answers {msg.type!r} here", code="bus.no_route", context={"type": msg.type}
            )
        )

    async def on_control(self, msg: Message) -> Message | None:
        """A control request from the peer; returns its answer."""
        return msg.fail(
            ValidationError(
                f"unknown control message {msg.type!r}",
                code="bus.unknown_control",
                context={"type": msg.type},
            )
        )

    def on_batch(self) -> None:
        """Called once per batch of received messages (a sign of life)."""

    # -- running ---------------------------------------------------------------------------

    async def run(self, after_start: Callable[[], Awaitable[None]] | None = None) -> str:
        """Serve the connection until it ends; return why it ended. Every request still
        waiting for the peer then fails with ``transport.peer_lost``."""
        self.last_seen = _clock()
        reason = "closed"
        self._done = anyio.Event()
        self._failure = None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._workers = Workers(
                    tg,
                    self._run_request,
                    self._lead,
                    self.max_workers,
                    timeout=self.request_timeout,
                    timed_out=self._answer_timed_out,
                )
                if self.conn.native and self.heartbeat_interval and self.heartbeat_timeout:
                    tg.start_soon(self._watchdog)
                if after_start is not None:
                    tg.start_soon(self._after_start, after_start)
                tg.start_soon(self._timer)
                self._workers.start_reader()
                try:
                    await self._done.wait()
                finally:
                    tg.cancel_scope.cancel()
            exc = self._failure
            if exc is not None:
                reason = self.lost_reason or exc.message
                if exc.code not in ("transport.closed", "transport.closed_locally"):
                    _log.info("bus.remote.link_error", peer=self.label, code=exc.code, error=exc.message)
                elif exc.code == "transport.closed" and self.lost_reason is None:
                    reason = "the peer closed the connection"
        finally:
            self.closed = True
            self._tg = None
            self.lost_reason = self.lost_reason or reason
            self.pending.fail_all(peer_lost(self.label, self.lost_reason))
            with anyio.CancelScope(shield=True):
                await self.conn.aclose()
        return self.lost_reason

    async def _after_start(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        except SymphonyError as exc:
            self.lost_reason = f"setup failed: {exc.message}"
            await self.aclose()

    async def aclose(self, reason: str | None = None) -> None:
        """Close the connection; :meth:`run` then returns."""
        if reason is not None and self.lost_reason is None:
            self.lost_reason = reason
        self.closed = True
        await self.conn.aclose()

    async def _lead(self) -> Message | None:
        """The reader role: read batches, handle everything but data requests inline (keeping
        the connection's order), and return a data request for the caller to answer (handing
        the reader role on if that has to wait). ``None`` once the connection ended (see
        :meth:`run`)."""
        conn = self.conn
        resolve = self.pending.resolve
        workers = self._workers
        assert workers is not None
        try:
            while True:
                try:
                    msgs = await conn.receive_many()
                except SerializationError as exc:
                    # The framing is intact, one frame is not: drop it, but not forever.
                    self._bad_frames += 1
                    _log.warning(
                        "bus.remote.bad_frame", peer=self.label, code=exc.code, error=exc.message[:200]
                    )
                    if self._bad_frames > 10:
                        raise TransportError(
                            "the peer keeps sending undecodable frames",
                            code="transport.protocol_error",
                            context={"peer": self.label},
                        ) from exc
                    continue
                self.last_seen = _clock()
                self.on_batch()
                mine: Message | None = None
                answered = False
                for msg in msgs:
                    kind = msg.kind
                    if kind == REQUEST:
                        if msg.type.startswith(CONTROL_PREFIX):
                            reply = await self.on_control(msg)
                            if reply is not None:
                                await conn.send(reply)
                        else:
                            if mine is not None:
                                await workers.submit(mine)
                            mine = msg
                    elif kind == EVENT:
                        if msg.type.startswith(CONTROL_PREFIX):
                            if msg.type == PING:
                                await conn.send(Message(PONG))
                            elif msg.type == CLOSING:
                                self._peer_closing(msg)
                        else:
                            await self.on_event(msg)
                    elif resolve(msg):
                        answered = True
                    else:
                        _log.debug(
                            "bus.remote.orphan_reply", peer=self.label, type=msg.type, id=msg.correlation_id
                        )
                if mine is not None:
                    return mine
                if answered:
                    # Let the requests just answered go on (typically: send the next request)
                    # before this task waits on the socket again -- getting ready to read costs
                    # more than this yield, and the peer is busy with that next request by then.
                    await anyio.lowlevel.checkpoint()
        except SymphonyError as exc:
            self._failure = exc
            self._done.set()
            return None

    def _peer_closing(self, msg: Message) -> None:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        text = payload.get("message")
        code = payload.get("code")
        if isinstance(text, str) and text:
            self.lost_reason = f"the peer closed the connection: {text[:500]}"
            _log.warning("bus.remote.closed_by_peer", peer=self.label, code=str(code)[:100], reason=text[:500])

    async def drop(self, code: str, message: str, *, notice_timeout: float = 0.5) -> None:
        """Close the connection on purpose, first telling the peer why with a ``_bus.closing``
        event (given at most ``notice_timeout`` seconds: a peer that does not read gets none)."""
        sent = anyio.Event()
        tg = self._tg

        async def notify() -> None:
            try:
                await self.conn.send(Message(CLOSING, {"code": code, "message": message}))
            except SymphonyError:
                pass
            finally:
                sent.set()

        if tg is not None:
            tg.start_soon(notify)
            with anyio.move_on_after(notice_timeout):
                await sent.wait()
        await self.aclose(message)

    async def _run_request(self, msg: Message) -> None:
        try:
            reply = await self.answer(msg)
        except SymphonyError as err:
            reply = msg.fail(err)
        except Exception as exc:
            _log.exception("bus.remote.answer_crashed", peer=self.label, type=msg.type)
            reply = msg.fail(
                InternalError(
                    f"answering {msg.type!r} crashed: {type(exc).__name__}: {exc}",
                    code="bus.handler_crashed",
                    context={"type": msg.type, "exception": type(exc).__name__},
                )
            )
        try:
            await self.conn.send(reply)
        except SerializationError as err:
            await self.conn.send(msg.fail(err))
        except TransportError:
            return  # the link is going down; run() reports why
        if self._busy is not None:
            self._busy.answered()

    def timeout_reply(self, msg: Message, timeout: float) -> Message:
        """The error answering the peer's request ``msg`` that ran past ``timeout`` seconds."""
        return msg.fail(request_timeout_error(msg.type, msg.id, timeout, key="target", who=self.label))

    async def _answer_timed_out(self, msg: Message, timeout: float) -> None:
        try:
            await self.conn.send(self.timeout_reply(msg, timeout))
        except SymphonyError:
            pass  # the link is going down; run() reports why

    async def _watchdog(self) -> None:
        interval = self.heartbeat_interval
        timeout = self.heartbeat_timeout
        assert interval is not None and timeout is not None
        tick = min(interval, timeout / 2)
        while True:
            await anyio.sleep(tick)
            idle = _clock() - self.last_seen
            # A reader held by this side's own backpressure is not the peer's silence.
            if idle >= timeout and not self.held:
                # The loop may have been busy: let the reader take what already arrived.
                for _ in range(3):
                    await anyio.lowlevel.checkpoint()
                if _clock() - self.last_seen >= timeout:
                    _log.warning("bus.remote.heartbeat_timeout", peer=self.label, silent_for=round(idle, 3))
                    await self.aclose(f"no heartbeat for {timeout} s")
                    return
            elif idle >= interval:
                try:
                    await self.conn.send(Message(PING))
                except TransportError:
                    return

    async def call(self, msg: Message, timeout: float) -> Message:
        """Send the request ``msg`` to the peer and return its answer (an ``error`` message,
        not raised, for a lost peer or after ``timeout`` seconds: ``bus.request_timeout``).

        Deadlines are kept in a heap watched by one timer task rather than a cancel scope per
        request (which costs more than the rest of the request path on asyncio); they fire
        within :data:`_TIMER_GRANULARITY` seconds.

        While it waits, the reader of this connection may busy-poll for one window (see
        :mod:`symphony_bus_remote._busypoll`)."""
        pending = self.pending.open(msg, self.label)
        busy = self._busy
        try:
            if busy is not None:
                busy.expect()
            deadline = _clock() + timeout
            heapq.heappush(self._deadlines, (deadline, msg.id, timeout))
            if deadline < self._timer_target:
                self._timer_wake.set()
            try:
                await self.conn.send(msg)
            except TransportError as exc:
                if exc.code.startswith("transport.closed") or exc.code == "transport.broken":
                    raise peer_lost(self.label, self.lost_reason or exc.message) from exc
                raise
            return await pending.wait()
        finally:
            if busy is not None:
                busy.settle()
            self.pending.close(msg.id)
            deadlines = self._deadlines
            if len(deadlines) > 4096 and len(deadlines) > 4 * len(self.pending):
                # Answered requests leave their deadline behind: compact now and then.
                live = self.pending
                deadlines[:] = [entry for entry in deadlines if entry[1] in live]
                heapq.heapify(deadlines)

    async def _timer(self) -> None:
        deadlines = self._deadlines
        pop = heapq.heappop
        while True:
            if deadlines:
                self._timer_target = max(deadlines[0][0], _clock() + _TIMER_GRANULARITY)
            else:
                self._timer_target = math.inf
            self._timer_wake = anyio.Event()
            with anyio.move_on_after(max(0.0, self._timer_target - _clock())):
                await self._timer_wake.wait()
            now = _clock()
            while deadlines and deadlines[0][0] <= now:
                _, request_id, timeout = pop(deadlines)
                waiting = self.pending.get(request_id)
                if waiting is not None:
                    waiting.fail(
                        request_timeout_error(waiting.type, request_id, timeout, key="peer", who=self.label)
                    )
