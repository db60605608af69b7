"""Registries the kernel hands to plugins' registration hooks, and the bus reads from.

* :class:`TransportRegistry` -- transport factories by URL scheme
  (``symphony_register_transports(registry)``: ``registry.add("unix", factory)``).
* :class:`CodecRegistry` -- codecs by name, pre-populated with ``json`` and ``msgpack``
  (``symphony_register_codecs(registry)``: ``registry.add(codec)``).
* :class:`MessageTypeRegistry` -- message types keyed by ``(type, version)`` with an optional
  JSON Schema for their payload (``symphony_register_message_types(registry)``:
  ``registry.add("pit.pool.allocate", 1, schema={...}, summary="...")``).
* :class:`BusHandlerRegistry` -- request handlers a plugin exposes on the kernel's bus, and so
  to every client of a server serving that bus (``symphony_register_bus_handlers(registry)``:
  ``registry.add("textstats.analyze", handler, summary="...")``).

Each is constructible with no arguments. The bus adds them to a kernel (:func:`kernel_registry`,
through :meth:`symphony.Kernel.add_registry`) the first time a kernel's bus or transport is
asked for; plugins activated before that get their registration hook called then.

Payload validation
------------------
A schema is checked and compiled into a :mod:`jsonschema` validator **once**, when the type
is added; :meth:`MessageTypeRegistry.validate` then costs one dict lookup plus the compiled
validator. The bus validates at its boundary -- messages arriving from a remote peer, or when
asked -- never on every in-process hop. A failure raises
``ValidationError(code="bus.invalid_payload")`` whose context names the ``type``, ``version``,
the JSON ``path`` of the failing part (``$.items[3].name``) and the ``rule`` that failed
(``minimum``, ``required``, ...).

Messages whose ``(type, version)`` is not registered are accepted (policy ``"allow"``, the
default) or rejected with ``NotFoundError(code="bus.unknown_message_type")`` (policy
``"strict"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar

import attrs
from jsonschema import exceptions as _js_exceptions
from jsonschema.validators import Draft202012Validator, validator_for

from symphony.bus._codecs import BUILTIN_CODECS, Codec
from symphony.bus._message import ERROR, RESPONSE, Message, is_valid_type
from symphony.bus._routing import Route, Router
from symphony.commons.errors import ConflictError, NotFoundError, ValidationError

__all__ = [
    "BusHandlerRegistry",
    "CodecRegistry",
    "MessageType",
    "MessageTypeRegistry",
    "TransportRegistry",
    "UnknownTypePolicy",
    "kernel_registry",
]

UnknownTypePolicy = Literal["allow", "strict"]
"""What :meth:`MessageTypeRegistry.validate` does with an unregistered ``(type, version)``."""

_SCHEME_RE: Final = re.compile(r"[a-z][a-z0-9+.\-]*")

T = TypeVar("T")


# -- transports and codecs ---------------------------------------------------------------------


class _NamedRegistry(Generic[T]):
    """Entries by name: a second, different entry for a name is a ConflictError, and asking for
    an unknown name a NotFoundError that lists the known ones. ``_kind`` (``"transport"``,
    ``"codec"``) names the error codes (``bus.<kind>_conflict``, ``bus.unknown_<kind>``),
    ``_key`` the context key and ``_noun`` what a name is, in messages."""

    _kind: ClassVar[str]
    _key: ClassVar[str]
    _noun: ClassVar[str]

    def __init__(self, entries: Mapping[str, T] | None = None) -> None:
        self._entries: dict[str, T] = dict(entries or {})

    def _put(self, name: str, entry: T) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing is not entry:
            raise ConflictError(
                f"{self._noun} {name!r} is already registered",
                code=f"bus.{self._kind}_conflict",
                context={self._key: name, "existing": repr(existing), "new": repr(entry)},
            )
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """The entry called ``name``; NotFoundError (``bus.unknown_<kind>``) lists the known ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise NotFoundError(
                f"unknown {self._noun} {name!r}",
                code=f"bus.unknown_{self._kind}",
                context={self._key: name, "known": self.names()},
                hint=f"install a plugin providing '{self._kind}:{name}'",
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.names()})"


class TransportRegistry(_NamedRegistry[Any]):
    """Transport factories by URL scheme (``"unix"``, ``"tcp"``, ``"stdio"``, ``"memory"``...).

    What a factory is and how it is called is the transport layer's contract
    (:mod:`symphony.bus._transport`); this registry only stores and finds them.
    """

    _kind = "transport"
    _key = "scheme"
    _noun = "transport scheme"

    def add(self, scheme: str, factory: Any) -> None:
        """Register ``factory`` for ``scheme``; a second factory for one scheme is a ConflictError."""
        if not isinstance(scheme, str) or _SCHEME_RE.fullmatch(scheme) is None:
            raise ValidationError(
                f"bad transport scheme {scheme!r}",
                code="bus.bad_transport_scheme",
                context={"scheme": repr(scheme), "rule": "[a-z][a-z0-9+.-]*"},
            )
        self._put(scheme, factory)


class CodecRegistry(_NamedRegistry[Codec]):
    """Codecs by name; starts with the built-in ``json`` and ``msgpack`` codecs."""

    _kind = "codec"
    _key = "codec"
    _noun = "codec"

    def __init__(self, *, builtins: bool = True) -> None:
        super().__init__(BUILTIN_CODECS if builtins else None)

    def add(self, codec: Codec) -> None:
        """Register ``codec`` under ``codec.name``; another codec of that name is a ConflictError."""
        name = getattr(codec, "name", None)
        if (
            not isinstance(name, str)
            or not name
            or not callable(getattr(codec, "encode", None))
            or not callable(getattr(codec, "decode", None))
        ):
            raise ValidationError(
                f"{codec!r} is not a codec (needs a str 'name' and encode/decode methods)",
                code="bus.bad_codec",
                context={"codec": repr(codec)},
            )
        self._put(name, codec)


# -- message types -----------------------------------------------------------------------------


def _compile(schema: Mapping[str, Any], type_: str, version: int, which: str) -> Any:
    if not isinstance(schema, Mapping):
        raise ValidationError(
            f"the {which} of message type {type_!r} v{version} must be a JSON Schema object",
            code="bus.bad_message_schema",
            context={"type": type_, "version": version, "schema": repr(schema)[:200]},
        )
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except _js_exceptions.SchemaError as exc:
        raise ValidationError(
            f"the {which} of message type {type_!r} v{version} is not a valid JSON Schema: {exc.message}",
            code="bus.bad_message_schema",
            context={
                "type": type_,
                "version": version,
                "path": "/".join(str(p) for p in exc.path) or "<root>",
                "rule": str(exc.validator),
            },
        ) from None
    return cls(schema)


@attrs.frozen(slots=True)
class MessageType:
    """One registered ``(type, version)``: its payload schema(s), compiled once, and a summary."""

    type: str
    version: int
    schema: Mapping[str, Any] | None = None
    response_schema: Mapping[str, Any] | None = None
    summary: str = ""
    _validator: Any = attrs.field(default=None, repr=False, eq=False, alias="validator")
    _response_validator: Any = attrs.field(default=None, repr=False, eq=False, alias="response_validator")

    def check(self, msg: Message) -> None:
        """Validate ``msg.payload`` against the schema for its kind (requests/events: ``schema``,
        responses: ``response_schema``; error payloads are never checked here)."""
        kind = msg.kind
        if kind == ERROR:
            return
        validator = self._response_validator if kind == RESPONSE else self._validator
        if validator is None:
            return
        error = _js_exceptions.best_match(validator.iter_errors(msg.payload))
        if error is None:
            return
        raise ValidationError(
            f"payload of {self.type!r} v{self.version} is invalid at {error.json_path}: {error.message}",
            code="bus.invalid_payload",
            context={
                "type": self.type,
                "version": self.version,
                "kind": kind,
                "path": error.json_path,
                "rule": str(error.validator),
            },
        )


class MessageTypeRegistry:
    """Message types by ``(type, version)``, with O(1) lookup and compiled payload validators.

    >>> reg = MessageTypeRegistry()
    >>> _ = reg.add("demo.greet", 1, schema={"type": "object", "required": ["name"]}, summary="Say hi")
    >>> reg.get("demo.greet").summary
    'Say hi'
    """

    def __init__(self, *, unknown: UnknownTypePolicy = "allow") -> None:
        self._types: dict[tuple[str, int], MessageType] = {}
        self.unknown: UnknownTypePolicy = unknown

    @property
    def unknown(self) -> UnknownTypePolicy:
        """Policy for unregistered ``(type, version)`` in :meth:`validate`: ``"allow"`` or ``"strict"``."""
        return self._unknown

    @unknown.setter
    def unknown(self, policy: UnknownTypePolicy) -> None:
        if policy not in ("allow", "strict"):
            raise ValidationError(
                f"unknown-message-type policy must be 'allow' or 'strict', not {policy!r}",
                code="bus.bad_policy",
                context={"policy": repr(policy)},
            )
        self._unknown = policy

    def add(
        self,
        type: str,
        version: int = 1,
        *,
        schema: Mapping[str, Any] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        summary: str = "",
    ) -> MessageType:
        """Register ``(type, version)``; its schemas are checked and compiled now.

        Raises ``ConflictError(bus.message_type_conflict)`` if already registered and
        ``ValidationError`` for a bad type name, version or schema.
        """
        if not is_valid_type(type):
            raise ValidationError(
                f"bad message type {type!r}: dot-separated [A-Za-z0-9_-]+ segments expected",
                code="bus.bad_message_type",
                context={"type": repr(type)},
            )
        if version.__class__ is not int or version < 1:
            raise ValidationError(
                f"message type version must be an integer >= 1, not {version!r}",
                code="bus.bad_message_type",
                context={"type": type, "version": repr(version)},
            )
        key = (type, version)
        if key in self._types:
            raise ConflictError(
                f"message type {type!r} v{version} is already registered",
                code="bus.message_type_conflict",
                context={"type": type, "version": version},
            )
        entry = MessageType(
            type=type,
            version=version,
            schema=schema,
            response_schema=response_schema,
            summary=summary,
            validator=None if schema is None else _compile(schema, type, version, "schema"),
            response_validator=(
                None
                if response_schema is None
                else _compile(response_schema, type, version, "response schema")
            ),
        )
        self._types[key] = entry
        return entry

    def get(self, type: str, version: int = 1) -> MessageType:
        """The entry for ``(type, version)``; NotFoundError (``bus.unknown_message_type``) if absent."""
        entry = self._types.get((type, version))
        if entry is None:
            raise self._unknown_type(type, version)
        return entry

    def _unknown_type(self, type: str, version: int) -> NotFoundError:
        return NotFoundError(
            f"unknown message type {type!r} v{version}",
            code="bus.unknown_message_type",
            context={"type": type, "version": version, "known_versions": self.versions(type)},
            hint="a plugin registers message types with the symphony_register_message_types hook",
        )

    def versions(self, type: str) -> list[int]:
        """Registered versions of ``type``, ascending."""
        return sorted(v for (t, v) in self._types if t == type)

    def latest(self, type: str) -> MessageType:
        """The highest registered version of ``type``."""
        versions = self.versions(type)
        if not versions:
            return self.get(type, 1)
        return self._types[(type, versions[-1])]

    def validate(self, msg: Message) -> None:
        """Check ``msg`` against its registered schema (see the module docs for the errors)."""
        entry = self._types.get((msg.type, msg.version))
        if entry is None:
            if self._unknown == "strict":
                raise self._unknown_type(msg.type, msg.version)
            return
        entry.check(msg)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            key = (key, 1)
        return key in self._types

    def __iter__(self) -> Iterator[MessageType]:
        return iter(sorted(self._types.values(), key=lambda e: (e.type, e.version)))

    def __len__(self) -> int:
        return len(self._types)

    def __repr__(self) -> str:
        return f"MessageTypeRegistry({len(self)} types, unknown={self._unknown!r})"


# -- request handlers plugins expose on the bus -----------------------------------------------------


class BusHandlerRegistry:
    """Request handlers plugins expose on the kernel's bus.

    Filled by ``symphony_register_bus_handlers(registry)``. Each handler is routed on the bus
    the registry is bound to (the kernel binds it to its bus when the bus is built, and
    activates every plugin whose manifest ``provides`` a ``bus-handler:<pattern>`` slot then),
    so it answers requests from this process and -- once ``symphony serve`` serves that bus --
    from every connected client. Handlers added before binding wait on a router of the
    registry's own and move to the bus's at :meth:`bind`.
    """

    def __init__(self) -> None:
        self._router = Router()  # the bus's router once bound
        self._routes: dict[str, Route] = {}  # by name
        self._bus: Any = None

    def add(
        self, pattern: str, handler: Any, *, name: str | None = None, priority: int = 0, summary: str = ""
    ) -> Route:
        """Answer requests whose type matches ``pattern`` with ``handler`` (``async def
        handler(msg) -> payload``, or a plain function); return its route. ``name`` (default:
        the pattern) must be unique: a second handler of that name is a
        ``ConflictError(bus.handler_conflict)``."""
        if not callable(handler):
            raise ValidationError(
                f"a bus handler must be callable, not {type(handler).__name__}",
                code="bus.bad_handler",
                context={"pattern": pattern},
            )
        key = name or pattern
        if key in self._routes:
            raise ConflictError(
                f"a bus handler named {key!r} is already registered",
                code="bus.handler_conflict",
                context={"name": key, "pattern": self._routes[key].pattern},
            )
        route = self._router.add(pattern, handler, priority=priority, name=key, summary=summary)
        self._routes[key] = route
        return route

    def remove(self, name: str) -> bool:
        """Forget the handler ``name`` (and stop routing to it); whether it was there."""
        route = self._routes.pop(name, None)
        return route is not None and self._router.remove(route)

    def bind(self, bus: Any) -> None:
        """Route every handler, present and future, on ``bus`` (once; the kernel does it)."""
        if self._bus is bus:
            return
        if self._bus is not None:
            raise ConflictError(
                "this bus handler registry is already bound to another bus",
                code="bus.handler_registry_bound",
                context={},
            )
        self._bus, self._router = bus, bus.router
        for key, r in self._routes.items():
            self._routes[key] = bus.handle(
                r.pattern, r.handler, priority=r.priority, name=key, summary=r.summary
            )

    def get(self, name: str) -> Route | None:
        """The route of the handler called ``name``, or ``None``."""
        return self._routes.get(name)

    def __iter__(self) -> Iterator[Route]:
        return iter(sorted(self._routes.values(), key=lambda r: r.name))

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, name: object) -> bool:
        return name in self._routes

    def __repr__(self) -> str:
        return f"BusHandlerRegistry({sorted(self._routes)})"


_BUS_REGISTRIES: Final = (
    ("codecs", "symphony_register_codecs", CodecRegistry),
    ("message_types", "symphony_register_message_types", MessageTypeRegistry),
    ("transports", "symphony_register_transports", TransportRegistry),
)


def kernel_registry(kernel: Any, name: str) -> Any:
    """The bus registry ``name`` (``codecs``, ``message_types`` or ``transports``) of ``kernel``.

    Adds the three bus registries to the kernel the first time (``kernel.add_registry``).
    """
    for registry_name, hook_name, factory in _BUS_REGISTRIES:
        kernel.add_registry(registry_name, hook_name, factory)
    return kernel.registry(name)
