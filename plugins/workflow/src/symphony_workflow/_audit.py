"""The audit log: every state change and command of every execution, queryable and exportable.

:class:`AuditLog` appends :class:`AuditEntry` records to a storage backend —
:class:`MemoryAuditStorage` or :class:`JsonlAuditStorage` (one JSON object per line, appended
and flushed per entry, so a crash loses at most the entry being written). Queries filter by
execution, entry type, actor and time range, with paging. :meth:`AuditLog.export_json` and
:meth:`AuditLog.export_csv` write entries in forms that :meth:`AuditLog.import_json` and
:meth:`AuditLog.import_csv` read back unchanged. ``a``-prefixed methods run the same work in a
worker thread for async callers.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import anyio
import attrs

from symphony.commons.errors import ValidationError
from symphony_workflow._events import ExecutionEvent

__all__ = ["AuditEntry", "AuditLog", "AuditSink", "AuditStorage", "JsonlAuditStorage", "MemoryAuditStorage"]

CSV_FIELDS = ("id", "execution_id", "workflow_id", "at", "type", "actor", "node_id", "details")
"""Column order of the CSV export."""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@attrs.frozen
class AuditEntry:
    """One audit record: who (``actor``) did or caused what (``type``, ``details``) and when."""

    execution_id: str
    workflow_id: str
    at: datetime
    type: str
    details: Mapping[str, Any] = attrs.field(factory=dict)
    actor: str = "system"
    node_id: str | None = None
    id: str = attrs.field(factory=lambda: str(uuid.uuid4()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (timestamps as ISO 8601 UTC)."""
        return {
            "id": self.id,
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "at": _ts(self.at),
            "type": self.type,
            "actor": self.actor,
            "node_id": self.node_id,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "$") -> AuditEntry:
        """The inverse of :meth:`to_dict`; :class:`ValidationError` naming ``where`` if malformed."""
        try:
            at = datetime.fromisoformat(str(data["at"]))
            if at.tzinfo is None:
                raise ValueError("timestamp has no timezone")
            details = data.get("details") or {}
            if not isinstance(details, Mapping):
                raise ValueError("details must be an object")
            node_id = data.get("node_id")
            return cls(
                id=_s(data["id"]),
                execution_id=_s(data["execution_id"]),
                workflow_id=_s(data["workflow_id"]),
                at=at.astimezone(UTC),
                type=_s(data["type"]),
                actor=_s(data.get("actor", "system")),
                node_id=None if node_id in (None, "") else _s(node_id),
                details=dict(details),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ValidationError(
                f"malformed audit entry at {where}: {type(exc).__name__}: {exc}",
                code="workflow.audit.malformed",
                context={"path": where},
            ) from None


def _s(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {type(value).__name__}")
    return value


class AuditStorage(Protocol):
    """Where audit entries live."""

    def append(self, entry: AuditEntry) -> None:
        """Store one entry."""

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first."""


class MemoryAuditStorage:
    """Entries in a list (lost when the process ends)."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> None:
        """Store one entry."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first."""
        with self._lock:
            snapshot = list(self._entries)
        return iter(snapshot)


class JsonlAuditStorage:
    """Entries appended to a JSON-lines file, one per line, flushed per entry.

    Reading tolerates a torn last line (a crash mid-write) but reports any other bad line with
    its number.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> None:
        """Append one entry as a line."""
        line = json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
                    fh.flush()
                    if self._fsync:
                        import os

                        os.fsync(fh.fileno())
            except OSError as exc:
                from symphony.commons.errors import from_os_error

                raise from_os_error(exc, path=self.path, action="append to") from exc

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in the file, oldest first."""
        with self._lock:
            try:
                text = self.path.read_text("utf-8")
            except FileNotFoundError:
                return iter(())
            except OSError as exc:
                from symphony.commons.errors import from_os_error

                raise from_os_error(exc, path=self.path, action="read") from exc
        lines = text.split("\n")
        torn = not text.endswith("\n")
        out: list[AuditEntry] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                if torn and number == len(lines):
                    break
                raise ValidationError(
                    f"audit file {self.path} has a corrupt line {number}",
                    code="workflow.audit.corrupt",
                    context={"file": str(self.path), "line": number},
                ) from None
            if not isinstance(data, dict):
                raise ValidationError(
                    f"audit file {self.path} line {number} is not an object",
                    code="workflow.audit.corrupt",
                    context={"file": str(self.path), "line": number},
                )
            out.append(AuditEntry.from_dict(data, where=f"{self.path}:{number}"))
        return iter(out)


class AuditLog:
    """Append, query and export audit entries over an :class:`AuditStorage`."""

    def __init__(self, storage: AuditStorage | None = None) -> None:
        self.storage: AuditStorage = storage if storage is not None else MemoryAuditStorage()

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Store ``entry`` and return it."""
        self.storage.append(entry)
        return entry

    def record(
        self,
        *,
        execution_id: str,
        workflow_id: str,
        type: str,
        details: Mapping[str, Any] | None = None,
        actor: str = "system",
        node_id: str | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Build and store an entry."""
        return self.append(
            AuditEntry(
                execution_id=execution_id,
                workflow_id=workflow_id,
                at=at or datetime.now(UTC),
                type=type,
                details=dict(details or {}),
                actor=actor,
                node_id=node_id,
            )
        )

    def query(
        self,
        *,
        execution_id: str | None = None,
        types: Iterable[str] | None = None,
        actor: str | None = None,
        node_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, oldest first; ``since`` inclusive, ``until`` exclusive."""
        if offset < 0 or (limit is not None and limit < 0):
            raise ValidationError("limit and offset must be >= 0", code="workflow.audit.bad_paging")
        wanted = None if types is None else set(types)
        out: list[AuditEntry] = []
        skipped = 0
        for e in self.storage.entries():
            if execution_id is not None and e.execution_id != execution_id:
                continue
            if wanted is not None and e.type not in wanted:
                continue
            if actor is not None and e.actor != actor:
                continue
            if node_id is not None and e.node_id != node_id:
                continue
            if since is not None and e.at < since:
                continue
            if until is not None and e.at >= until:
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append(e)
            if limit is not None and len(out) >= limit:
                break
        return out

    def by_execution(self, execution_id: str) -> list[AuditEntry]:
        """Every entry of one execution."""
        return self.query(execution_id=execution_id)

    async def aquery(self, **filters: Any) -> list[AuditEntry]:
        """:meth:`query` in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: self.query(**filters))

    # -- export / import --------------------------------------------------------------------------

    @staticmethod
    def export_json(entries: Iterable[AuditEntry]) -> str:
        """A JSON array of the entries."""
        return json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2, default=str)

    @staticmethod
    def export_csv(entries: Iterable[AuditEntry]) -> str:
        """CSV with a header row; ``details`` is a JSON object in one column."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for e in entries:
            row = e.to_dict()
            row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True, default=str)
            row["node_id"] = row["node_id"] or ""
            writer.writerow(row)
        return buf.getvalue()

    @staticmethod
    def import_json(text: str) -> list[AuditEntry]:
        """Entries from :meth:`export_json` output."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValidationError(
                f"audit export is not JSON: {exc}", code="workflow.audit.malformed"
            ) from None
        if not isinstance(data, list):
            raise ValidationError(
                "audit export must be a JSON array", code="workflow.audit.malformed", context={"path": "$"}
            )
        return [
            AuditEntry.from_dict(d if isinstance(d, Mapping) else {}, where=f"$[{i}]")
            for i, d in enumerate(data)
        ]

    @staticmethod
    def import_csv(text: str) -> list[AuditEntry]:
        """Entries from :meth:`export_csv` output."""
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or tuple(reader.fieldnames) != CSV_FIELDS:
            raise ValidationError(
                "audit CSV must start with the header " + ",".join(CSV_FIELDS),
                code="workflow.audit.malformed",
                context={"line": 1},
            )
        out = []
        for number, row in enumerate(reader, start=2):
            try:
                details = json.loads(row.get("details") or "{}")
            except (json.JSONDecodeError, RecursionError):
                raise ValidationError(
                    f"audit CSV line {number}: details is not JSON",
                    code="workflow.audit.malformed",
                    context={"line": number},
                ) from None
            out.append(AuditEntry.from_dict({**row, "details": details}, where=f"line {number}"))
        return out


class AuditSink:
    """An event sink that records every execution event in an :class:`AuditLog`."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def emit(self, event: ExecutionEvent) -> None:
        """Append the event as an entry of type ``event.kind``."""
        self.log.append(
            AuditEntry(
                execution_id=event.execution_id,
                workflow_id=event.workflow_id,
                at=event.at,
                type=event.kind.value,
                details=_jsonable(dict(event.data)),
                actor=event.actor,
                node_id=event.node_id,
            )
        )


def _jsonable(value: Any) -> Any:
    from symphony_workflow._serialization import to_jsonable

    return to_jsonable(value)
