"""Codecs: turn a :class:`~symphony.bus.Message` into bytes and back.

A codec is any object with a ``name`` and two methods (the :class:`Codec` protocol)::

    encode(msg: Message) -> bytes
    decode(data: bytes) -> Message

Both built-ins encode the wire dict of :func:`~symphony.bus.message_to_wire`:

* :class:`JsonCodec` (``"json"``): stdlib :mod:`json`, compact separators, UTF-8, no
  ``NaN``/``Infinity``. Human-readable; used by the stdio transport and ``symphony bus --codec json``.
* :class:`MsgpackCodec` (``"msgpack"``): :mod:`msgpack` with ``use_bin_type`` so ``str`` and
  ``bytes`` stay apart. Smaller and faster; the default for socket transports.

Contract: ``decode`` of *any* bytes returns a valid message or raises
:class:`~symphony.commons.errors.SerializationError` -- ``bus.decode_failed`` when the bytes are
not the codec's format, ``bus.bad_envelope`` when they are but the envelope is wrong.
``encode`` raises ``SerializationError(code="bus.encode_failed")`` when the payload cannot be
represented (bytes in JSON, a set, an int out of msgpack's 64-bit range ...).

Plugins add codecs with the ``symphony_register_codecs(registry)`` hook
(see :class:`symphony.bus.CodecRegistry`); framing (the 4-byte length prefix) is the
transport's business, not the codec's.

    >>> from symphony.bus import Message
    >>> codec = get_codec("msgpack")
    >>> msg = Message("demo.ping", {"n": 1})
    >>> codec.decode(codec.encode(msg)) == msg
    True
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol, runtime_checkable

import msgpack

from symphony.bus._message import Message, message_from_wire, message_to_wire
from symphony.commons.errors import SerializationError

__all__ = ["BUILTIN_CODECS", "Codec", "JsonCodec", "MsgpackCodec", "get_codec"]


@runtime_checkable
class Codec(Protocol):
    """What the bus needs from a codec: a ``name`` and ``encode``/``decode`` of whole messages."""

    name: str

    def encode(self, msg: Message) -> bytes:
        """Encode ``msg``; raise ``SerializationError(code="bus.encode_failed")`` if impossible."""
        ...

    def decode(self, data: bytes) -> Message:
        """Decode bytes into a valid message, or raise ``SerializationError``."""
        ...


def _encode_failed(codec: str, msg: Message, exc: BaseException) -> SerializationError:
    err = SerializationError(
        f"cannot encode message {msg.type!r} with {codec}: {exc}",
        code="bus.encode_failed",
        context={"codec": codec, "type": msg.type, "id": msg.id, "reason": f"{type(exc).__name__}: {exc}"},
        hint="payloads must be JSON-compatible data (bytes only with msgpack)",
    )
    err.__cause__ = exc
    return err


def _decode_failed(codec: str, data: bytes, exc: BaseException) -> SerializationError:
    err = SerializationError(
        f"cannot decode {len(data)} bytes as {codec}: {exc}",
        code="bus.decode_failed",
        context={"codec": codec, "size": len(data), "reason": f"{type(exc).__name__}: {exc}"[:300]},
    )
    err.__cause__ = exc
    return err


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON payload data")


class JsonCodec:
    """The ``"json"`` codec: stdlib :mod:`json`, compact, UTF-8, finite numbers only."""

    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        self._decoder = json.JSONDecoder(parse_constant=_reject_constant)

    def encode(self, msg: Message) -> bytes:
        """Encode ``msg`` as compact UTF-8 JSON."""
        try:
            return self._encoder.encode(message_to_wire(msg)).encode("utf-8")
        except (TypeError, ValueError, OverflowError, RecursionError, UnicodeError) as exc:
            raise _encode_failed(self.name, msg, exc) from exc

    def decode(self, data: bytes) -> Message:
        """Decode UTF-8 JSON bytes into a checked :class:`Message`."""
        try:
            obj = self._decoder.decode(bytes(data).decode("utf-8"))
        except (ValueError, RecursionError, TypeError, UnicodeError) as exc:
            raise _decode_failed(self.name, bytes(data), exc) from exc
        # JSON can only produce JSON-compatible data (str keys, no bytes; NaN rejected above),
        # so the payload walk is unnecessary.
        return message_from_wire(obj, check_payload_data=False)

    def __repr__(self) -> str:
        return "JsonCodec()"


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


class MsgpackCodec:
    """The ``"msgpack"`` codec: :mod:`msgpack` with ``use_bin_type`` (bytes stay bytes)."""

    name = "msgpack"

    def __init__(self) -> None:
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=True)

    def encode(self, msg: Message) -> bytes:
        """Encode ``msg`` as msgpack."""
        try:
            return self._packer.pack(message_to_wire(msg))  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError, RecursionError, UnicodeError) as exc:
            # A failed pack may leave partial data in the packer's buffer: start afresh.
            self._packer = msgpack.Packer(use_bin_type=True, autoreset=True)
            raise _encode_failed(self.name, msg, exc) from exc

    def decode(self, data: bytes) -> Message:
        """Decode msgpack bytes into a checked :class:`Message`."""
        try:
            obj = msgpack.unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=True,
                ext_hook=_reject_ext,
                timestamp=0,
            )
        except Exception as exc:  # msgpack raises many unrelated types on garbage input
            raise _decode_failed(self.name, bytes(data), exc) from exc
        return message_from_wire(obj)

    def __repr__(self) -> str:
        return "MsgpackCodec()"


BUILTIN_CODECS: Final[dict[str, Codec]] = {"json": JsonCodec(), "msgpack": MsgpackCodec()}
"""The codecs every bus has, by name (shared instances; codecs are stateless)."""


def get_codec(name: str, registry: Any = None) -> Codec:
    """The codec called ``name``: from ``registry`` (a ``CodecRegistry``) if given, else a built-in.

    Raises :class:`~symphony.commons.errors.NotFoundError` (code ``bus.unknown_codec``) naming
    the known codecs.
    """
    if registry is None:
        from symphony.bus._registries import CodecRegistry

        registry = CodecRegistry()
    codec: Codec = registry.get(name)
    return codec
