"""Values between nodes: checking them against port types, encoding them, and their digests.

Every value has a digest: the artifact digest of its encoding (raw bytes for ``bytes`` values,
canonical JSON otherwise), so the same value always gets the same digest and a large one can
be stored in the artifact store under it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from symphony.commons.errors import ValidationError
from symphony_artifact_store import Digest, hash_bytes

__all__ = ["ValueCodec", "check_value", "checker_for"]

Checker = Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and (
        not isinstance(v, float) or math.isfinite(v)
    )


def _is_json(v: Any, depth: int = 0) -> bool:
    if v is None or isinstance(v, str | bool):
        return True
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if depth > 64:
        return False
    if isinstance(v, list | tuple):
        return all(_is_json(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json(x, depth + 1) for k, x in v.items())
    return False


_SCALARS: dict[str, Checker] = {
    "any": lambda v: True,
    "text": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": _is_int,
    "bool": lambda v: isinstance(v, bool),
    "bytes": lambda v: isinstance(v, bytes | bytearray),
    "json": _is_json,
    "file": lambda v: isinstance(v, str | os.PathLike),
}

_CHECKERS: dict[str, Checker] = {}


def checker_for(port_type: str) -> Checker:
    """A predicate telling whether a value fits ``port_type`` (``list[T]`` nests).

    A scalar type this module does not know (a plugin's own, added with
    ``TypeSystem.extended``) accepts any value: only its plugin knows its shape.
    """
    found = _CHECKERS.get(port_type)
    if found is not None:
        return found
    text = port_type.replace(" ", "")
    depth = 0
    while text.startswith("list[") and text.endswith("]"):
        text, depth = text[5:-1], depth + 1
    check: Checker = _SCALARS.get(text, _SCALARS["any"])
    for _ in range(depth):
        check = _list_of(check)
    if len(_CHECKERS) < 10_000:
        _CHECKERS[port_type] = check
    return check


def _list_of(item: Checker) -> Checker:
    def check(v: Any) -> bool:
        return isinstance(v, list | tuple) and all(item(x) for x in v)

    return check


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return type(value).__name__


def check_value(value: Any, port_type: str, *, node: str, port: str, direction: str) -> None:
    """Raise :class:`ValidationError` if ``value`` does not fit ``port_type``."""
    if not checker_for(port_type)(value):
        raise ValidationError(
            f"node {node!r}: {direction} {port!r} expects {port_type}, got {_type_name(value)} "
            f"({repr(value)[:80]})",
            code=f"dag.value.bad_{direction}",
            context={"node": node, "port": port, "expected": port_type, "found": _type_name(value)},
        )


_SMALL = 64
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class ValueCodec:
    """Encodes values (JSON or raw bytes) and computes their digests, remembering small ones."""

    def __init__(self, algorithm: str = "blake3") -> None:
        self.algorithm = algorithm
        self._small: dict[bytes, Digest] = {}

    def encode(self, value: Any) -> tuple[str, bytes]:
        """``("b", raw)`` for bytes, ``("j", canonical JSON)`` otherwise; ``ValidationError`` if neither."""
        if isinstance(value, bytes | bytearray):
            return "b", bytes(value)
        if value is None:
            return "j", b"null"
        try:
            text = _CANONICAL(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"value of type {type(value).__name__} cannot be stored: {exc}",
                code="dag.value.unserializable",
                context={"type": type(value).__name__},
                hint="node values must be JSON values or bytes",
            ) from None
        return "j", text.encode("utf-8")

    @staticmethod
    def decode(kind: str, data: bytes) -> Any:
        """The value :meth:`encode` turned into ``(kind, data)``."""
        if kind == "b":
            return data
        return json.loads(data)

    def digest(self, data: bytes) -> Digest:
        """The artifact digest of ``data`` (small encodings are remembered)."""
        if len(data) <= _SMALL:
            found = self._small.get(data)
            if found is None:
                found = hash_bytes(self.algorithm, data)
                if len(self._small) < 4096:
                    self._small[data] = found
            return found
        return hash_bytes(self.algorithm, data)

    def fingerprint(self, parts: Any) -> str:
        """A hex digest of a JSON-able structure (memo keys, workflow fingerprints)."""
        data = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hash_bytes(self.algorithm, data.encode("utf-8")).hex


def outputs_problem(node: str, ports: Mapping[str, str], outputs: object) -> ValidationError | None:
    """Why ``outputs`` is not a valid outputs mapping for ``ports`` (``None`` if it is)."""
    if not isinstance(outputs, Mapping):
        return ValidationError(
            f"node {node!r} returned {_type_name(outputs)}, not a mapping of its output ports",
            code="dag.value.bad_outputs",
            context={"node": node, "expected": sorted(ports), "found": _type_name(outputs)},
        )
    missing = [p for p in ports if p not in outputs]
    extra = [str(p) for p in outputs if p not in ports]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unknown {', '.join(sorted(extra))}")
        return ValidationError(
            f"node {node!r} returned wrong outputs: {'; '.join(parts)} (declared: {', '.join(ports) or 'none'})",
            code="dag.value.bad_outputs",
            context={"node": node, "missing": missing, "unknown": sorted(extra), "declared": list(ports)},
        )
    return None
