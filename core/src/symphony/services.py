"""Registries the kernel hands to registration hooks: services and CLI commands."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from symphony.commons.errors import ConflictError, NotFoundError

__all__ = ["CommandRegistry", "ServiceRegistry"]

_MISSING = object()


class ServiceRegistry:
    """Named services. ``add`` an object, or ``add_factory`` to build it on first ``get``."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}
        self._factories: dict[str, Callable[[], Any]] = {}
        self._owners: dict[str, str | None] = {}
        # reentrant: a factory may ask for another service (the stale manager needs the store)
        self._lock = threading.RLock()
        self.current_plugin: str | None = None
        """Set by the kernel while a plugin's registration hook runs (to name owners)."""

    def _claim(self, name: str) -> None:
        if name in self._owners:
            raise ConflictError(
                f"service {name!r} is registered twice: by {self._owners[name]} and by {self.current_plugin}",
                code="service.duplicate",
                context={"service": name, "first": self._owners[name], "second": self.current_plugin},
            )
        self._owners[name] = self.current_plugin

    def add(self, name: str, obj: Any) -> None:
        """Register ``obj`` as the service ``name``."""
        self._claim(name)
        self._objects[name] = obj

    def add_factory(self, name: str, factory: Callable[[], Any]) -> None:
        """Register a zero-argument factory called once, on the first :meth:`get`."""
        self._claim(name)
        self._factories[name] = factory

    def __contains__(self, name: object) -> bool:
        return name in self._owners

    def owner(self, name: str) -> str | None:
        """The plugin id that registered ``name`` (None for the host)."""
        return self._owners.get(name)

    def get(self, name: str) -> Any:
        """Return the service, building it from its factory the first time."""
        obj = self._objects.get(name, _MISSING)
        if obj is not _MISSING:
            return obj
        with self._lock:
            if name in self._objects:
                return self._objects[name]
            factory = self._factories.get(name)
            if factory is None:
                raise NotFoundError(
                    f"no service named {name!r}",
                    code="service.not_found",
                    context={"service": name, "available": sorted(self._owners)},
                )
            obj = factory()
            self._objects[name] = obj
            return obj

    def names(self) -> list[str]:
        """Registered service names, sorted."""
        return sorted(self._owners)


class CommandRegistry:
    """Top-level CLI commands contributed by plugins (click commands)."""

    def __init__(self) -> None:
        self._commands: dict[str, Any] = {}
        self._extensions: dict[str, list[Callable[[Any], None]]] = {}
        self.current_plugin: str | None = None

    def add(self, command: Any, name: str | None = None) -> None:
        """Register a click command under ``name`` (default: the command's own name).

        Extensions waiting for ``name`` (see :meth:`extend`) are applied to it now.
        """
        key = name or command.name
        if key in self._commands:
            raise ConflictError(
                f"CLI command {key!r} is registered twice",
                code="cli.duplicate_command",
                context={"command": key, "plugin": self.current_plugin},
            )
        self._commands[key] = command
        for extend in self._extensions.pop(key, ()):
            extend(command)

    def extend(self, name: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(command)`` with the command ``name`` once it is registered (now if it is).

        How a plugin adds subcommands to a click group another plugin owns, without activating
        that plugin first: ``registry.extend("artifacts", lambda group: group.add_command(gc))``.
        The extending plugin must be active before the owner registers the command (declare it
        ``activation = "on-startup"``, and keep its import cheap).
        """
        if name in self._commands:
            callback(self._commands[name])
        else:
            self._extensions.setdefault(name, []).append(callback)

    def get(self, name: str) -> Any:
        """The click command registered as ``name``."""
        try:
            return self._commands[name]
        except KeyError:
            raise NotFoundError(
                f"no CLI command {name!r}", code="cli.no_command", context={"command": name}
            ) from None

    def names(self) -> list[str]:
        """Registered command names, sorted."""
        return sorted(self._commands)
