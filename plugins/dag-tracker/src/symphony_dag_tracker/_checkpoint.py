"""The durable checkpoint log: one SQLite file (WAL) holding runs, their transitions and the memo table.

Every transition of a run is appended to ``log`` before the tracker acts on it; appends are
grouped into transactions (group commit: a batch is committed when it is full, when it is
``max_delay`` seconds old, whenever the tracker is about to wait, and always before a run
reports a final state), so a process that is
killed loses at most the transitions of the batch in flight, never a committed one, and a
resumed run replays exactly what was committed. ``memo`` maps a memo key (node type,
implementation version, config and input digests) to the outputs it produced, across runs and
processes.

A file that is not a checkpoint database, or fails SQLite's ``quick_check``, raises
:class:`CheckpointError`: the log is never silently recreated.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from symphony.commons.errors import IntegrityError, NotFoundError, ValidationError

__all__ = ["CheckpointError", "CheckpointLog", "LogRecord", "RunRecord"]

SCHEMA_VERSION = "1"
_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    workflow TEXT NOT NULL,
    inputs TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    node TEXT,
    event TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    data TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memo (
    key TEXT PRIMARY KEY,
    node_type TEXT NOT NULL,
    outputs TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""


class CheckpointError(IntegrityError):
    """The checkpoint database is unreadable or inconsistent (it is never silently recreated)."""

    default_code = "dag.checkpoint.corrupt"


@attrs.frozen
class RunRecord:
    """One run as the checkpoint database knows it."""

    run_id: str
    workflow_id: str
    workflow_name: str
    fingerprint: str
    workflow: str
    inputs: str
    state: str
    error: str | None
    created: float
    updated: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without the workflow document)."""
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "state": self.state,
            "error": self.error,
            "created": self.created,
            "updated": self.updated,
        }


@attrs.frozen
class LogRecord:
    """One logged transition."""

    seq: int
    node: str | None
    event: str
    attempt: int
    data: Any


def _corrupt(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint database {path} is unreadable: {why}",
        code="dag.checkpoint.corrupt",
        context={"path": str(path), "problem": why},
        hint="restore it from a backup or move it aside; runs recorded in it cannot be resumed without it",
    )


class CheckpointLog:
    """The checkpoint database at ``path`` (created if absent, checked if present)."""

    def __init__(
        self, path: str | Path, *, durable: bool = False, batch_size: int = 2048, max_delay: float = 0.2
    ) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self.max_delay = max_delay
        self._last_flush = time.time()
        self._pending: list[tuple[Any, ...]] = []
        self._memo_pending: list[tuple[str, str, str, float]] = []
        self._memo_recent: dict[str, str] = {}
        self._seq: dict[str, int] = {}
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            with open(self.path, "rb") as fh:
                if fh.read(16) != _HEADER:
                    raise _corrupt(self.path, "not an SQLite database")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _corrupt(self.path, str(exc)) from None
        try:
            self._db.execute("PRAGMA busy_timeout=30000")
            if exists:
                rows = self._db.execute("PRAGMA quick_check").fetchall()
                if [r[0] for r in rows] != ["ok"]:
                    raise _corrupt(self.path, "; ".join(str(r[0]) for r in rows[:3]))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            if exists:
                version = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if version is None or version[0] != SCHEMA_VERSION:
                    raise _corrupt(self.path, f"unknown schema version {version and version[0]!r}")
            else:
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
        except sqlite3.Error as exc:
            self._db.close()
            raise _corrupt(self.path, str(exc)) from None
        except CheckpointError:
            self._db.close()
            raise

    # -- runs -------------------------------------------------------------------------------------

    def create_run(
        self, run_id: str, *, workflow_id: str, workflow_name: str, fingerprint: str, workflow: str, inputs: str
    ) -> None:
        """Record a new run (state ``running``)."""
        now = time.time()
        try:
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, 'running', NULL, ?, ?)",
                (run_id, workflow_id, workflow_name, fingerprint, workflow, inputs, now, now),
            )
        except sqlite3.IntegrityError:
            raise ValidationError(
                f"run id {run_id!r} is already taken", code="dag.run.duplicate", context={"run": run_id}
            ) from None
        self._seq[run_id] = 0

    def run(self, run_id: str) -> RunRecord:
        """The run ``run_id``; :class:`NotFoundError` naming the known runs if there is none."""
        row = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r[0] for r in self._query("SELECT run_id FROM runs ORDER BY created DESC LIMIT 5", ())]
            raise NotFoundError(
                f"no run {run_id!r} in {self.path}",
                code="dag.run.not_found",
                context={"run": run_id, "recent": known},
                hint="`symphony runs list` shows the recorded runs",
            )
        return RunRecord(*row)

    def runs(self, *, limit: int = 100) -> list[RunRecord]:
        """The most recent runs, newest first."""
        rows = self._query("SELECT * FROM runs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [RunRecord(*r) for r in rows]

    def set_state(self, run_id: str, state: str, error: str | None = None) -> None:
        """Flush pending records and record the run's state."""
        self.flush()
        self._db.execute(
            "UPDATE runs SET state = ?, error = ?, updated = ? WHERE run_id = ?",
            (state, error, time.time(), run_id),
        )

    # -- the log ----------------------------------------------------------------------------------

    def append(self, run_id: str, node: str | None, event: str, attempt: int = 0, data: str | None = None) -> None:
        """Append one transition (committed with its batch)."""
        seq = self._seq[run_id] = self._seq.get(run_id, 0) + 1
        now = time.time()
        self._pending.append((run_id, seq, node, event, attempt, data, now))
        if len(self._pending) >= self.batch_size or now - self._last_flush > self.max_delay:
            self.flush()

    def flush(self) -> None:
        """Commit every pending record and memo entry in one transaction."""
        self._last_flush = time.time()
        if not self._pending and not self._memo_pending:
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            if self._pending:
                db.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending)
            if self._memo_pending:
                db.executemany("INSERT OR REPLACE INTO memo VALUES (?, ?, ?, ?)", self._memo_pending)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise _corrupt(self.path, f"cannot write: {exc}") from None
        self._pending.clear()
        self._memo_pending.clear()
        self._memo_recent.clear()

    def records(self, run_id: str) -> Iterator[LogRecord]:
        """The committed records of ``run_id`` in order; :class:`CheckpointError` on a damaged one."""
        last = 0
        for seq, node, event, attempt, data in self._query(
            "SELECT seq, node, event, attempt, data FROM log WHERE run_id = ? ORDER BY seq", (run_id,)
        ):
            if seq != last + 1:
                raise _corrupt(self.path, f"run {run_id}: record {last + 1} is missing (next is {seq})")
            last = seq
            try:
                value = None if data is None else json.loads(data)
            except ValueError:
                raise _corrupt(self.path, f"run {run_id}: record {seq} is not valid JSON") from None
            yield LogRecord(seq, node, event, attempt, value)
        self._seq[run_id] = last

    # -- memo -------------------------------------------------------------------------------------

    def memo_get(self, key: str) -> str | None:
        """The outputs stored under memo ``key`` (pending ones included), or ``None``."""
        found = self._memo_recent.get(key)
        if found is not None:
            return found
        row = self._db.execute("SELECT outputs FROM memo WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def memo_put(self, key: str, node_type: str, outputs: str) -> None:
        """Remember ``outputs`` under ``key`` (committed with the current batch)."""
        self._memo_pending.append((key, node_type, outputs, time.time()))
        self._memo_recent[key] = outputs

    def memo_count(self) -> int:
        """How many memo entries are committed."""
        return int(self._db.execute("SELECT count(*) FROM memo").fetchone()[0])

    def _query(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, str(exc)) from None

    def close(self) -> None:
        """Flush and close."""
        try:
            self.flush()
        finally:
            self._db.close()
