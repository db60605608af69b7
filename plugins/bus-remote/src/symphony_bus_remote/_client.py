"""The calling side of the bus across processes: :class:`BusClient` connects to a
:class:`~symphony_bus_remote.BusServer` (reconnecting when it is lost) and offers requests,
events, :class:`RemoteSubscription` and handlers (:class:`ClientHandler`) the server routes
to. See :mod:`symphony_bus_remote` for the protocol.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from symphony.bus import Connection, Message, message_from_wire
from symphony.bus.links import (
    ERROR,
    REQUEST,
    RESPONSE,
    Signal,
    TopicTrie,
    is_valid_type,
    new_id,
    receive_next,
    resolve_codec,
    trusted_message,
    validate_pattern,
)
from symphony.commons.errors import (
    OperationTimeoutError,
    SymphonyError,
    TransportError,
    ValidationError,
)
from symphony.commons.log import get_logger
from symphony_bus_remote._backoff import Backoff, Reconnector
from symphony_bus_remote._link import (
    HANDLE,
    HELLO,
    PROTOCOL_VERSION,
    SUBSCRIBE,
    SUBSCRIPTION_HEADER,
    UNHANDLE,
    UNSUBSCRIBE,
    Link,
    check_data_type,
    check_event,
    exit_quietly,
    peer_lost,
    positive_seconds,
)
from symphony_bus_remote._sockets import DEFAULT_CONNECT_TIMEOUT, HANDSHAKE_CODEC

__all__ = ["BusClient", "ClientHandler", "RemoteSubscription"]

_log = get_logger("symphony.bus.remote")
_current_time = anyio.current_time
_time = time.time


class RemoteSubscription:
    """Events from the server matching ``pattern``: an async iterator and async context manager.

    ``async with client.subscribe("a.#") as sub: async for msg in sub: ...`` -- entering (or the
    first iteration) waits until the server has the subscription, so events published after
    that are delivered. The local queue holds ``buffer`` events; when full, policy ``"wait"``
    stops reading the connection (backpressure up to the server's publishers) and
    ``"drop-oldest"`` drops and counts (``dropped``). Closing unsubscribes.

    A *traffic* subscription (``client.subscribe(pattern, traffic=True)``) receives every
    message of a matching type that passes through the server's bus -- requests, responses and
    errors as well as events -- each as it was there (kind, id, correlation id), for
    monitoring; the server drops its oldest undelivered ones rather than slow anything down.
    """

    def __init__(
        self, client: BusClient, pattern: str, *, buffer: int, policy: str, traffic: bool = False
    ) -> None:
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
        self.traffic = traffic
        self.sid = new_id()[:16]
        self.delivered = 0
        self.dropped = 0
        self._queue: deque[Message] = deque()
        self._ready: Signal | None = None
        self._space: anyio.Event | None = None
        self._registered = False
        self._closed = False
        self._lost: SymphonyError | None = None

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
                if self._lost is not None:
                    raise self._lost
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
        return await receive_next(self, timeout, pattern=self.pattern, context={})

    def _end(self, error: SymphonyError) -> None:
        """The client gave up on the server: queued events can still be read, then ``error``."""
        self._lost = error
        self._closed = True
        for event in (self._ready, self._space):
            if event is not None:
                event.set()

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


class _ClientLink(Link):
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
        # The worker running this enforces the deadline: see Workers.
        return await self.client.local.answer_remote(msg)

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
        from symphony.bus import Bus

        self.url = url
        codec_obj = resolve_codec(codec)
        self.codec = codec_obj.name
        self.options = dict(options or {})
        if reconnect is True:
            reconnect = Backoff()
        self.policy: Backoff | None = reconnect if isinstance(reconnect, Backoff) else None
        self.wait_for_server = wait_for_server
        self.default_timeout = positive_seconds("default_timeout", default_timeout)
        self.heartbeat_interval = positive_seconds("heartbeat_interval", heartbeat_interval)
        self.heartbeat_timeout = positive_seconds("heartbeat_timeout", heartbeat_timeout)
        self.handshake_timeout = positive_seconds(
            "connect_timeout", self.options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        )
        self.name = name
        self.capabilities = sorted(set(capabilities))
        self.max_workers = max_workers
        self.local = Bus(
            config={"default_timeout": positive_seconds("handler_timeout", handler_timeout)}, name=f"{name}-local"
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
        await exit_quietly(tg, exc)
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
                    self._end_subscriptions(exc)
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
                self._end_subscriptions(self._dead)
                self._ready.set()
                return
            _log.info("bus.remote.connection_lost", url=self.url, reason=reason)
        self._ready.set()

    def _end_subscriptions(self, error: SymphonyError) -> None:
        """No more connections: every subscription ends (after its queued events) with ``error``."""
        for sub in list(self._subs.values()):
            sub._end(error)

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
        check_data_type(type)
        if timeout is None:
            timeout = self.default_timeout
        if not headers and version == 1 and version.__class__ is int and is_valid_type(type):
            # The common case, every field known good: skip the constructor's checks.
            msg = trusted_message(type, payload, self._next_id(), REQUEST, 1, _time(), None, None, {})
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
        check_data_type(type)
        await self.publish(Message(type, payload, version=version, headers=dict(headers) if headers else {}))

    async def publish(self, msg: Message) -> None:
        """Publish an already built event message on the server's bus."""
        check_event(msg, "publish()")
        await (await self._event_link()).conn.send(msg)

    async def send_many(self, messages: Iterable[Message | tuple[str, Any]]) -> None:
        """Publish many events with one write (the fast path for one-way throughput)."""
        batch = [m if isinstance(m, Message) else Message(m[0], m[1]) for m in messages]
        for msg in batch:
            check_event(msg, "send_many()")
        await (await self._event_link()).conn.send_many(batch)

    async def _event_link(self) -> _ClientLink:
        """The live link, waiting (up to the default timeout) for one while reconnecting."""
        link = self._link
        if link is None or link.closed or not self._ready.is_set():
            link = await self._current_link(self.default_timeout)
        return link

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(
        self, pattern: str, *, buffer: int = 10_000, policy: str | None = None, traffic: bool = False
    ) -> RemoteSubscription:
        """Subscribe to server events matching ``pattern`` (see :class:`RemoteSubscription`);
        ``traffic=True`` for every message passing through the server's bus. ``policy``
        defaults to ``"wait"`` (``"drop-oldest"`` for traffic)."""
        if policy is None:
            policy = "drop-oldest" if traffic else "wait"
        sub = RemoteSubscription(self, pattern, buffer=buffer, policy=policy, traffic=traffic)
        self._subs[sub.sid] = sub
        self._sub_trie.add(pattern, sub)
        return sub

    @staticmethod
    def _sub_payload(sub: RemoteSubscription) -> dict[str, Any]:
        if sub.traffic:
            return {"sid": sub.sid, "pattern": sub.pattern, "traffic": True}
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
            if sub is None:
                return
            if sub.traffic:
                # The server wraps what it saw (any kind) in an event: unwrap it.
                try:
                    seen = message_from_wire(msg.payload)
                except SymphonyError as err:
                    _log.warning("bus.remote.bad_traffic", type=msg.type, code=err.code, error=err.message)
                    return
                await sub._offer(seen)
                return
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
