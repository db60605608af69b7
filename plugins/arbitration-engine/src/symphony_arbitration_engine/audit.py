"""The audit log: every input and decision of an engine as hash-chained JSON lines.

Each line is one JSON object ``{"seq", "at", "kind", ..., "prev", "hash"}`` where ``hash`` is
the SHA-256 of the line's canonical JSON without ``hash`` (``prev`` included), and ``prev`` is
the previous line's hash (64 zeros for the first). Editing, removing, reordering or inserting a
line breaks the chain; :func:`verify_audit` finds the first broken line. Kinds: ``config``,
``owner``, ``submit``, ``release``, ``cancel``, ``tick`` (inputs) and ``decision`` (outputs);
:func:`~symphony_arbitration_engine.replay` feeds the inputs to a fresh engine and checks that
it decides the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from symphony_arbitration_engine.errors import AuditTamperedError

__all__ = ["GENESIS", "AuditLog", "read_audit", "verify_audit"]

GENESIS = "0" * 64
"""The ``prev`` of the first line."""

_KINDS = frozenset({"config", "owner", "submit", "release", "cancel", "tick", "decision"})


def _digest(record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


class AuditLog:
    """Appends records in memory and, with ``path``, to a JSON-lines file (flushed per line)."""

    def __init__(self, path: str | Path | None = None, *, keep: bool = True) -> None:
        self.path = None if path is None else Path(path)
        self.records: list[dict[str, Any]] = []
        self._keep = keep
        self._seq = 0
        self._prev = GENESIS
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size:
                existing = verify_audit(self.path.read_text(encoding="utf-8").splitlines())
                if existing:
                    self._seq = int(existing[-1]["seq"])
                    self._prev = str(existing[-1]["hash"])
            self._file = self.path.open("a", encoding="utf-8")

    def append(self, kind: str, at: float, **data: Any) -> dict[str, Any]:
        """Add one record and return it (with its ``seq``, ``prev`` and ``hash``)."""
        self._seq += 1
        record: dict[str, Any] = {"seq": self._seq, "at": at, "kind": kind, **data, "prev": self._prev}
        record["hash"] = self._prev = _digest(record)
        if self._keep:
            self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            self._file.flush()
        return record

    def lines(self) -> Iterator[str]:
        """The kept records as JSON lines."""
        for record in self.records:
            yield json.dumps(record, sort_keys=True, ensure_ascii=False)

    def close(self) -> None:
        """Close the file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _tampered(line: int, why: str, **context: Any) -> AuditTamperedError:
    return AuditTamperedError(
        f"audit log line {line}: {why}", context={"line": line, **context}, hint="the log was edited or truncated"
    )


def verify_audit(lines: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """Parse and check every line; the records, or AuditTamperedError naming the first bad line."""
    records: list[dict[str, Any]] = []
    prev = GENESIS
    number = 0
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if not text.strip():
                raise _tampered(number, "empty line")
            record = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _tampered(number, f"not a JSON object ({type(exc).__name__})") from None
        if not isinstance(record, dict):
            raise _tampered(number, "not a JSON object")
        stated = record.get("hash")
        if not isinstance(stated, str):
            raise _tampered(number, "no hash")
        body = {k: v for k, v in record.items() if k != "hash"}
        try:
            actual = _digest(body)
        except (TypeError, ValueError) as exc:
            raise _tampered(number, f"unhashable content ({exc})") from None
        if actual != stated:
            raise _tampered(number, "hash does not match the content", seq=record.get("seq"))
        if record.get("prev") != prev:
            raise _tampered(number, "chain broken: prev is not the previous line's hash", seq=record.get("seq"))
        if record.get("seq") != number:
            raise _tampered(number, "sequence number out of order", seq=record.get("seq"))
        if record.get("kind") not in _KINDS:
            raise _tampered(number, f"unknown record kind {record.get('kind')!r}")
        at = record.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise _tampered(number, "no time")
        prev = stated
        records.append(record)
    return records


def read_audit(path: str | Path) -> list[dict[str, Any]]:
    """Read and verify an audit file."""
    from symphony.commons.fs import read_text

    return verify_audit(read_text(path).splitlines())
