"""The serving side of the bus across processes: :class:`BusServer` accepts connections on a
transport URL and gives each peer a :class:`ServerPeer` (a bus endpoint). See
:mod:`symphony_bus_remote` for the protocol.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from symphony.bus import BUS_CONFIG_SCHEMA, Connection, Message, message_to_wire, open_transport
from symphony.bus.links import ERROR, EVENT, REQUEST, start_in_own_task_group, validate_pattern
from symphony.commons.errors import (
    ConfigError,
    SerializationError,
    SymphonyError,
    TransportError,
    ValidationError,
)
from symphony.commons.log import get_logger
from symphony_bus_remote._link import (
    HANDLE,
    HELLO,
    PROTOCOL_VERSION,
    SUBSCRIBE,
    SUBSCRIPTION_HEADER,
    UNHANDLE,
    UNSUBSCRIBE,
    Link,
    _clock,
    exit_quietly,
    positive_seconds,
)
from symphony_bus_remote._sockets import HANDSHAKE_CODEC, PRE_HANDSHAKE_MAX_FRAME_SIZE, StreamConnection

if TYPE_CHECKING:
    from symphony.bus import Bus

__all__ = ["BusServer", "ServerPeer"]

_log = get_logger("symphony.bus.remote")


class ServerPeer(Link):
    """The server's side of one connected client; also the bus
    :class:`~symphony.bus.Endpoint` requests are routed to when the client handles
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

    # Link hooks ------------------------------------------------------------------------------

    def on_batch(self) -> None:
        """Frames arrived: the peer is alive (a heartbeat for the bus's health table)."""
        self.bus.health.beat(self.name)

    async def on_event(self, msg: Message) -> None:
        """Publish the peer's event on the server bus (after checking its type's schema)."""
        bus = self.bus
        if self._validate:
            try:
                bus.validate(msg)
            except SymphonyError as err:
                bus.metrics.invalid += 1
                _log.warning("bus.remote.invalid_event", peer=self.name, type=msg.type, code=err.code)
                return
        self.held += 1
        try:
            await bus.publish(msg)  # held at most bus.slow_consumer_timeout by a full subscription
        finally:
            self.held -= 1
            self.last_seen = _clock()

    async def answer(self, msg: Message) -> Message:
        """Answer the peer's request through the server bus's routing."""
        # As bus.ingest(msg, origin=self.name), minus its heartbeat (on_batch gave it) and its
        # final checkpoint (the answer goes out now). The worker running this enforces the
        # deadline: see Workers.
        return await self.bus.answer_remote(msg, validate=self._validate)

    def timeout_reply(self, msg: Message, timeout: float) -> Message:
        """The error reply for a request of this peer's that ran out of time (counted by the bus)."""
        return self.bus.timed_out_elsewhere(msg, timeout, target=f"peer:{self.name}")

    async def on_control(self, msg: Message) -> Message | None:
        """Subscribe, unsubscribe, handle and unhandle for the peer; heartbeats go to the link."""
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
        traffic = payload.get("traffic") is True
        send = self.conn.send
        headers_for = {SUBSCRIPTION_HEADER: sid}

        async def forward(msg: Message) -> None:
            if traffic:  # any kind of message: carried whole inside an event
                tagged = Message(msg.type, message_to_wire(msg), kind=EVENT, headers=headers_for)
            else:
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
            traffic=traffic,
            on_slow=self._slow_consumer,
        )
        return {"ok": True}

    def _slow_consumer(self, sub: Any) -> None:
        """A subscription of this peer was dropped as a slow consumer: disconnect the peer,
        telling it why (NATS-style: the fault lands on the consumer that does not read)."""
        reason = sub.slow_reason or "slow consumer"
        _log.warning("bus.remote.slow_consumer", peer=self.name, pattern=sub.pattern, reason=reason)
        tg = self._tg
        if tg is not None and not self.closed:
            tg.start_soon(self.drop, "bus.slow_consumer", reason)

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
        self.heartbeat_interval = positive_seconds(
            "heartbeat_interval",
            bus.config.heartbeat_interval if heartbeat_interval is None else heartbeat_interval,
        )
        self.heartbeat_timeout = positive_seconds(
            "heartbeat_timeout",
            bus.config.heartbeat_timeout if heartbeat_timeout is None else heartbeat_timeout,
        )
        self.handshake_timeout = positive_seconds("handshake_timeout", handshake_timeout)
        self._check_settings()
        self.max_workers = max_workers
        self.transport = transport or open_transport(url, bus.transports, kernel=kernel)
        self.peers: dict[str, ServerPeer] = {}
        self._numbers = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._outer: anyio.abc.TaskGroup | None = None

    def _check_settings(self) -> None:
        """Refuse settings the server could not honour, before it listens (a ConfigError
        naming the key)."""
        if self.heartbeat_interval >= self.heartbeat_timeout:
            raise ConfigError(
                f"bus.heartbeat_interval ({self.heartbeat_interval} s) must be shorter than "
                f"bus.heartbeat_timeout ({self.heartbeat_timeout} s): every peer would be dropped "
                "as silent before its first ping",
                code="bus.bad_setting",
                context={"key": "bus.heartbeat_interval", "value": self.heartbeat_interval},
            )
        known = self.bus.codecs.names()
        for key, names in (("bus.codec", [self.bus.config.codec]), ("codecs", self.codecs)):
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ConfigError(
                    f"{key}: unknown codec {unknown[0]!r} (known: {', '.join(sorted(known))})",
                    code="bus.bad_setting",
                    context={"key": key, "value": unknown[0]},
                )
        frame = self.options.get("max_frame_size", self.bus.config.max_frame_size)
        rule = BUS_CONFIG_SCHEMA["properties"]["max_frame_size"]
        low, high = rule["minimum"], rule["maximum"]
        if frame.__class__ is not int or not low <= frame <= high:
            raise ConfigError(
                f"bus.max_frame_size must be an integer from {low} to {high} bytes, not {frame!r}",
                code="bus.bad_setting",
                context={"key": "bus.max_frame_size", "value": repr(frame)[:40]},
            )

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
            if not self.bus.started and not self.bus.closed:
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
        await exit_quietly(outer, exc)
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
        # Until the handshake is done a peer may send small frames only, whatever the transport
        # (the tcp transport already holds its token frame to the same limit).
        framed = conn.framed if isinstance(conn, StreamConnection) else None
        full_size = framed.max_frame_size if framed is not None else 0
        if framed is not None and full_size > PRE_HANDSHAKE_MAX_FRAME_SIZE:
            framed.set_max_frame_size(PRE_HANDSHAKE_MAX_FRAME_SIZE)
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
        if framed is not None:
            framed.set_max_frame_size(full_size)
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
