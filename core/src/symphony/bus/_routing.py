"""Request routing: which handler answers a request of a given type.

A :class:`Route` joins a type *pattern* (the wildcards of :mod:`symphony.bus._topics`: ``*``
one segment, ``#`` zero or more) to a *target* -- an in-process handler, or the name of a
remote :class:`~symphony.bus.Endpoint` -- with a ``priority``.

``route_all(type)``
    Every matching route, highest priority first; ties keep registration order.
``route_one(type)``
    The first of those whose target is available (a handler always is; an endpoint is when it
    is registered and not unhealthy). With none, the *default route* if one is set.

Answers are cached per type until the routes change, so routing a known type is one dict
lookup plus the availability check.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from symphony.bus._message import Message
from symphony.bus._topics import TopicTrie, validate_pattern
from symphony.commons.errors import ValidationError

if TYPE_CHECKING:
    from symphony.bus._endpoints import Endpoint

__all__ = ["Handler", "Route", "Router"]

Handler = Callable[[Message], "Awaitable[Any] | Any"]
"""A request handler: ``async def handler(msg) -> payload | Message`` (plain functions work too)."""

_CACHE_MAX: Final = 4096


@attrs.define(eq=False, slots=True)
class Route:
    """One routing entry (identity-compared; keep it to remove the route later). ``summary``
    says what it answers, for listings such as ``symphony bus routes``."""

    pattern: str
    handler: Handler | None
    endpoint: str | None
    priority: int
    name: str
    seq: int
    summary: str = ""

    @property
    def target(self) -> str:
        """``"endpoint:<name>"`` or ``"handler:<name>"``."""
        return f"endpoint:{self.endpoint}" if self.endpoint is not None else f"handler:{self.name}"

    def describe(self) -> dict[str, Any]:
        """JSON-safe description."""
        return {
            "pattern": self.pattern,
            "priority": self.priority,
            "name": self.name,
            "target": self.target,
            "summary": self.summary,
        }


class Router:
    """Routes by type pattern with priorities and a default route (see the module docs)."""

    def __init__(self) -> None:
        self._trie: TopicTrie[Route] = TopicTrie()
        self._routes: list[Route] = []
        self._cache: dict[str, tuple[Route, ...]] = {}
        self._seq = itertools.count()
        self.default: Route | None = None

    def add(
        self,
        pattern: str,
        target: Handler | Endpoint | str,
        *,
        priority: int = 0,
        name: str | None = None,
        summary: str = "",
    ) -> Route:
        """Route requests matching ``pattern`` to ``target`` (a handler, or an endpoint's name)."""
        validate_pattern(pattern)
        route = self._make(pattern, target, priority, name, summary)
        self._trie.add(pattern, route)
        self._routes.append(route)
        self._cache.clear()
        return route

    def _make(self, pattern: str, target: Any, priority: int, name: str | None, summary: str = "") -> Route:
        if priority.__class__ is not int or not isinstance(summary, str):
            raise ValidationError(
                f"a route's priority is an integer and its summary a string, not {priority!r}, {summary!r}",
                code="bus.bad_route",
                context={"pattern": pattern, "priority": repr(priority)},
            )
        if isinstance(target, str):
            endpoint: str | None = target
            handler = None
            label = name or target
        else:
            endpoint_name = getattr(target, "name", None)
            if callable(getattr(target, "request", None)) and isinstance(endpoint_name, str):
                endpoint, handler, label = endpoint_name, None, name or endpoint_name
            elif callable(target):
                endpoint, handler = None, target
                label = name or getattr(target, "__qualname__", None) or repr(target)
            else:
                raise ValidationError(
                    f"a route target must be a handler or an endpoint (name), not {target!r}",
                    code="bus.bad_route",
                    context={"pattern": pattern, "target": repr(target)},
                )
        return Route(
            pattern=pattern,
            handler=handler,
            endpoint=endpoint,
            priority=priority,
            name=label,
            seq=next(self._seq),
            summary=summary,
        )

    def remove(self, route: Route) -> bool:
        """Remove ``route``; return whether it was there."""
        if route is self.default:
            self.default = None
            self._cache.clear()
            return True
        if not self._trie.remove(route.pattern, route):
            return False
        self._routes.remove(route)
        self._cache.clear()
        return True

    def remove_endpoint(self, endpoint: str) -> int:
        """Remove every route to ``endpoint``; return how many."""
        doomed = [r for r in self._routes if r.endpoint == endpoint]
        for route in doomed:
            self.remove(route)
        if self.default is not None and self.default.endpoint == endpoint:
            self.default = None
        return len(doomed)

    def set_default(
        self, target: Handler | Endpoint | str | None, *, name: str | None = None
    ) -> Route | None:
        """Set (or with ``None`` clear) the route used when nothing matches."""
        self.default = None if target is None else self._make("#", target, 0, name or "default")
        return self.default

    def route_all(self, type: str) -> tuple[Route, ...]:
        """Every route matching ``type``, highest priority first, ties in registration order."""
        cached = self._cache.get(type)
        if cached is None:
            cached = tuple(sorted(self._trie.match(type), key=lambda r: (-r.priority, r.seq)))
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[type] = cached
        return cached

    def route_one(self, type: str, available: Callable[[Route], bool] | None = None) -> Route | None:
        """The best available route for ``type``, else the default route (if available), else None."""
        for route in self.route_all(type):
            if available is None or route.endpoint is None or available(route):
                return route
        default = self.default
        if default is not None and (available is None or default.endpoint is None or available(default)):
            return default
        return None

    def routes(self) -> list[Route]:
        """Every route, highest priority first (the default route is not included)."""
        return sorted(self._routes, key=lambda r: (-r.priority, r.seq))

    def __len__(self) -> int:
        return len(self._routes)
