"""JSON-RPC 2.0 as newline-delimited JSON, and its mapping to bus messages (sans I/O).

Framing: one JSON value per line (UTF-8, ``\\n``-terminated; a trailing ``\\r`` is ignored).
A line may hold one JSON-RPC object or a batch (a non-empty array of them).

Mapping between JSON-RPC and :class:`~symphony.bus.Message`:

===========================================  ===============================================
JSON-RPC                                     Message
===========================================  ===============================================
request ``{"id", "method", "params"}``       ``kind="request"``, ``type=method``, ``payload=params``
notification ``{"method", "params"}``        ``kind="event"``, ``type=method``, ``payload=params``
response ``{"id", "result"}``                ``kind="response"``, ``correlation_id=str(id)``, payload=result
error ``{"id", "error": {code, message, data}}``  ``kind="error"``, payload = the SymphonyError wire form
===========================================  ===============================================

* ``params``: a dict or list payload travels as is; ``None`` leaves ``params`` out; any other
  value travels as a one-element positional array (JSON-RPC allows only arrays and objects).
* Ids: an outgoing request's id is its message id (a string). An incoming request's id may be a
  number or string; the message id is its string form and the answer echoes the original value.
* Non-default envelope fields (``version``, ``headers``) travel in an extension member
  ``"symphony": {"v": 2, "h": {...}}`` that plain JSON-RPC peers ignore.
* Errors: a :class:`~symphony.commons.errors.SymphonyError` becomes an error object whose
  ``data`` is its wire form (so a Symphony peer gets back the same class, code, message,
  context and hint) and whose ``code`` is the closest standard one:

  ======  ====================  =====================================================
  code    meaning               Symphony errors
  ======  ====================  =====================================================
  -32700  parse error           the line is not JSON (``jsonrpc.parse_error``)
  -32600  invalid request       not a JSON-RPC object (``jsonrpc.invalid_request``)
  -32601  method not found      ``bus.no_route``, ``bus.no_handler``, ``bus.unknown_endpoint``
  -32602  invalid params        any validation error
  -32603  internal error        internal errors (a crashed handler)
  -32000  server error          every other SymphonyError (timeout, permission, ...)
  ======  ====================  =====================================================

  An error object without Symphony ``data`` becomes the matching SymphonyError with code
  ``jsonrpc.*`` and the JSON-RPC ``code``/``data`` in its context.

Decoding never raises anything but :class:`~symphony.commons.errors.SymphonyError`; a bad line
or batch item yields a :class:`JsonRpcError` *value* carrying the JSON-RPC code and the request
id (when one could be read), so a server can answer it as the specification requires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

from symphony.bus import Message
from symphony.bus.links import ERROR, EVENT, REQUEST, RESPONSE, check_payload, is_valid_type
from symphony.commons.errors import (
    InternalError,
    NotFoundError,
    SerializationError,
    SymphonyError,
    ValidationError,
    error_from_wire,
)

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SERVER_ERROR",
    "JsonRpcCodec",
    "JsonRpcError",
    "LineSplitter",
    "error_from_jsonrpc",
    "error_response",
    "error_to_jsonrpc",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
SERVER_ERROR: Final = -32000
"""The server-error code used for SymphonyErrors without a closer standard code."""

RESPONSE_TYPE: Final = "jsonrpc.response"
"""Message type given to a response whose request this side does not know."""

_NOT_FOUND_CODES: Final = frozenset(
    {"bus.no_route", "bus.no_handler", "bus.unknown_endpoint", "jsonrpc.method_not_found"}
)
_ID_TYPES: Final = (str, int, type(None))
_MAX_IDS: Final = 100_000


class JsonRpcError(SerializationError):
    """A line or batch item that is not valid JSON-RPC: ``rpc_code`` is the JSON-RPC error code
    to answer with and ``rpc_id`` the request id (``None`` when it could not be read)."""

    default_code = "jsonrpc.invalid_request"

    def __init__(self, message: str, *, rpc_code: int, rpc_id: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.rpc_code = rpc_code
        self.rpc_id = rpc_id


_BY_CODE: Final = {
    "jsonrpc.parse_error": PARSE_ERROR,
    "jsonrpc.truncated_line": PARSE_ERROR,
    "jsonrpc.invalid_request": INVALID_REQUEST,
    "jsonrpc.line_too_long": INVALID_REQUEST,
    "jsonrpc.invalid_params": INVALID_PARAMS,
    "jsonrpc.internal_error": INTERNAL_ERROR,
    **{code: METHOD_NOT_FOUND for code in _NOT_FOUND_CODES},
}


def _rpc_code(err: SymphonyError) -> int:
    rpc_code = getattr(err, "rpc_code", None)
    if isinstance(rpc_code, int):
        return rpc_code
    known = _BY_CODE.get(err.code)
    if known is not None:
        return known
    if err.category == "validation":
        return INVALID_PARAMS
    if err.category == "internal":
        return INTERNAL_ERROR
    return SERVER_ERROR


def error_to_jsonrpc(err: SymphonyError) -> dict[str, Any]:
    """The JSON-RPC error object for ``err`` (``data`` = its Symphony wire form)."""
    return {"code": _rpc_code(err), "message": err.message, "data": err.to_wire()}


def error_from_jsonrpc(obj: Any) -> SymphonyError:
    """A SymphonyError from a JSON-RPC error object (exact when ``data`` is a Symphony wire form)."""
    if not isinstance(obj, Mapping):
        return SerializationError(
            "malformed JSON-RPC error object", code="jsonrpc.bad_error", context={"value": repr(obj)[:200]}
        )
    data = obj.get("data")
    if (
        isinstance(data, Mapping)
        and isinstance(data.get("code"), str)
        and isinstance(data.get("message"), str)
    ):
        return error_from_wire(data)
    code = obj.get("code")
    message = obj.get("message")
    message = message if isinstance(message, str) else "JSON-RPC error"
    context: dict[str, Any] = {
        "jsonrpc_code": code if isinstance(code, int) and not isinstance(code, bool) else repr(code)
    }
    if data is not None:
        context["data"] = data if isinstance(data, (str, int, float, bool, list, dict)) else repr(data)
    if code == PARSE_ERROR:
        return SerializationError(message, code="jsonrpc.parse_error", context=context)
    if code == INVALID_REQUEST:
        return ValidationError(message, code="jsonrpc.invalid_request", context=context)
    if code == METHOD_NOT_FOUND:
        return NotFoundError(message, code="jsonrpc.method_not_found", context=context)
    if code == INVALID_PARAMS:
        return ValidationError(message, code="jsonrpc.invalid_params", context=context)
    if code == INTERNAL_ERROR:
        return InternalError(message, code="jsonrpc.internal_error", context=context)
    return InternalError(message, code="jsonrpc.server_error", context=context)


class LineSplitter:
    """Incremental NDJSON line splitter with a length limit (sans I/O).

    ``feed(bytes)`` returns the complete lines (without the newline). A line longer than
    ``max_line`` bytes is skipped up to its newline and reported once as a
    :class:`JsonRpcError` value in its place.
    """

    __slots__ = ("_buf", "_max", "_skipping")

    def __init__(self, *, max_line: int = 16 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._skipping = False

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete line held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | JsonRpcError]:
        """Add received bytes; return the lines they completed."""
        out: list[bytes | JsonRpcError] = []
        buf = self._buf
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            else:
                line = bytes(buf[start:end])
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line.strip():
                    out.append(line)
            start = end + 1
        if start:
            del buf[:start]
        if len(buf) > self._max:
            if not self._skipping:
                out.append(
                    JsonRpcError(
                        f"a line is longer than {self._max} bytes",
                        rpc_code=INVALID_REQUEST,
                        code="jsonrpc.line_too_long",
                        context={"max_line": self._max},
                    )
                )
            self._skipping = True
            buf.clear()
        return out

    def check_eof(self) -> JsonRpcError | None:
        """The error for an unterminated last line, if any (the peer closed mid-line)."""
        if self._buf.strip() and not self._skipping:
            return JsonRpcError(
                "the stream ended in the middle of a line",
                rpc_code=PARSE_ERROR,
                code="jsonrpc.truncated_line",
                context={"buffered": len(self._buf)},
            )
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _bad(message: str, rpc_code: int, rpc_id: Any = None, **context: Any) -> JsonRpcError:
    code = {
        PARSE_ERROR: "jsonrpc.parse_error",
        INVALID_REQUEST: "jsonrpc.invalid_request",
        METHOD_NOT_FOUND: "jsonrpc.method_not_found",
        INVALID_PARAMS: "jsonrpc.invalid_params",
    }[rpc_code]
    return JsonRpcError(message, rpc_code=rpc_code, rpc_id=rpc_id, code=code, context=context)


class JsonRpcCodec:
    """Turns messages into JSON-RPC lines and lines into messages (see the module docs).

    One instance per connection: it remembers the method of each request in flight (so a
    response gets its request's ``type``) and the original id of each incoming request (so the
    answer echoes it exactly).
    """

    name: str = "jsonrpc"

    def __init__(self) -> None:
        self._methods: dict[str, str] = {}
        self._incoming_ids: dict[str, Any] = {}

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, msg: Message) -> bytes:
        """One JSON-RPC object for ``msg`` (no newline); SerializationError if not JSON-able."""
        kind = msg.kind
        obj: dict[str, Any] = {"jsonrpc": "2.0"}
        cid = None
        if kind == REQUEST or kind == EVENT:
            if kind == REQUEST:
                obj["id"] = msg.id
            obj["method"] = msg.type
            payload = msg.payload
            if payload is not None:
                obj["params"] = payload if payload.__class__ in (dict, list) else [payload]
            extra: dict[str, Any] = {}
            if msg.version != 1:
                extra["v"] = msg.version
            if msg.headers:
                extra["h"] = msg.headers
            if extra:
                obj["symphony"] = extra
        else:
            cid = msg.correlation_id
            # Looked up, not popped: if this answer cannot be encoded, the error answer that
            # replaces it must still carry the request's original id (a number stays a number).
            obj["id"] = self._incoming_ids.get(cid, cid) if cid is not None else None
            if kind == RESPONSE:
                obj["result"] = msg.payload
            else:
                err = error_from_wire(msg.payload)
                obj["error"] = error_to_jsonrpc(err)
        try:
            data = _encoder.encode(obj).encode("utf-8")
        except (TypeError, ValueError, OverflowError, RecursionError, UnicodeError) as exc:
            raise SerializationError(
                f"cannot encode {msg.type!r} as JSON-RPC: {exc}",
                code="bus.encode_failed",
                context={"codec": "jsonrpc", "type": msg.type, "reason": f"{type(exc).__name__}: {exc}"},
                hint="JSON-RPC carries JSON-compatible payloads only (no bytes)",
            ) from exc
        if cid is not None:
            self._incoming_ids.pop(cid, None)
        if kind == REQUEST:
            if len(self._methods) >= _MAX_IDS:
                self._methods.pop(next(iter(self._methods)))
            self._methods[msg.id] = msg.type
        return data

    def forget(self, request_id: str) -> None:
        """Drop the memory of an outgoing request (it timed out and will not be answered)."""
        self._methods.pop(request_id, None)

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, data: bytes) -> Message:
        """Decode one line holding one JSON-RPC object; raise its JsonRpcError if invalid."""
        items = self.decode_line(data)
        if len(items) != 1:
            raise _bad("expected one JSON-RPC object, got a batch", INVALID_REQUEST)
        item = items[0]
        if isinstance(item, JsonRpcError):
            raise item
        return item

    def decode_line(self, line: bytes) -> list[Message | JsonRpcError]:
        """Every message of a line (one object or a batch); bad parts become JsonRpcError values."""
        try:
            obj = _decoder.decode(bytes(line).decode("utf-8"))
        except (ValueError, RecursionError, UnicodeError, TypeError) as exc:
            return [_bad(f"not valid JSON: {exc}"[:300], PARSE_ERROR)]
        if isinstance(obj, list):
            if not obj:
                return [_bad("an empty batch", INVALID_REQUEST)]
            return [self._item(x) for x in obj]
        return [self._item(obj)]

    def _item(self, obj: Any) -> Message | JsonRpcError:
        try:
            return self._message(obj)
        except JsonRpcError as exc:
            return exc
        except SymphonyError as exc:  # a Message field check (bad headers, payload ...)
            rpc_id = obj.get("id") if isinstance(obj, dict) else None
            return _bad(exc.message, INVALID_REQUEST, rpc_id if isinstance(rpc_id, _ID_TYPES) else None)

    def _message(self, obj: Any) -> Message:
        if not isinstance(obj, dict):
            raise _bad("a JSON-RPC message must be an object", INVALID_REQUEST)
        raw_id = obj.get("id")
        rpc_id = raw_id if raw_id.__class__ in _ID_TYPES else None
        if obj.get("jsonrpc") != "2.0":
            raise _bad('"jsonrpc" must be exactly "2.0"', INVALID_REQUEST, rpc_id)
        if raw_id.__class__ not in _ID_TYPES or isinstance(raw_id, bool):
            raise _bad('"id" must be a string, an integer or null', INVALID_REQUEST)
        now = time.time()
        if "method" in obj:
            method = obj["method"]
            if not isinstance(method, str):
                raise _bad('"method" must be a string', INVALID_REQUEST, rpc_id)
            if not is_valid_type(method):
                raise _bad(
                    f"no method {method[:100]!r} (methods are dot-separated names)",
                    METHOD_NOT_FOUND,
                    rpc_id,
                    method=method[:100],
                )
            params = obj.get("params")
            if params is not None and not isinstance(params, (dict, list)):
                raise _bad('"params" must be an array or an object', INVALID_REQUEST, rpc_id)
            check_payload(params, allow_bytes=False)
            version, headers = 1, {}
            extra = obj.get("symphony")
            if isinstance(extra, dict):
                v = extra.get("v", 1)
                version = v if v.__class__ is int and 1 <= v < 2**31 else 1
                h = extra.get("h")
                if isinstance(h, dict) and all(
                    k.__class__ is str and x.__class__ is str for k, x in h.items()
                ):
                    headers = h
            if "id" not in obj:
                return Message(method, params, kind=EVENT, version=version, headers=headers, timestamp=now)
            msg_id = _id_text(raw_id)
            if len(self._incoming_ids) >= _MAX_IDS:
                self._incoming_ids.pop(next(iter(self._incoming_ids)))
            self._incoming_ids[msg_id] = raw_id
            return Message(
                method, params, id=msg_id, kind=REQUEST, version=version, headers=headers, timestamp=now
            )
        has_result, has_error = "result" in obj, "error" in obj
        if has_result == has_error:
            raise _bad("a response needs exactly one of 'result' and 'error'", INVALID_REQUEST, rpc_id)
        if "id" not in obj:
            raise _bad("a response needs an 'id'", INVALID_REQUEST)
        cid = None if raw_id is None else _id_text(raw_id)
        type_ = self._methods.pop(cid, RESPONSE_TYPE) if cid is not None else RESPONSE_TYPE
        if has_result:
            result = obj["result"]
            check_payload(result, allow_bytes=False)
            return Message(type_, result, kind=RESPONSE, correlation_id=cid, timestamp=now)
        err = error_from_jsonrpc(obj["error"])
        return Message(type_, err.to_wire(), kind=ERROR, correlation_id=cid, timestamp=now)


def _id_text(raw_id: Any) -> str:
    text = raw_id if isinstance(raw_id, str) else str(raw_id)
    if not text or len(text) > 256:
        raise _bad("request ids must be 1 to 256 characters", INVALID_REQUEST)
    return text


def error_response(err: JsonRpcError) -> bytes:
    """The JSON-RPC error response line (no newline) answering a bad line or batch item."""
    obj = {"jsonrpc": "2.0", "id": err.rpc_id, "error": error_to_jsonrpc(err)}
    return _encoder.encode(obj).encode("utf-8")
