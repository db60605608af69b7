"""The bus across processes: :class:`BusServer` serves a :class:`~symphony.bus.core.Bus` on a
transport URL, :class:`BusClient` reaches it from another process.

::

    # process A
    async with Bus() as bus, BusServer(bus, "unix:///tmp/sym.sock"):
        bus.handle("demo.add", lambda msg: msg.payload["a"] + msg.payload["b"])
        await anyio.sleep_forever()

    # process B
    async with BusClient.connect("unix:///tmp/sym.sock") as client:
        reply = await client.request("demo.add", {"a": 1, "b": 2}, timeout=2)
        assert reply.payload == 3

Protocol
--------
Every frame carries one :class:`~symphony.bus.message.Message`. A connection starts with a
handshake in the JSON codec: the client sends a ``_bus.hello`` request naming the protocol
version, the codecs it accepts (in order of preference), its name and capabilities; the server
answers with the chosen codec (the client's first choice the server also has), after which
both sides switch to it. Transports may authenticate before that (the TCP transport checks a
shared token; the Unix transport checks the peer's uid) and refuse with an ``error`` frame.

After the handshake, messages whose type starts with ``_bus.`` are control messages:

``_bus.ping`` / ``_bus.pong``          (events) heartbeats: either side pings after
                                       ``heartbeat_interval`` seconds of silence
``_bus.subscribe`` / ``_bus.unsubscribe``  (requests) ``{"sid", "pattern", "buffer", "policy"}``:
                                       the server forwards matching events, tagged with the
                                       ``x-symphony-sub`` header naming the subscription
``_bus.handle`` / ``_bus.unhandle``    (requests) ``{"hid", "pattern", "priority"}``: the server
                                       routes matching requests to this peer

Everything else is data: the peer's requests are answered by the server bus's routing (which
may route them on to another peer), its events are published on the server bus, and
responses/errors answer requests the other side sent. Each server-side peer is registered as a
bus :class:`~symphony.bus.endpoints.Endpoint` named ``<client name>#<n>``.

Failure
-------
* A peer that closes, crashes or is killed is noticed as soon as its socket reports end of
  stream; every request waiting on it then fails with
  ``TransportError(code="transport.peer_lost")``, on both sides.
* A peer that stays connected but silent (hung, SIGSTOPped, partitioned) is dropped after
  ``heartbeat_timeout`` seconds without any frame (the other side pings it after
  ``heartbeat_interval`` seconds of silence), with the same errors.
* :class:`BusClient` reconnects with exponential backoff and full jitter
  (:class:`~symphony.bus.backoff.Backoff`) and restores its subscriptions and handlers;
  requests made while it reconnects wait for the connection within their own timeout.
* Errors cross intact: a handler's :class:`~symphony.commons.errors.SymphonyError` arrives
  with the same class, code, message, context and hint.

Non-native connections (``Connection.native`` false: the JSON-RPC stdio transport) skip the
handshake and heartbeats: requests and notifications map to JSON-RPC, subscriptions and
handlers are local to the client.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import time
import types
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from symphony.bus._signal import Signal
from symphony.bus._taskgroup import start_in_own_task_group
from symphony.bus.backoff import Backoff, Reconnector
from symphony.bus.correlation import Correlator, request_timeout_error
from symphony.bus.message import ERROR, EVENT, REQUEST, RESPONSE, Message, _trusted, is_valid_type, new_id
from symphony.bus.topics import TopicTrie, validate_pattern
from symphony.bus.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    HANDSHAKE_CODEC,
    Connection,
    get_logger,
    open_transport,
    resolve_codec,
)
from symphony.commons.errors import (
    InternalError,
    NotFoundError,
    OperationTimeoutError,
    SerializationError,
    SymphonyError,
    TransportError,
    ValidationError,
)

if TYPE_CHECKING:
    from symphony.bus.core import Bus

__all__ = [
    "CONTROL_PREFIX",
    "PROTOCOL_VERSION",
    "SUBSCRIPTION_HEADER",
    "BusClient",
    "BusServer",
    "ClientHandler",
    "RemoteSubscription",
    "ServerPeer",
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


def _check_event(msg: Message, caller: str) -> None:
    """Only events go one-way: anything else is a ValidationError naming ``caller``."""
    if msg.kind != EVENT:
        raise ValidationError(
            f"{caller} takes events, not a {msg.kind!r} message",
            code="bus.not_an_event",
            context={"type": msg.type},
        )
    _check_data_type(msg.type)


def _check_data_type(type: str) -> None:
    if type.startswith(CONTROL_PREFIX):
        raise ValidationError(
            f"message types starting with {CONTROL_PREFIX!r} are reserved for the bus protocol",
            code="bus.reserved_type",
            context={"type": type},
        )


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValidationError(
            f"{name} must be a positive number of seconds, not {value!r}",
            code="bus.bad_option",
            context={"option": name, "value": repr(value)},
        )
    return float(value)


async def _exit_quietly(tg: anyio.abc.TaskGroup, exc: BaseException | None) -> None:
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


class _Workers:
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


class _Link:
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
        self._workers: _Workers | None = None
        self._bad_frames = 0
        self._done = anyio.Event()
        self._failure: SymphonyError | None = None
        self._deadlines: list[tuple[float, str, float]] = []
        self._timer_target = math.inf
        self._timer_wake = anyio.Event()

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
                self._workers = _Workers(
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
            pass  # the link is going down; run() reports why

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
            if idle >= timeout:
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
        within :data:`_TIMER_GRANULARITY` seconds."""
        pending = self.pending.open(msg, self.label)
        try:
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


# -- the server --------------------------------------------------------------------------------------


class ServerPeer(_Link):
    """The server's side of one connected client; also the bus
    :class:`~symphony.bus.endpoints.Endpoint` requests are routed to when the client handles
    a pattern."""

    def __init__(
        self, server: BusServer, conn: Connection, *, name: str, capabilities: Iterable[str]
    ) -> None:
        super().__init__(
            conn,
            label=name,
            heartbeat_interval=server.heartbeat_interval,
            heartbeat_timeout=server.heartbeat_timeout,
            max_workers=server.max_workers,
            request_timeout=server.bus.config.default_timeout,
        )
        self.server = server
        self.bus = server.bus
        self.name = name
        self.capabilities: AbstractSet[str] = frozenset(str(c) for c in capabilities)
        self.subscriptions: dict[str, Any] = {}
        self.routes: dict[str, Any] = {}
        self._validate = self.bus.config.validate_inbound

    # Endpoint interface -----------------------------------------------------------------------

    async def deliver(self, msg: Message) -> None:
        """Send an event to the client (delivered to its subscriptions matching the type)."""
        await self.conn.send(msg)

    async def request(self, msg: Message, timeout: float) -> Message | None:
        """Ask the client's handler to answer ``msg`` (the bus enforces ``timeout`` too)."""
        return await self.call(msg, timeout)

    # _Link hooks ------------------------------------------------------------------------------

    def on_batch(self) -> None:
        self.bus.health.beat(self.name)

    async def on_event(self, msg: Message) -> None:
        bus = self.bus
        if self._validate:
            try:
                bus.validate(msg)
            except SymphonyError as err:
                bus.metrics.invalid += 1
                _log.warning("bus.remote.invalid_event", peer=self.name, type=msg.type, code=err.code)
                return
        await bus.publish(msg)

    async def answer(self, msg: Message) -> Message:
        # As bus.ingest(msg, origin=self.name), minus its heartbeat (on_batch gave it) and its
        # final checkpoint (the answer goes out now).
        # The worker running this enforces the deadline (scoped=False): see _Workers.
        if self._validate:
            reply = await self.bus._ingest(msg, None, True, checkpoint=False, scoped=False)
            assert reply is not None
            return reply
        return await self.bus._dispatch(msg, None, None, checkpoint=False, scoped=False)

    def timeout_reply(self, msg: Message, timeout: float) -> Message:
        return self.bus.timed_out_elsewhere(msg, timeout, target=f"peer:{self.name}")

    async def on_control(self, msg: Message) -> Message | None:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        try:
            if msg.type == SUBSCRIBE:
                return msg.reply(self._subscribe(payload))
            if msg.type == UNSUBSCRIBE:
                sub = self.subscriptions.pop(str(payload.get("sid")), None)
                if sub is not None:
                    sub.close()
                return msg.reply({"ok": sub is not None})
            if msg.type == HANDLE:
                return msg.reply(self._handle(payload))
            if msg.type == UNHANDLE:
                route = self.routes.pop(str(payload.get("hid")), None)
                if route is not None:
                    self.bus.unhandle(route)
                return msg.reply({"ok": route is not None})
        except SymphonyError as err:
            return msg.fail(err)
        return await super().on_control(msg)

    def _subscribe(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        sid, pattern = payload.get("sid"), payload.get("pattern")
        if not isinstance(sid, str) or not sid or len(sid) > 64 or not isinstance(pattern, str):
            raise ValidationError(
                "subscribe needs a string 'sid' and 'pattern'", code="bus.bad_subscription", context={}
            )
        validate_pattern(pattern)
        old = self.subscriptions.pop(sid, None)
        if old is not None:
            old.close()
        buffer = payload.get("buffer")
        policy = payload.get("policy")
        send = self.conn.send
        headers_for = {SUBSCRIPTION_HEADER: sid}

        async def forward(msg: Message) -> None:
            tagged = attrs.evolve(msg, headers={**msg.headers, **headers_for})
            try:
                await send(tagged)
            except SerializationError as err:
                _log.warning("bus.remote.forward_failed", peer=self.name, type=msg.type, code=err.code)
            except TransportError:
                pass  # the link is closing; its subscriptions close with it

        self.subscriptions[sid] = self.bus.subscribe_callback(
            pattern,
            forward,
            buffer=buffer if isinstance(buffer, int) and not isinstance(buffer, bool) else None,
            policy=policy if policy in ("wait", "drop-oldest") else None,
            name=f"{self.name}:{pattern}",
        )
        return {"ok": True}

    def _handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        hid, pattern, priority = payload.get("hid"), payload.get("pattern"), payload.get("priority", 0)
        if not isinstance(hid, str) or not hid or len(hid) > 64 or not isinstance(pattern, str):
            raise ValidationError(
                "handle needs a string 'hid' and 'pattern'", code="bus.bad_route", context={}
            )
        old = self.routes.pop(hid, None)
        if old is not None:
            self.bus.unhandle(old)
        self.routes[hid] = self.bus.handle(pattern, self.name, priority=priority)
        return {"ok": True}

    async def cleanup(self, reason: str) -> None:
        """Forget everything this peer registered on the bus."""
        for sub in self.subscriptions.values():
            sub.close()
        self.subscriptions.clear()
        for route in self.routes.values():
            self.bus.unhandle(route)
        self.routes.clear()
        self.bus.router.remove_endpoint(self.name)
        await self.bus.endpoints.unregister(self.name, reason=reason)

    def __repr__(self) -> str:
        return f"<ServerPeer {self.name} {self.conn.peer.describe()}>"


class BusServer:
    """Serve ``bus`` on ``url`` (any registered transport scheme) until cancelled or closed.

    ``async with BusServer(bus, url) as server:`` starts it (``server.url`` is the bound
    address) and stops it on exit; ``await task_group.start(server.serve)`` does the same inside
    a task group. If the bus is not running yet, the server runs it (forwarded subscriptions
    need its worker tasks).

    ``codecs`` are the codecs offered to clients (default: every codec of ``bus.codecs``);
    ``options`` go to the transport (token, TLS files, allowed uids ...). Heartbeat settings
    default to the bus configuration (``heartbeat_interval``, ``heartbeat_timeout``).
    """

    def __init__(
        self,
        bus: Bus,
        url: str,
        *,
        options: Mapping[str, Any] | None = None,
        codecs: Sequence[str] | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        handshake_timeout: float = 5.0,
        max_workers: int = 256,
        transport: Any = None,
        kernel: Any = None,
    ) -> None:
        self.bus = bus
        self.requested_url = url
        self.url: str | None = None
        self.options = dict(options or {})
        self.codecs = list(codecs) if codecs is not None else list(bus.codecs.names())
        self.heartbeat_interval = _positive(
            "heartbeat_interval",
            bus.config.heartbeat_interval if heartbeat_interval is None else heartbeat_interval,
        )
        self.heartbeat_timeout = _positive(
            "heartbeat_timeout",
            bus.config.heartbeat_timeout if heartbeat_timeout is None else heartbeat_timeout,
        )
        self.handshake_timeout = _positive("handshake_timeout", handshake_timeout)
        self.max_workers = max_workers
        self.transport = transport or open_transport(url, bus.transports, kernel=kernel)
        self.peers: dict[str, ServerPeer] = {}
        self._numbers = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._outer: anyio.abc.TaskGroup | None = None

    async def serve(self, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Accept clients until cancelled; ``task_status.started(bound_url)`` once listening."""
        config = self.bus.config
        options = {
            "max_frame_size": config.max_frame_size,
            "busy_poll": config.busy_poll,
            **self.options,
            "codec": HANDSHAKE_CODEC,
        }
        async with anyio.create_task_group() as tg:
            self._tg = tg
            if not self.bus.running and not self.bus.closed:
                await tg.start(self.bus.run)
            serve = functools.partial(self.transport.serve, options=options)
            self.url = await tg.start(serve, self.requested_url, self._serve_peer)
            _log.info("bus.remote.serving", url=self.url, codecs=self.codecs)
            task_status.started(self.url)

    async def __aenter__(self) -> BusServer:
        self._outer = await start_in_own_task_group(self.serve)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        outer, self._outer = self._outer, None
        if outer is None:
            return None
        outer.cancel_scope.cancel()
        await _exit_quietly(outer, exc)
        return None

    async def aclose(self) -> None:
        """Stop accepting and drop every client."""
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        await anyio.lowlevel.checkpoint()

    async def _handshake(self, conn: Connection) -> tuple[Message, str]:
        try:
            with anyio.fail_after(self.handshake_timeout):
                hello = await conn.receive()
        except TimeoutError:
            raise TransportError(
                "no handshake from the peer",
                code="bus.handshake_timeout",
                context={"timeout": self.handshake_timeout},
            ) from None
        payload = hello.payload if isinstance(hello.payload, dict) else None
        if hello.type != HELLO or hello.kind != REQUEST or payload is None:
            raise TransportError(
                f"expected a {HELLO} request, got a {hello.kind} {hello.type!r}",
                code="bus.handshake_failed",
                context={"type": hello.type, "kind": hello.kind},
            )
        protocol = payload.get("protocol")
        if protocol != PROTOCOL_VERSION:
            raise TransportError(
                f"the peer speaks bus protocol {protocol!r}, this server speaks {PROTOCOL_VERSION}",
                code="bus.protocol_mismatch",
                context={"peer_protocol": repr(protocol), "protocol": PROTOCOL_VERSION},
            )
        offered = payload.get("codecs")
        offered = [c for c in offered if isinstance(c, str)] if isinstance(offered, list) else []
        chosen = next((c for c in offered if c in self.codecs and c in self.bus.codecs), None)
        if chosen is None:
            raise SerializationError(
                f"no common codec: the peer offers {offered}, this server has {self.codecs}",
                code="bus.no_common_codec",
                context={"offered": offered[:20], "available": self.codecs},
            )
        return hello, chosen

    async def serve_connection(self, conn: Connection) -> None:
        """Run the bus protocol on an already open connection until it ends (what ``serve``
        does for each accepted one). Foreign peers (``conn.native`` false, e.g. JSON-RPC on
        stdio) skip the handshake: their requests are routed and their notifications published."""
        await self._serve_peer(conn)

    async def _serve_peer(self, conn: Connection) -> None:
        if not conn.native:
            peer = ServerPeer(self, conn, name=f"{conn.peer.scheme}#{next(self._numbers)}", capabilities=())
            await self._run_peer(peer, conn, codec=conn.codec.name)
            return
        try:
            hello, chosen = await self._handshake(conn)
        except SymphonyError as err:
            _log.warning(
                "bus.remote.handshake_failed", peer=conn.peer.describe(), code=err.code, error=err.message
            )
            with anyio.move_on_after(1.0, shield=True):
                try:
                    await conn.send(Message("_bus.refused", err.to_wire(), kind=ERROR))
                except SymphonyError:
                    pass
            return
        payload = hello.payload
        raw_name = payload.get("name")
        base = raw_name if isinstance(raw_name, str) and 0 < len(raw_name) <= 64 else "peer"
        name = f"{base}#{next(self._numbers)}"
        caps = payload.get("capabilities")
        peer = ServerPeer(self, conn, name=name, capabilities=caps if isinstance(caps, list) else ())
        try:
            await conn.send(
                hello.reply(
                    {
                        "protocol": PROTOCOL_VERSION,
                        "codec": chosen,
                        "name": name,
                        "server": self.bus.name,
                        "heartbeat_interval": self.heartbeat_interval,
                    }
                )
            )
        except SymphonyError:
            return
        conn.set_codec(self.bus.codecs.get(chosen))
        await self._run_peer(peer, conn, codec=chosen)

    async def _run_peer(self, peer: ServerPeer, conn: Connection, *, codec: str) -> None:
        name = peer.name
        self.peers[name] = peer
        try:
            await self.bus.endpoints.register(peer)
        except SymphonyError as err:
            self.peers.pop(name, None)
            _log.warning("bus.remote.register_failed", peer=name, code=err.code)
            return
        _log.info("bus.remote.peer_connected", peer=name, address=conn.peer.describe(), codec=codec)
        reason = "closed"
        try:
            reason = await peer.run()
        finally:
            self.peers.pop(name, None)
            with anyio.CancelScope(shield=True):
                await peer.cleanup("disconnected")
            _log.info("bus.remote.peer_disconnected", peer=name, reason=reason)

    def __repr__(self) -> str:
        return f"<BusServer {self.url or self.requested_url} peers={len(self.peers)}>"


# -- the client ----------------------------------------------------------------------------------------


class RemoteSubscription:
    """Events from the server matching ``pattern``: an async iterator and async context manager.

    ``async with client.subscribe("a.#") as sub: async for msg in sub: ...`` -- entering (or the
    first iteration) waits until the server has the subscription, so events published after
    that are delivered. The local queue holds ``buffer`` events; when full, policy ``"wait"``
    stops reading the connection (backpressure up to the server's publishers) and
    ``"drop-oldest"`` drops and counts (``dropped``). Closing unsubscribes.
    """

    def __init__(self, client: BusClient, pattern: str, *, buffer: int, policy: str) -> None:
        validate_pattern(pattern)
        if buffer.__class__ is not int or buffer < 1 or policy not in ("wait", "drop-oldest"):
            raise ValidationError(
                "subscription buffer must be an integer >= 1 and policy 'wait' or 'drop-oldest'",
                code="bus.bad_subscription",
                context={"buffer": repr(buffer), "policy": repr(policy)},
            )
        self.client = client
        self.pattern = pattern
        self.buffer = buffer
        self.policy = policy
        self.sid = new_id()[:16]
        self.delivered = 0
        self.dropped = 0
        self._queue: deque[Message] = deque()
        self._ready: Signal | None = None
        self._space: anyio.Event | None = None
        self._registered = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether this subscription was closed."""
        return self._closed

    async def _offer(self, msg: Message) -> None:
        if self._closed:
            return
        queue = self._queue
        while len(queue) >= self.buffer:
            if self.policy == "drop-oldest":
                queue.popleft()
                self.dropped += 1
                break
            self._space = space = self._space or anyio.Event()
            await space.wait()
            if self._closed:
                return
        queue.append(msg)
        self.delivered += 1
        ready = self._ready
        if ready is not None:
            self._ready = None
            ready.set()

    async def wait_registered(self) -> None:
        """Wait until the server forwards events for this subscription."""
        if not self._closed and self.client._subs.get(self.sid) is self:
            await self.client._register_subscription(self)

    def __aiter__(self) -> RemoteSubscription:
        return self

    async def __anext__(self) -> Message:
        if not self._registered:
            self._registered = True
            await self.wait_registered()
        queue = self._queue
        while not queue:
            if self._closed:
                raise StopAsyncIteration
            ready = self._ready
            if ready is None:
                ready = self._ready = Signal()
            await ready.wait()
        msg = queue.popleft()
        space = self._space
        if space is not None:
            self._space = None
            space.set()
        return msg

    async def receive(self, timeout: float | None = None) -> Message:
        """The next event; ``OperationTimeoutError(bus.receive_timeout)`` after ``timeout`` s,
        ``TransportError(bus.subscription_closed)`` once closed and drained."""
        try:
            with anyio.fail_after(timeout):
                return await self.__anext__()
        except StopAsyncIteration:
            raise TransportError(
                f"subscription to {self.pattern!r} is closed",
                code="bus.subscription_closed",
                context={"pattern": self.pattern},
            ) from None
        except TimeoutError:
            raise OperationTimeoutError(
                f"no event on {self.pattern!r} within {timeout} s",
                code="bus.receive_timeout",
                context={"pattern": self.pattern, "timeout": timeout},
            ) from None

    async def aclose(self) -> None:
        """Unsubscribe (queued events can still be read)."""
        if self._closed:
            return
        self._closed = True
        for event in (self._ready, self._space):
            if event is not None:
                event.set()
        await self.client._unsubscribe(self)

    async def __aenter__(self) -> RemoteSubscription:
        if not self._registered:
            self._registered = True
            await self.wait_registered()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with anyio.CancelScope(shield=True):
            await self.aclose()

    def __repr__(self) -> str:
        return f"<RemoteSubscription {self.pattern!r} depth={len(self._queue)} dropped={self.dropped}>"


@attrs.define(eq=False)
class ClientHandler:
    """A handler a :class:`BusClient` registered; ``await client.unhandle(h)`` removes it."""

    hid: str
    pattern: str
    priority: int
    route: Any


class _ClientLink(_Link):
    def __init__(self, client: BusClient, conn: Connection, label: str) -> None:
        super().__init__(
            conn,
            label=label,
            heartbeat_interval=client.heartbeat_interval,
            heartbeat_timeout=client.heartbeat_timeout,
            max_workers=client.max_workers,
            request_timeout=client.local.config.default_timeout,
        )
        self.client = client

    async def on_event(self, msg: Message) -> None:
        await self.client._deliver(msg)

    async def answer(self, msg: Message) -> Message:
        # The worker running this enforces the deadline (scoped=False): see _Workers.
        return await self.client.local._dispatch(msg, None, None, checkpoint=False, scoped=False)

    def timeout_reply(self, msg: Message, timeout: float) -> Message:
        return self.client.local.timed_out_elsewhere(msg, timeout, target=f"client:{self.client.name}")


class BusClient:
    """A connection to a :class:`BusServer` (or to a JSON-RPC child process over ``stdio:``).

    Use ``async with BusClient.connect(url, ...) as client:``. Arguments:

    ``codec``               preferred codec (the other built-in is offered as a fallback)
    ``options``             transport options (``token``, ``cafile``, ``server_uids`` ...)
    ``reconnect``           a :class:`Backoff` policy, or ``False`` to give up when the link drops
    ``wait_for_server``     retry the *first* connection with the policy too (default: fail fast)
    ``default_timeout``     seconds a :meth:`request` waits when given no timeout
    ``heartbeat_interval``  ping the server after this much silence (seconds)
    ``heartbeat_timeout``   drop the link after this much silence (seconds)
    ``name``/``capabilities``  how the server's bus lists this client as an endpoint
    """

    def __init__(
        self,
        url: str,
        *,
        codec: str = "msgpack",
        options: Mapping[str, Any] | None = None,
        reconnect: Backoff | bool = True,
        wait_for_server: bool = False,
        default_timeout: float = 5.0,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 3.0,
        handler_timeout: float = 60.0,
        name: str = "client",
        capabilities: Iterable[str] = (),
        max_workers: int = 64,
        transport: Any = None,
        registry: Any = None,
        kernel: Any = None,
    ) -> None:
        from symphony.bus.core import Bus

        self.url = url
        codec_obj = resolve_codec(codec)
        self.codec = codec_obj.name
        self.options = dict(options or {})
        if reconnect is True:
            reconnect = Backoff()
        self.policy: Backoff | None = reconnect if isinstance(reconnect, Backoff) else None
        self.wait_for_server = wait_for_server
        self.default_timeout = _positive("default_timeout", default_timeout)
        self.heartbeat_interval = _positive("heartbeat_interval", heartbeat_interval)
        self.heartbeat_timeout = _positive("heartbeat_timeout", heartbeat_timeout)
        self.handshake_timeout = _positive(
            "connect_timeout", self.options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        )
        self.name = name
        self.capabilities = sorted(set(capabilities))
        self.max_workers = max_workers
        self.local = Bus(
            config={"default_timeout": _positive("handler_timeout", handler_timeout)}, name=f"{name}-local"
        )
        self._reconnector = Reconnector(
            url,
            policy=self.policy or Backoff(max_attempts=1),
            options={"codec": HANDSHAKE_CODEC, **self.options},
            transport=transport,
            registry=registry,
            kernel=kernel,
        )
        self.server_name: str | None = None
        self.endpoint_name: str | None = None
        self.connections = 0
        self._link: _ClientLink | None = None
        self._ready = anyio.Event()
        self._dead: SymphonyError | None = None
        self._closing = False
        self._subs: dict[str, RemoteSubscription] = {}
        self._sub_trie: TopicTrie[RemoteSubscription] = TopicTrie()
        self._handlers: dict[str, ClientHandler] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        # Message ids: a random prefix per client plus a counter -- unique, and cheaper than a
        # uuid4 per message on the request path.
        prefix = new_id()[:20]
        counter = itertools.count(1)
        self._next_id: Callable[[], str] = lambda: f"{prefix}{next(counter):x}"

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, **kwargs: Any) -> AsyncIterator[BusClient]:
        """Connect (see the class documentation for the arguments); close on exit."""
        client = cls(url, **kwargs)
        async with client:
            yield client

    async def __aenter__(self) -> BusClient:
        # The first connection is made here, outside the task group, so that its failure
        # reaches the caller as the plain error (no exception group).
        link = await self._open(first=True)
        self._link = link
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._supervise, link)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, self._tg = self._tg, None
        with anyio.CancelScope(shield=True):
            await self.aclose()
        if tg is None:
            return None
        tg.cancel_scope.cancel()
        await _exit_quietly(tg, exc)
        return None

    async def aclose(self) -> None:
        """Close the connection and stop reconnecting; waiting requests fail with peer_lost."""
        self._closing = True
        link = self._link
        if link is not None:
            await link.aclose("the client closed")
        for sub in list(self._subs.values()):
            sub._closed = True
            for event in (sub._ready, sub._space):
                if event is not None:
                    event.set()
        self._ready.set()
        await self.local.aclose()

    @property
    def connected(self) -> bool:
        """Whether a connection is up right now."""
        return self._link is not None and not self._link.closed

    @property
    def native(self) -> bool:
        """Whether the server speaks the bus protocol (False for JSON-RPC stdio children)."""
        return self._link is None or self._link.conn.native

    async def _open(self, first: bool) -> _ClientLink:
        if first and not self.wait_for_server:
            conn = await self._reconnector.connect_once()
            try:
                return await self._greet(conn)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await conn.aclose()
                raise
        # Connecting and the handshake are retried together: a server that is still going down
        # (or coming up) may accept the connection and then reset it.
        link: _ClientLink = await self._reconnector.connect(setup=self._greet)
        return link

    async def _greet(self, conn: Connection) -> _ClientLink:
        """Run the handshake on a new connection and make it a link."""
        if conn.native:
            await self._handshake(conn)
        else:
            self.server_name = conn.peer.describe()
        return _ClientLink(self, conn, label=self.server_name or conn.peer.describe())

    async def _handshake(self, conn: Connection) -> None:
        offered = [self.codec, *(c for c in ("msgpack", "json") if c != self.codec)]
        hello = Message.request(
            HELLO,
            {
                "protocol": PROTOCOL_VERSION,
                "codecs": offered,
                "name": self.name,
                "capabilities": self.capabilities,
                "heartbeat_interval": self.heartbeat_interval,
            },
        )
        try:
            with anyio.fail_after(self.handshake_timeout):
                await conn.send(hello)
                answer = await conn.receive()
        except TimeoutError:
            raise OperationTimeoutError(
                f"the server at {self.url} did not answer the handshake",
                code="bus.handshake_timeout",
                context={"url": self.url},
            ) from None
        if answer.kind == ERROR:
            answer.raise_if_error()
        payload = answer.payload if isinstance(answer.payload, dict) else {}
        codec = payload.get("codec")
        if answer.kind != RESPONSE or answer.correlation_id != hello.id or not isinstance(codec, str):
            raise TransportError(
                f"{self.url} answered the handshake with {answer.kind} {answer.type!r}",
                code="bus.handshake_failed",
                context={"url": self.url, "type": answer.type, "kind": answer.kind},
            )
        conn.set_codec(resolve_codec(codec))
        self.server_name = str(payload.get("server", self.url))
        self.endpoint_name = payload.get("name") if isinstance(payload.get("name"), str) else None

    async def _supervise(self, link: _ClientLink) -> None:
        first = True
        while not self._closing:
            if not first:
                try:
                    link = await self._open(first=False)
                except SymphonyError as exc:
                    self._dead = exc
                    _log.warning("bus.remote.gave_up", url=self.url, code=exc.code, error=exc.message)
                    self._ready.set()
                    return
                _log.info("bus.remote.reconnected", url=self.url, attempts=self._reconnector.attempts)
            first = False
            self.connections += 1
            self._link = link
            reason = await link.run(after_start=functools.partial(self._restore, link))
            self._link = None
            if self._ready.is_set():
                self._ready = anyio.Event()
            if self._closing:
                break
            if self.policy is None:
                self._dead = peer_lost(link.label, reason)
                self._ready.set()
                return
            _log.info("bus.remote.connection_lost", url=self.url, reason=reason)
        self._ready.set()

    async def _restore(self, link: _ClientLink) -> None:
        """After (re)connecting: register every live subscription and handler again."""
        if link.conn.native:
            for sub in list(self._subs.values()):
                await self._control(link, SUBSCRIBE, self._sub_payload(sub))
            for handler in list(self._handlers.values()):
                await self._control(link, HANDLE, self._handler_payload(handler))
        if self._link is link:
            self._ready.set()

    async def _current_link(self, timeout: float) -> _ClientLink:
        link = self._link
        if link is not None and not link.closed and self._ready.is_set():
            return link
        try:
            with anyio.fail_after(timeout):
                while True:
                    if self._closing or self._tg is None:
                        raise TransportError(
                            "the client is closed", code="transport.closed_locally", context={"url": self.url}
                        )
                    if self._dead is not None:
                        raise TransportError(
                            f"not connected to {self.url}: {self._dead.message}",
                            code="transport.disconnected",
                            context={"url": self.url, "cause": self._dead.code},
                        ) from self._dead
                    link = self._link
                    ready = self._ready
                    if link is not None and not link.closed and ready.is_set():
                        return link
                    await ready.wait()
        except TimeoutError:
            raise OperationTimeoutError(
                f"not connected to {self.url} within {timeout} s",
                code="bus.not_connected",
                context={"url": self.url, "timeout": timeout},
            ) from None

    async def _control(self, link: _ClientLink, type: str, payload: dict[str, Any]) -> None:
        reply = await link.call(Message.request(type, payload), self.default_timeout)
        reply.raise_if_error()

    # -- data ------------------------------------------------------------------------------------

    async def request(
        self,
        type: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        version: int = 1,
    ) -> Message:
        """Send a request and return the response message; raise the handler's error.

        Fails with ``TransportError(transport.peer_lost)`` if the connection drops while
        waiting and ``OperationTimeoutError(bus.request_timeout)`` after ``timeout`` seconds
        (default ``default_timeout``); the waiter is always removed.
        """
        _check_data_type(type)
        if timeout is None:
            timeout = self.default_timeout
        if not headers and version == 1 and version.__class__ is int and is_valid_type(type):
            # The common case, every field known good: skip the constructor's checks.
            msg = _trusted(type, payload, self._next_id(), REQUEST, 1, _time(), None, None, {})
        else:
            msg = Message(
                type,
                payload,
                id=self._next_id(),
                kind=REQUEST,
                version=version,
                headers=dict(headers) if headers else {},
            )
        link = self._link
        if link is None or link.closed or not self._ready.is_set():
            start = _current_time()
            link = await self._current_link(timeout)
            timeout = max(timeout - (_current_time() - start), 0.001)
        reply = await link.call(msg, timeout)
        if reply.kind == ERROR:
            reply.raise_if_error()
        return reply

    async def send(
        self, type: str, payload: Any = None, *, headers: Mapping[str, str] | None = None, version: int = 1
    ) -> None:
        """Publish an event on the server's bus (one-way)."""
        _check_data_type(type)
        await self.publish(Message(type, payload, version=version, headers=dict(headers) if headers else {}))

    async def publish(self, msg: Message) -> None:
        """Publish an already built event message on the server's bus."""
        _check_event(msg, "publish()")
        await (await self._event_link()).conn.send(msg)

    async def send_many(self, messages: Iterable[Message | tuple[str, Any]]) -> None:
        """Publish many events with one write (the fast path for one-way throughput)."""
        batch = [m if isinstance(m, Message) else Message(m[0], m[1]) for m in messages]
        for msg in batch:
            _check_event(msg, "send_many()")
        await (await self._event_link()).conn.send_many(batch)

    async def _event_link(self) -> _ClientLink:
        """The live link, waiting (up to the default timeout) for one while reconnecting."""
        link = self._link
        if link is None or link.closed or not self._ready.is_set():
            link = await self._current_link(self.default_timeout)
        return link

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, pattern: str, *, buffer: int = 10_000, policy: str = "wait") -> RemoteSubscription:
        """Subscribe to server events matching ``pattern`` (see :class:`RemoteSubscription`)."""
        sub = RemoteSubscription(self, pattern, buffer=buffer, policy=policy)
        self._subs[sub.sid] = sub
        self._sub_trie.add(pattern, sub)
        return sub

    @staticmethod
    def _sub_payload(sub: RemoteSubscription) -> dict[str, Any]:
        return {"sid": sub.sid, "pattern": sub.pattern}

    async def _register_subscription(self, sub: RemoteSubscription) -> None:
        link = await self._current_link(self.default_timeout)
        if link.conn.native:
            await self._control(link, SUBSCRIBE, self._sub_payload(sub))

    async def _unsubscribe(self, sub: RemoteSubscription) -> None:
        if self._subs.pop(sub.sid, None) is None:
            return
        self._sub_trie.remove(sub.pattern, sub)
        link = self._link
        if link is not None and not link.closed and link.conn.native:
            try:
                await self._control(link, UNSUBSCRIBE, {"sid": sub.sid})
            except SymphonyError:
                pass  # the server forgets it with the connection anyway

    async def _deliver(self, msg: Message) -> None:
        headers = msg.headers
        sid = headers.get(SUBSCRIPTION_HEADER) if headers else None
        if sid is not None:
            sub = self._subs.get(sid)
            if sub is not None:
                # Hand the event over as it was published: without the routing header.
                rest = {k: v for k, v in headers.items() if k != SUBSCRIPTION_HEADER}
                await sub._offer(attrs.evolve(msg, headers=rest))
            return
        for sub in self._sub_trie.match(msg.type):
            await sub._offer(msg)

    # -- handlers --------------------------------------------------------------------------------

    async def handle(
        self, pattern: str, handler: Callable[[Message], Any], *, priority: int = 0
    ) -> ClientHandler:
        """Answer the server bus's requests matching ``pattern`` with ``handler`` (an async or
        plain function ``Message -> payload | Message``; a raised SymphonyError travels back)."""
        route = self.local.handle(pattern, handler, priority=priority)
        entry = ClientHandler(hid=new_id()[:16], pattern=pattern, priority=priority, route=route)
        self._handlers[entry.hid] = entry
        try:
            # Registering is idempotent (by hid): a reconnection restoring it too is harmless.
            link = await self._current_link(self.default_timeout)
            if link.conn.native:
                await self._control(link, HANDLE, self._handler_payload(entry))
        except BaseException:
            self._handlers.pop(entry.hid, None)
            self.local.unhandle(route)
            raise
        return entry

    @staticmethod
    def _handler_payload(entry: ClientHandler) -> dict[str, Any]:
        return {"hid": entry.hid, "pattern": entry.pattern, "priority": entry.priority}

    async def unhandle(self, entry: ClientHandler) -> None:
        """Stop answering ``entry.pattern``."""
        if self._handlers.pop(entry.hid, None) is None:
            return
        self.local.unhandle(entry.route)
        link = self._link
        if link is not None and not link.closed and link.conn.native:
            try:
                await self._control(link, UNHANDLE, {"hid": entry.hid})
            except SymphonyError:
                pass

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("dead" if self._dead else "connecting")
        return f"<BusClient {self.url} {state}>"
