"""The bus envelope: :class:`Message`, and its plain-dict *wire form*.

Every message on the Symphony bus -- an event fanned out to subscribers, a request routed to
one handler, the response or error that answers it -- is one immutable :class:`Message`::

    >>> from symphony.bus import Message
    >>> req = Message.request("pit.pool.allocate", {"model": "tiny"})
    >>> res = req.reply({"instance": "i-1"})
    >>> (res.kind, res.correlation_id == req.id, res.type)
    ('response', True, 'pit.pool.allocate')

Fields
------
``id``
    Unique id (``uuid4().hex`` by default). A response or error names its request's id in
    ``correlation_id``.
``type``
    Dot-separated topic, e.g. ``workflow.node.started``. Each segment matches
    ``[A-Za-z0-9_-]+``; at most 255 characters. Subscriptions match it with wildcards (see
    :mod:`symphony.bus._topics`).
``kind``
    ``"event"`` (default, one-way, fanned out), ``"request"``, ``"response"`` or ``"error"``.
``version``
    Integer >= 1: the version of the payload schema for ``type`` (the message-type registry
    is keyed by ``(type, version)``, so old and new payload shapes can live side by side).
``timestamp``
    Unix seconds (float) when the message was created.
``correlation_id`` / ``reply_to``
    Request/response plumbing: the request id a reply answers, and where a peer should send
    the answer (a transport-level address; optional).
``headers``
    Extensible ``str -> str`` metadata (trace ids, auth tokens, the sender's name ...).
``payload``
    JSON-compatible data: ``None``, ``bool``, ``int``, ``float`` (finite), ``str``, ``list``,
    ``dict`` with ``str`` keys, nested freely. ``bytes`` are allowed with the msgpack codec only.

Messages are attrs classes, frozen and slotted: use :func:`attrs.evolve` to change one.

Wire form
---------
Codecs do not see :class:`Message`; they encode the plain dict from :func:`message_to_wire`::

    {"id": str, "type": str, "kind": str, "v": int, "ts": float,
     "cid": str, "rto": str, "h": {str: str}, "p": <payload>}

``cid``, ``rto`` and ``h`` are left out when ``None``/empty; ``p`` is always present.
:func:`message_from_wire` accepts a missing or ``null`` ``cid``/``rto``/``h``/``p``, ignores
keys it does not know (so newer peers can add fields), and checks everything else: a bad
envelope raises :class:`~symphony.commons.errors.SerializationError` with code
``bus.bad_envelope`` and ``context["field"]`` naming the offending field (``"p"`` paths go
deeper, e.g. ``p.items[3]``).

Errors crossing the bus
-----------------------
:meth:`Message.fail` turns a :class:`~symphony.commons.errors.SymphonyError` into an
``"error"`` message whose payload is ``error.to_wire()``; :meth:`Message.raise_if_error` on
the receiving side re-raises it with the same class, code, message, context and hint.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from symphony.commons.errors import (
    PreValidationError,
    SerializationError,
    SymphonyError,
    ValidationError,
    error_from_wire,
)
from symphony.commons.validation import MESSAGE_TYPE

__all__ = [
    "ERROR",
    "EVENT",
    "KINDS",
    "MAX_PAYLOAD_DEPTH",
    "MAX_TYPE_LENGTH",
    "REQUEST",
    "RESPONSE",
    "Message",
    "check_payload",
    "is_valid_type",
    "message_from_wire",
    "message_to_wire",
    "new_id",
    "trusted_message",
]

EVENT: Final = "event"
"""Kind of a one-way message, delivered to every matching subscription."""
REQUEST: Final = "request"
"""Kind of a message expecting exactly one ``response`` or ``error`` back."""
RESPONSE: Final = "response"
"""Kind of the successful answer to a request (``correlation_id`` = the request's id)."""
ERROR: Final = "error"
"""Kind of the failed answer to a request; the payload is a SymphonyError wire form."""

KINDS: Final[frozenset[str]] = frozenset({EVENT, REQUEST, RESPONSE, ERROR})
"""Every valid ``Message.kind``."""

MAX_TYPE_LENGTH: Final = 255
"""Longest accepted message type (topic), in characters."""

MAX_PAYLOAD_DEPTH: Final = 200
"""Deepest accepted payload nesting (lists/dicts) on the wire."""

_VALID_TYPES: set[str] = set()  # cache of already checked types (bounded, see is_valid_type)
_VALID_TYPES_MAX: Final = 8192
_time = time.time


class _IdSource:
    """Ids without a system call per message: the first 48 bits step through a random
    permutation of a counter (so every prefix of an id is unique within the process, and
    looks random), the rest is drawn once per process (again in a forked child). The result
    keeps the version-4 UUID format."""

    __slots__ = ("next",)

    next: Callable[[], str]

    def __init__(self) -> None:
        self.seed()

    def seed(self) -> None:
        raw = bytearray(os.urandom(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        tail = raw[6:].hex()
        start = int.from_bytes(raw[:6], "big")
        step = _STEP
        counter = itertools.count()
        self.next = lambda: f"{(start + next(counter) * step) & _MASK48:012x}{tail}"


_MASK48: Final = (1 << 48) - 1
_STEP: Final = 0x9E3779B97F4B  # odd: n -> n * step mod 2**48 is a permutation
_IDS = _IdSource()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_IDS.seed)


def new_id() -> str:
    """A fresh message id, formatted as a random (version 4) UUID: 32 lowercase hex characters.

    Same format as ``uuid.uuid4().hex``. Ids (and every prefix of them) are unique within a
    process and random-looking, and are made without a system call per message.
    """
    return _IDS.next()


def is_valid_type(value: object) -> bool:
    """Whether ``value`` is a valid message type (dot-separated ``[A-Za-z0-9_-]+`` segments)."""
    if value.__class__ is not str:
        return False
    if value in _VALID_TYPES:
        return True
    try:
        MESSAGE_TYPE.check(value, "type")
    except PreValidationError:
        return False
    if len(_VALID_TYPES) < _VALID_TYPES_MAX:
        _VALID_TYPES.add(value)
    return True


def _bad_message(field: str, message: str, value: Any) -> ValidationError:
    return ValidationError(
        message,
        code="bus.bad_message",
        context={"field": field, "value": repr(value)[:200]},
    )


@attrs.frozen(slots=True, eq=True)
class Message:
    """One bus message (see the module documentation for each field).

    ``Message(type, payload)`` builds an event; :meth:`request`, :meth:`reply` and
    :meth:`fail` build the other kinds. Construction checks ``type``, ``kind``, ``version``
    and ``headers`` (raising :class:`~symphony.commons.errors.ValidationError` with code
    ``bus.bad_message``); the payload is checked when it crosses the wire.
    """

    type: str
    payload: Any = None
    id: str = attrs.field(factory=new_id, kw_only=True)
    kind: str = attrs.field(default=EVENT, kw_only=True)
    version: int = attrs.field(default=1, kw_only=True)
    timestamp: float = attrs.field(factory=time.time, kw_only=True)
    correlation_id: str | None = attrs.field(default=None, kw_only=True)
    reply_to: str | None = attrs.field(default=None, kw_only=True)
    headers: dict[str, str] = attrs.field(factory=dict, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not is_valid_type(self.type):
            raise _bad_message(
                "type", "message type must be dot-separated [A-Za-z0-9_-]+ segments", self.type
            )
        if self.kind not in KINDS:
            raise _bad_message("kind", f"message kind must be one of {sorted(KINDS)}", self.kind)
        version = self.version
        if version.__class__ is not int or version < 1:
            raise _bad_message("version", "message version must be an integer >= 1", version)
        headers = self.headers
        if headers.__class__ is not dict:
            raise _bad_message("headers", "message headers must be a dict of str to str", headers)
        if headers:
            for key, value in headers.items():
                if key.__class__ is not str or value.__class__ is not str:
                    raise _bad_message("headers", "message headers must be a dict of str to str", headers)

    # -- builders --------------------------------------------------------------------------

    @classmethod
    def request(cls, type: str, payload: Any = None, **kw: Any) -> Message:
        """A ``"request"`` message of ``type`` (extra fields as keywords, e.g. ``headers``)."""
        return cls(type, payload, kind=REQUEST, **kw)

    @classmethod
    def event(cls, type: str, payload: Any = None, **kw: Any) -> Message:
        """An ``"event"`` message of ``type`` (the same as ``Message(type, payload)``)."""
        return cls(type, payload, kind=EVENT, **kw)

    def reply(self, payload: Any = None, **kw: Any) -> Message:
        """The ``"response"`` to this message: same ``type``, ``correlation_id`` = ``self.id``."""
        if kw:
            return Message(self.type, payload, kind=RESPONSE, correlation_id=self.id, **kw)
        # Every field comes from this (valid) message or is a constant: no need to re-check.
        return trusted_message(self.type, payload, new_id(), RESPONSE, 1, _time(), self.id, None, {})

    def fail(self, error: SymphonyError, **kw: Any) -> Message:
        """The ``"error"`` answer to this message, carrying ``error.to_wire()`` as payload."""
        return Message(self.type, error.to_wire(), kind=ERROR, correlation_id=self.id, **kw)

    # -- readers ---------------------------------------------------------------------------

    @property
    def is_error(self) -> bool:
        """Whether this is an ``"error"`` message."""
        return self.kind == ERROR

    def error(self) -> SymphonyError | None:
        """The :class:`SymphonyError` an ``"error"`` message carries, else ``None``."""
        if self.kind != ERROR:
            return None
        return error_from_wire(self.payload)

    def raise_if_error(self) -> Message:
        """Raise the carried error for an ``"error"`` message; return ``self`` otherwise.

        The raised error has the class, code, message, context and hint the handler's error
        had (see :func:`symphony.commons.errors.error_from_wire`).
        """
        if self.kind == ERROR:
            raise error_from_wire(self.payload)
        return self


_new_message = object.__new__
_SLOT_SETTERS: Final = tuple(
    Message.__dict__[name].__set__
    for name in (
        "type",
        "payload",
        "id",
        "kind",
        "version",
        "timestamp",
        "correlation_id",
        "reply_to",
        "headers",
    )
)


def trusted_message(
    type: str,
    payload: Any,
    id: str,
    kind: str,
    version: int,
    timestamp: float,
    correlation_id: str | None,
    reply_to: str | None,
    headers: dict[str, str],
) -> Message:
    """A Message from fields that are already known to be valid (skips ``__init__`` checks):
    for hot paths that built every field themselves, such as a link sending a request."""
    msg = _new_message(Message)
    s_type, s_payload, s_id, s_kind, s_version, s_ts, s_cid, s_rto, s_headers = _SLOT_SETTERS
    s_type(msg, type)
    s_payload(msg, payload)
    s_id(msg, id)
    s_kind(msg, kind)
    s_version(msg, version)
    s_ts(msg, timestamp)
    s_cid(msg, correlation_id)
    s_rto(msg, reply_to)
    s_headers(msg, headers)
    return msg


# -- wire form ---------------------------------------------------------------------------------


def message_to_wire(msg: Message) -> dict[str, Any]:
    """The plain-dict wire form of ``msg`` (what codecs encode); see the module docs."""
    wire: dict[str, Any] = {
        "id": msg.id,
        "type": msg.type,
        "kind": msg.kind,
        "v": msg.version,
        "ts": msg.timestamp,
    }
    if msg.correlation_id is not None:
        wire["cid"] = msg.correlation_id
    if msg.reply_to is not None:
        wire["rto"] = msg.reply_to
    if msg.headers:
        wire["h"] = msg.headers
    wire["p"] = msg.payload
    return wire


def _bad_envelope(field: str, message: str, value: Any = None) -> SerializationError:
    return SerializationError(
        f"bad message envelope: {message}",
        code="bus.bad_envelope",
        context={"field": field, "value": repr(value)[:200]},
    )


_SCALARS: Final = (str, int, bool, type(None))


def check_payload(value: Any, *, allow_bytes: bool = True, path: str = "p") -> None:
    """Raise ``SerializationError(bus.bad_envelope)`` unless ``value`` is valid payload data.

    Valid: ``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list``, ``dict`` with
    ``str`` keys (and ``bytes`` when ``allow_bytes``), nested at most
    :data:`MAX_PAYLOAD_DEPTH` deep. ``context["field"]`` names the path of the bad part.
    """
    # Iterative walk with an explicit stack: no recursion limit surprises on hostile input.
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    pop = stack.pop
    push = stack.append
    while stack:
        item, where, depth = pop()
        cls = item.__class__
        if cls in _SCALARS:
            continue
        if cls is float:
            if not math.isfinite(item):
                raise _bad_envelope(where, "payload floats must be finite", item)
            continue
        if cls is list:
            if depth >= MAX_PAYLOAD_DEPTH:
                raise _bad_envelope(where, f"payload nested deeper than {MAX_PAYLOAD_DEPTH}")
            for index, child in enumerate(item):
                if child.__class__ in _SCALARS:
                    continue
                push((child, f"{where}[{index}]", depth + 1))
            continue
        if cls is dict:
            if depth >= MAX_PAYLOAD_DEPTH:
                raise _bad_envelope(where, f"payload nested deeper than {MAX_PAYLOAD_DEPTH}")
            for key, child in item.items():
                if key.__class__ is not str:
                    raise _bad_envelope(where, "payload object keys must be strings", key)
                if child.__class__ in _SCALARS:
                    continue
                push((child, f"{where}.{key}", depth + 1))
            continue
        if cls is bytes and allow_bytes:
            continue
        raise _bad_envelope(where, f"payload value of type {cls.__name__} is not JSON-compatible", item)


def _optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if value.__class__ is not str or len(value) > 256:
        raise _bad_envelope(key, f"{key!r} must be a string of at most 256 characters or absent", value)
    return str(value)


def message_from_wire(obj: Any, *, check_payload_data: bool = True) -> Message:
    """Build a :class:`Message` from its wire dict, checking every field.

    Raises :class:`~symphony.commons.errors.SerializationError` (code ``bus.bad_envelope``,
    ``context["field"]`` naming the field) on anything wrong, and never anything else.
    ``check_payload_data=False`` skips the payload walk when the codec already guarantees
    JSON-compatible data (the JSON codec does).
    """
    if not isinstance(obj, Mapping):
        raise _bad_envelope("<envelope>", "the envelope must be a map", obj)
    msg_id = obj.get("id")
    if msg_id.__class__ is not str or not msg_id or len(msg_id) > 256:
        raise _bad_envelope("id", "'id' must be a non-empty string of at most 256 characters", msg_id)
    msg_type = obj.get("type")
    if not is_valid_type(msg_type):
        raise _bad_envelope("type", "'type' must be dot-separated [A-Za-z0-9_-]+ segments", msg_type)
    kind = obj.get("kind", EVENT)
    if kind.__class__ is not str or kind not in KINDS:
        raise _bad_envelope("kind", f"'kind' must be one of {sorted(KINDS)}", kind)
    version = obj.get("v", 1)
    if version.__class__ is not int or not 1 <= version < 2**31:
        raise _bad_envelope("v", "'v' must be an integer between 1 and 2**31-1", version)
    ts = obj.get("ts")
    if ts.__class__ is int:
        try:
            ts = float(ts)
        except OverflowError:
            raise _bad_envelope("ts", "'ts' is out of range", ts) from None
    if ts.__class__ is not float or not math.isfinite(ts):
        raise _bad_envelope("ts", "'ts' must be a finite number of unix seconds", ts)
    cid = _optional_str(obj, "cid")
    rto = _optional_str(obj, "rto")
    headers = obj.get("h")
    if headers is None:
        headers = {}
    elif headers.__class__ is not dict:
        raise _bad_envelope("h", "'h' must be a map of string to string", headers)
    else:
        for key, value in headers.items():
            if key.__class__ is not str or value.__class__ is not str:
                raise _bad_envelope("h", "'h' must be a map of string to string", {key: value})
    payload = obj.get("p")
    if check_payload_data:
        check_payload(payload)
    # Every field was checked above: build the message without checking them again.
    return trusted_message(str(msg_type), payload, msg_id, kind, version, ts, cid, rto, headers)
