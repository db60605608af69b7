"""The in-process message bus: pub/sub, request/response routing, endpoints, health, metrics.

The package README shows a complete example.

Publish/subscribe
-----------------
``subscribe(pattern)`` returns a bounded queue (its wildcards: :mod:`symphony.bus._topics`; its
backpressure policies and ``traffic=True``: :mod:`symphony.bus._subscription`).
``subscribe_callback(pattern, fn)`` calls a plain function inline or runs an ``async def`` one
in a worker task. ``await publish(msg)`` returns how many subscriptions matched;
``publish_nowait`` never waits.

Request/response
----------------
``handle(pattern, handler, priority=...)`` routes requests whose type matches ``pattern`` to
``handler`` (an async or plain function ``Message -> payload | Message``) or to an endpoint by
name; the highest priority wins, ties go to the earliest registration, and
``set_default_route`` catches the rest (see :mod:`symphony.bus._routing`).
``await request(type, payload, timeout=...)`` returns the response message or raises:

* what the handler raised, if it raised a :class:`~symphony.commons.errors.SymphonyError` --
  same class, code, message, context and hint, whether the handler ran here or in another
  process (errors travel as ``error`` messages carrying ``error.to_wire()``);
* ``InternalError(code="bus.handler_crashed")`` if it raised anything else (the traceback is
  logged where the handler ran);
* ``OperationTimeoutError(code="bus.request_timeout")`` after ``timeout`` seconds (default
  ``bus.default_timeout``); the handler is cancelled;
* ``NotFoundError(code="bus.no_route")`` when nothing can answer.

``dispatch(msg)`` is the same without raising: it always returns the ``response`` or ``error``
message (what a server sends back to a remote peer). ``request_all`` asks every matching
route at once and returns all their answers. Requests in flight sit in ``bus.pending`` (a
:class:`~symphony.bus.links.Correlator`) and leave it on answer, timeout or cancellation.

Remote peers
------------
Transports register each connected peer as an :class:`~symphony.bus.Endpoint`
(``await bus.endpoints.register(peer)``), route requests to it (``bus.handle("pit.#",
"peer-name")`` or ``request(..., to="peer-name")``), forward events to it
(``bus.forward(pattern, peer)``) and feed what it sends into ``await bus.ingest(msg,
origin=peer.name)``, which validates the payload against the message-type registry (the bus
boundary), counts as a heartbeat, publishes events, dispatches requests and resolves answers.
A link that answers its peer's requests from worker tasks of its own (``symphony_bus_remote``)
hands them to ``await bus.answer_remote(msg)`` instead.

Lifecycle
---------
Publishing, subscribing and requests work on a bare ``Bus()``. The background tasks -- the
health monitor (heartbeat checks and pings) and the workers of async callbacks -- run inside
``async with bus:`` or ``await task_group.start(bus.run)``. ``aclose()`` closes every
subscription and answers every pending request with ``TransportError(code="bus.closed")``.

The bus is not thread-safe: call it from the event loop (``anyio.from_thread`` from threads).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup, TaskStatus

from symphony.bus._config import BusConfig
from symphony.bus._correlation import Correlator, PendingRequest, request_timeout_error
from symphony.bus._endpoints import Endpoint, EndpointRegistry
from symphony.bus._health import HealthMonitor, HealthStatus
from symphony.bus._message import ERROR, EVENT, REQUEST, RESPONSE, Message, new_id
from symphony.bus._metrics import BusMetrics
from symphony.bus._registries import CodecRegistry, MessageTypeRegistry, TransportRegistry
from symphony.bus._routing import Handler, Route, Router
from symphony.bus._subscription import DROP_OLDEST, CallbackSubscription, MessageFilter, Policy, Subscription
from symphony.bus._sync import start_in_own_task_group
from symphony.bus._topics import TopicTrie
from symphony.commons.errors import (
    InternalError,
    NotFoundError,
    OperationTimeoutError,
    SymphonyError,
    TransportError,
    ValidationError,
)

__all__ = ["ENDPOINT_HEALTH", "Bus"]

_Sub = TypeVar("_Sub", bound=Subscription)

ENDPOINT_HEALTH = "bus.endpoint.health"
"""Type of the event published when an endpoint's health changes."""

_perf_counter = time.perf_counter


def _no_route(type: str, version: int) -> NotFoundError:
    return NotFoundError(
        f"no route for request {type!r}",
        code="bus.no_route",
        context={"type": type, "version": version},
        hint="register a handler with bus.handle(pattern, handler)",
    )


def _not_a_message(method: str, value: object) -> ValidationError:
    return ValidationError(
        f"{method}() takes a Message, not {type(value).__name__}", code="bus.bad_message", context={}
    )


class Bus:
    """The Symphony message bus (see the module documentation).

    All arguments are optional: ``Bus()`` has the built-in codecs, an empty message-type
    registry and the schema defaults of :data:`~symphony.bus.BUS_CONFIG_SCHEMA`.
    """

    def __init__(
        self,
        *,
        config: BusConfig | Mapping[str, Any] | None = None,
        codecs: CodecRegistry | None = None,
        message_types: MessageTypeRegistry | None = None,
        transports: TransportRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "bus",
    ) -> None:
        self.config: BusConfig = config if isinstance(config, BusConfig) else BusConfig.from_mapping(config)
        self.name = name
        self.codecs: CodecRegistry = codecs if codecs is not None else CodecRegistry()
        self.message_types: MessageTypeRegistry = (
            message_types
            if message_types is not None
            else MessageTypeRegistry(unknown=self.config.unknown_message_types)
        )
        self.transports: TransportRegistry = transports if transports is not None else TransportRegistry()
        from symphony.commons.log import get_logger

        self._log = get_logger("symphony.bus")
        self._trie: TopicTrie[Subscription] = TopicTrie()
        self._traffic: TopicTrie[Subscription] = TopicTrie()  # traffic subscriptions
        self._tapped = 0  # how many are open: the hot paths test only this
        self._subs: dict[Subscription, None] = {}
        self.pending = Correlator()
        self.metrics = BusMetrics(subscriptions=lambda: list(self._subs), pending=lambda: len(self.pending))
        self.router = Router()
        self.health = HealthMonitor(
            interval=self.config.heartbeat_interval,
            timeout=self.config.heartbeat_timeout,
            clock=clock,
            on_change=self._health_changed,
        )
        self.endpoints = EndpointRegistry(self)
        self._tg: TaskGroup | None = None
        self._scheduled = False  # its kernel has a start_soon(run) pending
        self._outer_tg: TaskGroup | None = None
        self._closed = False

    # -- construction from a kernel -------------------------------------------------------

    @classmethod
    def from_kernel(cls, kernel: Any) -> Bus:
        """The bus of ``kernel``: its codec, message-type and transport registries (after
        activating every ``codec:*`` and ``message-type:*`` provider) and its ``[bus]`` section.

        When the kernel is open its background tasks start in the kernel's task group;
        otherwise run them with ``async with bus`` or ``task_group.start(bus.run)``.
        """
        kernel.activate_providers("codec:")
        kernel.activate_providers("message-type:")
        from symphony.bus._registries import kernel_registry

        codecs = kernel_registry(kernel, "codecs")
        message_types = kernel_registry(kernel, "message_types")
        transports = kernel_registry(kernel, "transports")
        try:
            section = kernel.config.section("bus")
        except (SymphonyError, KeyError):
            section = {}
        config = BusConfig.from_mapping(section, validated=True)  # the kernel's config validated [bus]
        bus = cls(config=config, codecs=codecs, message_types=message_types, transports=transports)
        message_types.unknown = bus.config.unknown_message_types
        from symphony.bus._registries import BusHandlerRegistry

        # Handlers plugins expose on the bus: routed here, so whatever serves this bus (the
        # `symphony serve` command, an embedding host) answers them.
        handlers = kernel.add_registry("bus_handlers", "symphony_register_bus_handlers", BusHandlerRegistry)
        handlers.bind(bus)
        kernel.activate_providers("bus-handler:")
        start_soon = getattr(kernel, "start_soon", None)
        if start_soon is not None:
            try:
                start_soon(bus.run)
                bus._scheduled = True
            except (SymphonyError, RuntimeError) as exc:
                bus._log.debug("bus.not_started", reason=str(exc))
        return bus

    # -- codecs and validation ------------------------------------------------------------

    @property
    def codec(self) -> Any:
        """The configured codec (``bus.codec``) from the codec registry."""
        return self.codecs.get(self.config.codec)

    def validate(self, msg: Message) -> None:
        """Check ``msg`` against the message-type registry (``ValidationError`` / ``NotFoundError``)."""
        self.message_types.validate(msg)

    # -- publish / subscribe --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(
                f"the bus {self.name!r} is closed", code="bus.closed", context={"bus": self.name}
            )

    def subscribe(
        self,
        pattern: str,
        *,
        filter: MessageFilter | None = None,
        buffer: int | None = None,
        policy: Policy | None = None,
        name: str | None = None,
        traffic: bool = False,
        on_slow: Callable[[Subscription], Any] | None = None,
    ) -> Subscription:
        """Subscribe to messages whose type matches ``pattern``; see :class:`Subscription`.

        Messages published after this call returns are queued, even before iteration starts.
        ``traffic=True`` also gives the requests and answers that pass through the bus (see
        :mod:`symphony.bus._subscription`; the policy is then ``"drop-oldest"``).
        ``on_slow(sub)`` is called if the subscription is dropped as a slow consumer (its
        ``"wait"`` queue stayed full for ``bus.slow_consumer_timeout`` seconds).
        """
        return self._attach(
            Subscription(self, pattern, **self._options(filter, buffer, policy, name, traffic, on_slow))
        )

    def subscribe_callback(
        self,
        pattern: str,
        callback: Callable[[Message], Any],
        *,
        filter: MessageFilter | None = None,
        buffer: int | None = None,
        policy: Policy | None = None,
        name: str | None = None,
        traffic: bool = False,
        on_slow: Callable[[Subscription], Any] | None = None,
    ) -> CallbackSubscription:
        """Call ``callback(msg)`` for each matching message (inline if plain, in a worker task
        if ``async def``; the worker runs while the bus runs). Close the returned handle to stop.
        ``traffic`` and ``on_slow`` as for :meth:`subscribe` (a plain callback then runs inside
        every matching request: keep it short)."""
        name = name or getattr(callback, "__qualname__", None)
        options = self._options(filter, buffer, policy, name, traffic, on_slow)
        sub = self._attach(CallbackSubscription(self, pattern, callback, **options))
        if sub.is_async and self._tg is not None:
            self._tg.start_soon(sub._work, name=f"bus-callback:{sub.name}")
        return sub

    def forward(
        self,
        pattern: str,
        endpoint: Endpoint,
        *,
        filter: MessageFilter | None = None,
        buffer: int | None = None,
        policy: Policy | None = None,
    ) -> CallbackSubscription:
        """Deliver matching messages to ``endpoint.deliver`` from a bounded queue (a worker task)."""

        async def deliver(msg: Message) -> None:
            await endpoint.deliver(msg)

        return self.subscribe_callback(
            pattern, deliver, filter=filter, buffer=buffer, policy=policy, name=f"forward:{endpoint.name}"
        )

    def _options(
        self,
        filter: MessageFilter | None,
        buffer: int | None,
        policy: Policy | None,
        name: str | None,
        traffic: bool,
        on_slow: Callable[[Subscription], Any] | None,
    ) -> dict[str, Any]:
        """A new subscription's options, the ``[bus]`` defaults filled in (checks that the bus is open)."""
        self._check_open()
        if policy is None:
            policy = DROP_OLDEST if traffic else self.config.default_policy
        return {
            "filter": filter,
            "buffer": self.config.default_buffer if buffer is None else buffer,
            "policy": policy,
            "name": name,
            "traffic": traffic,
            "slow_after": self.config.slow_consumer_timeout,
            "on_slow": on_slow,
        }

    def _attach(self, sub: _Sub) -> _Sub:
        """Start routing to ``sub`` (its pattern is checked here)."""
        if sub.traffic:
            self._traffic.add(sub.pattern, sub)
            self._tapped += 1
        else:
            self._trie.add(sub.pattern, sub)
        self._subs[sub] = None
        return sub

    def _detach(self, sub: Subscription) -> None:
        """Called by ``sub.close()``: stop routing to it and keep its figures."""
        if sub in self._subs:
            del self._subs[sub]
            if sub.traffic:
                self._traffic.remove(sub.pattern, sub)
                self._tapped -= 1
            else:
                self._trie.remove(sub.pattern, sub)
            self.metrics.retire(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        """Close ``sub`` (same as ``sub.close()``)."""
        sub.close()

    def unsubscribe_all(self, pattern: str | None = None) -> int:
        """Close every subscription (or those whose pattern is exactly ``pattern``); return how many."""
        doomed = [s for s in self._subs if pattern is None or s.pattern == pattern]
        for sub in doomed:
            sub.close()
        return len(doomed)

    def subscriptions(self, pattern: str | None = None) -> list[Subscription]:
        """Open subscriptions (or those whose pattern is exactly ``pattern``)."""
        return [s for s in self._subs if pattern is None or s.pattern == pattern]

    def matching(self, type: str) -> tuple[Subscription, ...]:
        """The subscriptions a message of ``type`` would be offered to (before filters)."""
        if self._tapped:
            return self._trie.match(type) + self._traffic.match(type)
        return self._trie.match(type)

    def _observe(self, msg: Message) -> None:
        """Show ``msg`` to the traffic subscriptions matching its type (never waits)."""
        subs = self._traffic.match(msg.type)
        if subs:
            t0 = _perf_counter()
            for sub in subs:
                sub._offer(msg, t0)  # drop-oldest: never refuses

    async def publish(self, msg: Message) -> int:
        """Deliver ``msg`` to every matching subscription, waiting for room where the policy is
        ``"wait"``; return how many subscriptions matched. Always a checkpoint."""
        if msg.__class__ is not Message:
            raise _not_a_message("publish", msg)
        self.metrics.published += 1
        if self._tapped:
            self._observe(msg)
        subs = self._trie.match(msg.type)
        if subs:
            t0 = _perf_counter()
            for sub in subs:
                if not sub._offer(msg, t0):
                    await sub._put(msg, t0)
            self.metrics.fanout_latency.record(_perf_counter() - t0)
        await anyio.lowlevel.checkpoint()
        return len(subs)

    def publish_nowait(self, msg: Message) -> int:
        """Deliver ``msg`` without waiting; return how many subscriptions matched.

        Full ``"drop-oldest"`` subscriptions drop their oldest message. Full ``"wait"``
        subscriptions do not get ``msg``: each counts it as ``rejected`` and, after every other
        subscription got it, ``OperationTimeoutError(code="bus.would_block")`` names them.
        """
        if msg.__class__ is not Message:
            raise _not_a_message("publish_nowait", msg)
        self.metrics.published += 1
        if self._tapped:
            self._observe(msg)
        subs = self._trie.match(msg.type)
        if not subs:
            return 0
        t0 = _perf_counter()
        full: list[Subscription] | None = None
        for sub in subs:
            if not sub._offer(msg, t0):
                sub.rejected += 1
                if full is None:
                    full = []
                full.append(sub)
        self.metrics.fanout_latency.record(_perf_counter() - t0)
        if full:
            raise OperationTimeoutError(
                f"{len(full)} subscription(s) full, message {msg.type!r} not delivered to them",
                code="bus.would_block",
                context={"type": msg.type, "id": msg.id, "subscriptions": [s.name for s in full][:20]},
                hint="use 'await bus.publish()' to wait for room, or subscribe with policy='drop-oldest'",
            )
        return len(subs)

    # -- request / response ---------------------------------------------------------------

    def handle(
        self,
        type_pattern: str,
        handler: Handler | Endpoint | str,
        *,
        priority: int = 0,
        name: str | None = None,
        summary: str = "",
    ) -> Route:
        """Route requests whose type matches ``type_pattern`` to ``handler`` (a function, an
        endpoint, or an endpoint's name). Endpoints are looked up by name in ``bus.endpoints``
        when a request arrives, so a route can exist before (and outlive) the endpoint's
        connection. ``summary`` says what it answers. Keep the returned route to remove it with
        :meth:`unhandle`."""
        return self.router.add(type_pattern, handler, priority=priority, name=name, summary=summary)

    def unhandle(self, route: Route) -> bool:
        """Remove a route added by :meth:`handle`; return whether it was there."""
        return self.router.remove(route)

    def set_default_route(self, handler: Handler | Endpoint | str | None) -> Route | None:
        """Route requests nothing else matches to ``handler`` (``None`` removes the default route)."""
        return self.router.set_default(handler)

    def route(self, type: str) -> Route | None:
        """The route a request of ``type`` would take now (route-one semantics), or None."""
        return self.router.route_one(type, self._available)

    def routes(self, type: str) -> list[Route]:
        """Every available route for ``type``, highest priority first (route-all semantics)."""
        return [r for r in self.router.route_all(type) if r.endpoint is None or self._available(r)]

    def _available(self, route: Route) -> bool:
        name = route.endpoint
        return name is not None and name in self.endpoints and self.health.is_available(name)

    async def request(
        self,
        type: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        version: int = 1,
        to: str | None = None,
    ) -> Message:
        """Send a request and return the ``response`` message; raise what the handler raised
        (see the module docs for the errors). ``to`` names an endpoint, bypassing routing."""
        msg = Message(type, payload, kind=REQUEST, version=version, headers=dict(headers) if headers else {})
        reply = await self.dispatch(msg, timeout=timeout, to=to)
        return reply.raise_if_error()

    async def dispatch(self, msg: Message, *, timeout: float | None = None, to: str | None = None) -> Message:
        """Route the request ``msg`` and return its ``response`` or ``error`` message; never
        raises a SymphonyError (they come back as ``error`` messages)."""
        return await self._dispatch(msg, timeout, to)

    async def _dispatch(
        self, msg: Message, timeout: float | None, to: str | None, linked: bool = False
    ) -> Message:
        if msg.kind != REQUEST:
            return msg.fail(
                ValidationError(
                    f"dispatch() needs a request, got a {msg.kind!r} message",
                    code="bus.not_a_request",
                    context={"type": msg.type, "kind": msg.kind},
                )
            )
        if to is None:
            route = self.router.route_one(msg.type, self._available)
            if route is None:
                self.metrics.no_route += 1
                return self._refuse(msg, _no_route(msg.type, msg.version))
            if route.endpoint is None:
                return await self._run(msg, route, None, timeout, linked)
            to = route.endpoint
        try:
            endpoint = self.endpoints.get(to)
        except NotFoundError as err:
            return self._refuse(msg, err)
        return await self._run(msg, None, endpoint, timeout, linked)

    def _refuse(self, msg: Message, err: SymphonyError) -> Message:
        """The error answer to a request the bus refused to run (counted, and shown as traffic)."""
        self.metrics.requests += 1
        self.metrics.errors += 1
        reply = msg.fail(err)
        if self._tapped:
            self._observe(msg)
            self._observe(reply)
        return reply

    async def request_all(
        self,
        type: str,
        payload: Any = None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        version: int = 1,
    ) -> list[Message]:
        """Ask every available route for ``type`` at once (route-all); return their answers
        (``response`` or ``error`` messages, not raised) in priority order.

        ``NotFoundError(bus.no_route)`` if no route matches (the default route is not used).
        """
        routes = self.routes(type)
        if not routes:
            self.metrics.no_route += 1
            raise _no_route(type, version)
        base = Message(type, payload, kind=REQUEST, version=version, headers=dict(headers) if headers else {})
        replies: list[Message | None] = [None] * len(routes)

        async def ask(index: int, route: Route) -> None:
            msg = base if index == 0 else attrs.evolve(base, id=new_id(), headers=dict(base.headers))
            if route.endpoint is not None:  # as request(..., to=<endpoint>)
                replies[index] = await self._dispatch(msg, timeout, route.endpoint)
            else:
                replies[index] = await self._run(msg, route, None, timeout)

        async with anyio.create_task_group() as tg:
            for index, route in enumerate(routes):
                tg.start_soon(ask, index, route)
        return [r for r in replies if r is not None]

    async def _run(
        self,
        msg: Message,
        route: Route | None,
        endpoint: Endpoint | None,
        timeout: float | None,
        linked: bool = False,
    ) -> Message:
        if timeout is None:
            timeout = self.config.default_timeout
        t0 = _perf_counter()
        try:
            pending = self.pending.open(msg, endpoint.name if endpoint is not None else None)
        except SymphonyError as err:
            return self._refuse(msg, err)
        metrics = self.metrics
        metrics.requests += 1
        if self._tapped:
            self._observe(msg)
        reply: Message | None = None
        try:
            if linked:
                # The caller (a link's worker, see symphony_bus_remote) enforces the deadline,
                # and only once the answer has to wait: most are ready at once, and a cancel
                # scope per request costs more than the rest of the path.
                reply = await self._answer(msg, route, endpoint, timeout, pending)
            else:
                # A bare CancelScope with a deadline: fail_after() costs twice as much per request.
                with anyio.CancelScope(deadline=anyio.current_time() + timeout):
                    reply = await self._answer(msg, route, endpoint, timeout, pending)
            if reply is None:  # the deadline cancelled the handler or the wait
                target = route.name if route is not None else f"endpoint:{endpoint.name if endpoint else '?'}"
                metrics.timeouts += 1
                reply = msg.fail(request_timeout_error(msg.type, msg.id, timeout, key="target", who=target))
        finally:
            self.pending.close(msg.id)
        metrics.request_latency.record(_perf_counter() - t0)
        if self._tapped:
            self._observe(reply)
        if reply.kind == ERROR:
            metrics.errors += 1
        else:
            metrics.responses += 1
        if not linked:
            # A request is always a checkpoint, even when the handler never awaited anything: a
            # loop of in-process requests must not starve the other tasks. (Requests from a
            # remote peer skip it: sending the answer back is the link's business.)
            await anyio.lowlevel.checkpoint()
        return reply

    def timed_out_elsewhere(self, msg: Message, timeout: float, *, target: str) -> Message:
        """The ``bus.request_timeout`` error answering ``msg`` after ``timeout`` seconds spent
        by ``target`` (a peer name), for a request whose deadline was enforced outside
        :meth:`dispatch` (a link's worker, see :meth:`answer_remote`): counted in
        ``metrics.timeouts`` and ``metrics.errors``, as dispatch counts its own."""
        self.metrics.timeouts += 1
        self.metrics.errors += 1
        return msg.fail(request_timeout_error(msg.type, msg.id, timeout, key="target", who=target))

    async def _answer(
        self,
        msg: Message,
        route: Route | None,
        endpoint: Endpoint | None,
        timeout: float,
        pending: PendingRequest,
    ) -> Message:
        """Run ``route``'s handler, or ask ``endpoint``: what either raises is the error answer,
        logged once when it is not a SymphonyError."""
        try:
            if route is not None:
                result = route.handler(msg)  # type: ignore[misc]  # a handler route has one
                if inspect.isawaitable(result):
                    result = await result
                return self._as_reply(msg, result, route.name, from_handler=True)
            assert endpoint is not None
            reply = await endpoint.request(msg, timeout)
        except SymphonyError as err:
            return msg.fail(err)
        except Exception as exc:
            role = "handler" if route is not None else "endpoint"
            name = route.name if route is not None else getattr(endpoint, "name", "?")
            code = f"bus.{role}_crashed"
            self._log.exception(code, type=msg.type, **{role: name}, id=msg.id)
            return msg.fail(
                InternalError(
                    f"{role} {name!r} crashed on {msg.type!r}: {type(exc).__name__}: {exc}",
                    code=code,
                    context={"type": msg.type, role: name, "exception": type(exc).__name__},
                )
            )
        if reply is None:  # the answer comes back through ingest()
            return await pending.wait()
        reply = self._as_reply(msg, reply, endpoint.name, from_handler=False)
        if self.config.validate_inbound and reply.kind == RESPONSE:
            try:
                self.message_types.validate(reply)
            except SymphonyError as err:
                self.metrics.invalid += 1
                return msg.fail(err)
        return reply

    def _as_reply(self, msg: Message, result: Any, source: str, *, from_handler: bool) -> Message:
        """``result`` as the answer to ``msg``: a response or error message (correlated to
        ``msg``), or -- from a handler -- the payload of the response."""
        if result.__class__ is Message:
            if result.kind in (RESPONSE, ERROR):
                if result.correlation_id != msg.id:
                    return attrs.evolve(result, correlation_id=msg.id)
                return result
            what = f"a {result.kind!r} message"
        elif from_handler:
            return msg.reply(result)
        else:
            what = f"{type(result).__name__}, not a Message"
        return msg.fail(
            InternalError(
                f"{source!r} answered {msg.type!r} with {what}",
                code="bus.bad_reply",
                context={"type": msg.type, "handler" if from_handler else "endpoint": source},
            )
        )

    def resolve(self, reply: Message) -> bool:
        """Hand an answer that arrived on its own to the request waiting for it (see
        :class:`~symphony.bus.links.Correlator`); False (an orphan) if none waits."""
        if self.pending.resolve(reply):
            return True
        self.metrics.orphans += 1
        return False

    # -- the boundary ---------------------------------------------------------------------

    async def ingest(
        self, msg: Message, *, origin: str | None = None, validate: bool | None = None
    ) -> Message | None:
        """Take a message that arrived from outside (a remote peer called ``origin``).

        Counts as a heartbeat from ``origin`` (when it is a tracked endpoint); checks the
        payload against the message-type registry when ``validate`` (default
        ``bus.validate_inbound``); then publishes an event
        (returns None), dispatches a request (returns its answer: send it back), or resolves a
        response/error (returns None). An invalid event raises the ValidationError; an invalid
        request is answered with it.
        """
        if origin is not None and origin in self.health:
            self.health.beat(origin)
        if validate is None:
            validate = self.config.validate_inbound
        kind = msg.kind
        if kind == REQUEST:
            return await self._take_request(msg, validate, False)
        if validate and kind != ERROR:
            try:
                self.message_types.validate(msg)
            except SymphonyError as err:
                self.metrics.invalid += 1
                if kind == RESPONSE:
                    # The requester gets the validation error instead of the bad answer.
                    self.resolve(
                        Message(msg.type, err.to_wire(), kind=ERROR, correlation_id=msg.correlation_id)
                    )
                    return None
                raise
        if kind == EVENT:
            await self.publish(msg)
            return None
        self.resolve(msg)
        return None

    async def answer_remote(self, msg: Message, *, validate: bool = False) -> Message:
        """Answer the request ``msg`` that a link's worker took from a remote peer, and return
        the ``response`` or ``error`` message to send back (``symphony_bus_remote`` calls it).

        As :meth:`ingest` of a request (``validate``: an invalid payload is answered with its
        ValidationError), minus what the worker does itself: the link counts the heartbeat,
        enforces the deadline only once the answer has to wait (so no cancel scope is opened
        here) and sends the answer at once (so no final checkpoint). A request that ran out of
        the worker's time is answered with :meth:`timed_out_elsewhere`.
        """
        return await self._take_request(msg, validate, True)

    async def _take_request(self, msg: Message, validate: bool, linked: bool) -> Message:
        if validate:
            try:
                self.message_types.validate(msg)
            except SymphonyError as err:
                self.metrics.invalid += 1
                return self._refuse(msg, err)
        return await self._dispatch(msg, None, None, linked)

    # -- health ---------------------------------------------------------------------------

    def _health_changed(self, name: str, old: HealthStatus | None, new: HealthStatus) -> None:
        if old is None:
            return  # first sighting; registration has its own event
        self._log.info("bus.endpoint_health", endpoint=name, state=new.state, reason=new.reason)
        self.endpoints.announce(
            Message(
                ENDPOINT_HEALTH,
                {
                    "name": name,
                    "state": new.state,
                    "previous": old.state,
                    "reason": new.reason,
                    "error": None if new.error is None else new.error.to_wire(),
                },
            )
        )

    async def _health_loop(self) -> None:
        while True:
            await anyio.sleep(self.health.interval)
            self.health.check()
            pingable = [e for e in self.endpoints.list() if callable(getattr(e, "ping", None))]
            if pingable:
                async with anyio.create_task_group() as tg:
                    for endpoint in pingable:
                        tg.start_soon(self._ping, endpoint)

    async def _ping(self, endpoint: Any) -> None:
        name = endpoint.name
        try:
            with anyio.fail_after(self.health.interval):
                await endpoint.ping()
        except TimeoutError:
            return  # silence: check() turns it into degraded/unhealthy in time
        except Exception as exc:
            if name in self.endpoints:
                self.health.mark_unhealthy(
                    name,
                    exc
                    if isinstance(exc, SymphonyError)
                    else TransportError(
                        f"ping of {name!r} failed: {exc}",
                        code="bus.ping_failed",
                        context={"endpoint": name, "exception": type(exc).__name__},
                    ),
                )
            return
        if name in self.endpoints:
            self.health.beat(name)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background tasks are running."""
        return self._tg is not None

    @property
    def started(self) -> bool:
        """Whether the background tasks run or are about to: an open kernel's bus has them
        scheduled in the kernel's task group before they first get to run. Whoever would start
        them (``BusServer`` does when nobody has) asks this, not :attr:`running`."""
        return self._tg is not None or self._scheduled

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the background tasks until cancelled or closed (``await tg.start(bus.run)``).

        Returns at once if the bus is already closed.
        """
        if self._closed:
            task_status.started()
            return
        if self._tg is not None:
            raise TransportError(f"the bus {self.name!r} is already running", code="bus.already_running")
        self._scheduled = False
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for sub in list(self._subs):  # the async callbacks subscribed while idle
                    if isinstance(sub, CallbackSubscription) and sub.is_async:
                        tg.start_soon(sub._work, name=f"bus-callback:{sub.name}")
                tg.start_soon(self._health_loop, name="bus-health")
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None

    async def start(self, task_group: TaskGroup) -> None:
        """Start the background tasks in ``task_group`` (same as ``await task_group.start(bus.run)``)."""
        await task_group.start(self.run)

    async def aclose(self) -> None:
        """Close every subscription, answer pending requests with ``bus.closed``, stop the tasks."""
        if self._closed:
            return
        self._closed = True
        self.pending.fail_all(TransportError(f"the bus {self.name!r} closed", code="bus.closed"))
        for sub in list(self._subs):
            sub.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> Bus:
        self._outer_tg = await start_in_own_task_group(self.run)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        outer = self._outer_tg
        self._outer_tg = None
        suppress: bool | None = None
        try:
            with anyio.CancelScope(shield=True):
                await self.aclose()
        finally:
            if outer is not None:
                outer.cancel_scope.cancel()
                suppress = await outer.__aexit__(exc_type, exc, tb)
        return suppress

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self.running else "idle")
        counts = f"subs={len(self._subs)} routes={len(self.router)} endpoints={len(self.endpoints)}"
        return f"<Bus {self.name!r} {state} {counts}>"
