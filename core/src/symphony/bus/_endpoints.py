"""Endpoints: named parties the bus can route to, local or remote, and their registry.

An :class:`Endpoint` is anything with::

    name: str                                   # unique on this bus
    capabilities: AbstractSet[str]              # free-form tags: "gpu", "instrument:llama", ...
    async def deliver(msg: Message) -> None     # one-way (events)
    async def request(msg: Message, timeout: float) -> Message | None

``request`` returns the ``response``/``error`` message, or ``None`` when the answer will come
back later through :meth:`Bus.ingest <symphony.bus.Bus.ingest>` (the bus correlates it by
id). An endpoint may also define ``async def ping() -> None``; the bus's health monitor then
calls it every ``heartbeat_interval`` and counts a successful ping as a heartbeat.

Remote peers (a socket connection, a child process on stdio) implement it in the transport
layer; :class:`LocalEndpoint` adapts in-process functions.

The :class:`EndpointRegistry` (``bus.endpoints``) keeps them by name and by capability, and
announces changes on the bus as ``bus.endpoint.registered`` / ``bus.endpoint.unregistered``
events (payload ``{"name", "capabilities"}`` plus ``"reason"`` on unregistration). These
control-plane events are published without waiting (``publish_nowait``): a full ``"wait"``
subscription misses them and counts them as ``rejected`` rather than stalling a connecting peer.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
import anyio.lowlevel

from symphony.bus._message import Message
from symphony.commons.errors import (
    ConflictError,
    NotFoundError,
    OperationTimeoutError,
    ValidationError,
)

if TYPE_CHECKING:
    from symphony.bus._core import Bus

__all__ = ["ENDPOINT_REGISTERED", "ENDPOINT_UNREGISTERED", "Endpoint", "EndpointRegistry", "LocalEndpoint"]

ENDPOINT_REGISTERED = "bus.endpoint.registered"
"""Type of the event published when an endpoint is registered."""
ENDPOINT_UNREGISTERED = "bus.endpoint.unregistered"
"""Type of the event published when an endpoint is unregistered."""


@runtime_checkable
class Endpoint(Protocol):
    """Something the bus can deliver events and route requests to (see the module docs)."""

    name: str
    capabilities: AbstractSet[str]

    async def deliver(self, msg: Message) -> None:
        """Take a one-way message."""
        ...

    async def request(self, msg: Message, timeout: float) -> Message | None:
        """Answer ``msg`` within ``timeout`` seconds (or return None and answer via ``bus.ingest``)."""
        ...


class LocalEndpoint:
    """An in-process :class:`Endpoint` built from plain functions.

    ``handler(msg)`` answers requests (returning a payload or a Message, sync or async; a raised
    :class:`~symphony.commons.errors.SymphonyError` becomes an error reply); ``on_event(msg)``
    takes delivered events (default: keep them in ``received``, at most ``keep`` of them).
    """

    def __init__(
        self,
        name: str,
        *,
        handler: Callable[[Message], Any] | None = None,
        on_event: Callable[[Message], Any] | None = None,
        capabilities: Iterable[str] = (),
        keep: int = 1000,
    ) -> None:
        self.name = name
        self.capabilities: frozenset[str] = frozenset(capabilities)
        self._handler = handler
        self._on_event = on_event
        self._keep = keep
        self.received: list[Message] = []

    async def deliver(self, msg: Message) -> None:
        """Pass ``msg`` to ``on_event`` (or keep it in ``received``)."""
        if self._on_event is None:
            if len(self.received) >= self._keep:
                del self.received[0]
            self.received.append(msg)
            return
        result = self._on_event(msg)
        if inspect.isawaitable(result):
            await result

    async def request(self, msg: Message, timeout: float) -> Message | None:
        """Answer ``msg`` with ``handler`` (NotFoundError if there is none). What it raises
        reaches the bus, which answers with it."""
        if self._handler is None:
            raise NotFoundError(
                f"endpoint {self.name!r} does not answer requests",
                code="bus.no_handler",
                context={"endpoint": self.name, "type": msg.type},
            )
        result = self._handler(msg)
        if inspect.isawaitable(result):
            result = await result
        return result if result.__class__ is Message else msg.reply(result)

    def __repr__(self) -> str:
        return f"LocalEndpoint({self.name!r}, capabilities={sorted(self.capabilities)})"


def _check_endpoint(endpoint: Any) -> None:
    name = getattr(endpoint, "name", None)
    caps = getattr(endpoint, "capabilities", None)
    if (
        not isinstance(name, str)
        or not name
        or not isinstance(caps, AbstractSet)
        or not callable(getattr(endpoint, "deliver", None))
        or not callable(getattr(endpoint, "request", None))
    ):
        raise ValidationError(
            f"{endpoint!r} is not an endpoint (needs name, capabilities set, deliver() and request())",
            code="bus.bad_endpoint",
            context={"endpoint": repr(endpoint)[:200]},
        )


class EndpointRegistry:
    """Endpoints by name, with a capability index and change events (``bus.endpoints``)."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._endpoints: dict[str, Endpoint] = {}
        self._by_capability: dict[str, dict[str, Endpoint]] = {}

    async def register(self, endpoint: Endpoint, *, replace: bool = False) -> None:
        """Add ``endpoint``; ConflictError (``bus.endpoint_conflict``) if its name is taken,
        unless ``replace`` (then the old one is unregistered first, reason ``"replaced"``)."""
        _check_endpoint(endpoint)
        existing = self._endpoints.get(endpoint.name)
        if existing is not None:
            if existing is endpoint:
                return
            if not replace:
                raise ConflictError(
                    f"an endpoint named {endpoint.name!r} is already registered",
                    code="bus.endpoint_conflict",
                    context={"endpoint": endpoint.name},
                    hint="pick another name or pass replace=True",
                )
            await self.unregister(endpoint.name, reason="replaced")
        self._endpoints[endpoint.name] = endpoint
        for cap in endpoint.capabilities:
            self._by_capability.setdefault(cap, {})[endpoint.name] = endpoint
        self._bus.health.track(endpoint.name)
        self.announce(
            Message(
                ENDPOINT_REGISTERED, {"name": endpoint.name, "capabilities": sorted(endpoint.capabilities)}
            )
        )
        await anyio.lowlevel.checkpoint()

    async def unregister(self, name: str, *, reason: str = "unregistered") -> Endpoint | None:
        """Remove the endpoint called ``name`` (None if there was none). Its routes stay and
        become unavailable until an endpoint of that name registers again."""
        endpoint = self._endpoints.pop(name, None)
        if endpoint is None:
            return None
        for cap in endpoint.capabilities:
            holders = self._by_capability.get(cap)
            if holders is not None:
                holders.pop(name, None)
                if not holders:
                    del self._by_capability[cap]
        self._bus.health.forget(name)
        self.announce(
            Message(
                ENDPOINT_UNREGISTERED,
                {"name": name, "capabilities": sorted(endpoint.capabilities), "reason": reason},
            )
        )
        await anyio.lowlevel.checkpoint()
        return endpoint

    def announce(self, msg: Message) -> None:
        """Publish a control-plane event (an endpoint's registration or health) without waiting."""
        # Control-plane events never wait: a slow "wait" subscriber must not stall the
        # registration of a connecting peer. It misses the event, counted as 'rejected'.
        try:
            self._bus.publish_nowait(msg)
        except OperationTimeoutError:
            pass

    def get(self, name: str) -> Endpoint:
        """The endpoint called ``name``; NotFoundError (``bus.unknown_endpoint``) if absent."""
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise NotFoundError(
                f"no endpoint named {name!r}",
                code="bus.unknown_endpoint",
                context={"endpoint": name, "known": sorted(self._endpoints)[:50]},
            )
        return endpoint

    def list(self) -> builtins.list[Endpoint]:
        """Every endpoint, by name."""
        return [self._endpoints[n] for n in sorted(self._endpoints)]

    def names(self) -> builtins.list[str]:
        """Every endpoint name, sorted."""
        return sorted(self._endpoints)

    def with_capability(self, capability: str) -> builtins.list[Endpoint]:
        """Endpoints declaring ``capability``, by name."""
        holders = self._by_capability.get(capability, {})
        return [holders[n] for n in sorted(holders)]

    def capabilities(self) -> dict[str, builtins.list[str]]:
        """Capability -> names of the endpoints declaring it."""
        return {cap: sorted(holders) for cap, holders in sorted(self._by_capability.items())}

    def __contains__(self, name: object) -> bool:
        return name in self._endpoints

    def __len__(self) -> int:
        return len(self._endpoints)

    def __repr__(self) -> str:
        return f"EndpointRegistry({self.names()})"
