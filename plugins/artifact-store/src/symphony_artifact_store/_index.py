"""The SQLite index (WAL mode): one row per object, tags, lineage, refs and their history.

Each thread gets its own connection (reads run in parallel under WAL); writes are explicit
``BEGIN IMMEDIATE`` transactions, so two writers — threads or processes — serialize on the
database's write lock, which is also what orders a put against a collector.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from symphony.commons.errors import FilesystemError, InternalError, SymphonyError
from symphony_artifact_store._fsio import os_error

__all__ = ["SCHEMA_VERSION", "Index", "Row", "Txn", "db_error", "key64"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects(
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    k INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    size INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    tier TEXT NOT NULL DEFAULT 'hot',
    encoding TEXT NOT NULL DEFAULT 'identity',
    inline INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'present',
    media_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    producer_workflow TEXT,
    producer_run TEXT,
    producer_node TEXT,
    meta TEXT,
    pinned INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    last_put REAL NOT NULL,
    accessed REAL NOT NULL,
    trashed_at REAL,
    put_count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS objects_k ON objects(k, state, digest);
CREATE INDEX IF NOT EXISTS objects_created ON objects(created);
CREATE INDEX IF NOT EXISTS objects_media_type ON objects(media_type);
CREATE INDEX IF NOT EXISTS objects_producer ON objects(producer_workflow, producer_run, producer_node);
CREATE TABLE IF NOT EXISTS inline_data(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tags(tag TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY(tag, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_id ON tags(id, tag);
CREATE TABLE IF NOT EXISTS lineage(child TEXT NOT NULL, parent TEXT NOT NULL, PRIMARY KEY(child, parent)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lineage_by_parent ON lineage(parent, child);
CREATE TABLE IF NOT EXISTS refs(
    name TEXT PRIMARY KEY, digest TEXT NOT NULL, version INTEGER NOT NULL, time REAL NOT NULL, message TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_by_digest ON refs(digest);
CREATE TABLE IF NOT EXISTS ref_history(
    name TEXT NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL, time REAL NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY(name, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ref_history_by_digest ON ref_history(digest);
CREATE TABLE IF NOT EXISTS store_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO store_meta(key, value) VALUES ('presence_epoch', 0);
CREATE TRIGGER IF NOT EXISTS objects_presence_update AFTER UPDATE OF state ON objects
    WHEN OLD.state != NEW.state
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'presence_epoch'; END;
CREATE TRIGGER IF NOT EXISTS objects_presence_delete AFTER DELETE ON objects
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'presence_epoch'; END;
"""

ROW_COLUMNS = "id, digest, size, stored_size, tier, encoding, inline, state, accessed, last_put, pinned"


class Row(NamedTuple):
    """The columns of an object row that reads and moves need."""

    id: int
    digest: str
    size: int
    stored_size: int
    tier: str
    encoding: str
    inline: int
    state: str
    accessed: float
    last_put: float
    pinned: int


def key64(hex: str) -> int:
    """The first 8 bytes of a hash as a signed 64-bit integer (the batch-lookup key)."""
    return int(hex[:16], 16) - (1 << 63)


class Txn:
    """An open write transaction: its connection and the undo actions to run on rollback."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.undo: list[Callable[[], object]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement inside the transaction."""
        return self.conn.execute(sql, params)

    def rollback(self) -> None:
        """Run the undo actions (last first), then roll back."""
        for action in reversed(self.undo):
            try:
                action()
            except Exception:  # an undo must not hide the error that caused the rollback
                pass
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


class _Holder:
    """One thread's connection; closed when the thread's locals go (worker threads come and go)."""

    __slots__ = ("__weakref__", "conn", "synchronous")

    def __init__(self, conn: sqlite3.Connection, synchronous: str) -> None:
        self.conn = conn
        self.synchronous = synchronous

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def __del__(self) -> None:
        self.close()


class Index:
    """Connections to one index file, one per thread."""

    def __init__(self, path: Path, *, busy_timeout: float, durable: bool = True) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.synchronous = "FULL" if durable else "NORMAL"
        self._local = threading.local()
        self._all: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        conn = self.conn()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.executescript(
                    "BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;"
                )
            elif version != SCHEMA_VERSION:
                raise InternalError(
                    f"index {path} has schema version {version}; this symphony-artifact-store reads {SCHEMA_VERSION}",
                    code="artifact.index.version",
                    context={"path": str(path), "version": version, "supported": SCHEMA_VERSION},
                    hint="upgrade symphony-artifact-store",
                )
        except sqlite3.Error as exc:
            self.close()
            raise _db_error(exc, path) from exc

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use; closed when the thread ends)."""
        return self._holder().conn

    def _holder(self) -> _Holder:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is not None:
            return holder
        if self._closed:
            raise SymphonyError(
                "the artifact store is closed", code="artifact.closed", context={"path": str(self.path)}
            )
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise _db_error(exc, self.path) from exc
        holder = _Holder(conn, self.synchronous)
        self._local.holder = holder
        with self._lock:
            self._all.add(holder)
        return holder

    @contextmanager
    def write(self, *, sync: bool = True) -> Iterator[Txn]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error.

        ``sync=False`` commits without syncing the WAL (``synchronous=NORMAL``): for a row that
        a durable put record covers (see ``_journal``). Callables added to ``txn.undo`` run
        before a rollback, while the write lock is still held (to remove a file the transaction
        had put in place).
        """
        holder = self._holder()
        conn = holder.conn
        synchronous = self.synchronous if sync else "NORMAL"
        try:
            if holder.synchronous != synchronous:  # SQLite refuses to change it inside a transaction
                conn.execute(f"PRAGMA synchronous={synchronous}")
                holder.synchronous = synchronous
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _db_error(exc, self.path) from exc
        txn = Txn(conn)
        try:
            yield txn
        except BaseException:
            txn.rollback()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            txn.rollback()
            raise _db_error(exc, self.path) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a read query and return all rows."""
        try:
            return self.conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _db_error(exc, self.path) from exc

    def _one(self, conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Any:
        """The first row of a read query, or None."""
        try:
            return conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _db_error(exc, self.path) from exc

    def row(self, digest: str, txn: Txn | None = None) -> Row | None:
        """The object row for a canonical digest string, or None."""
        c = txn.conn if txn is not None else self.conn()
        found = self._one(c, f"SELECT {ROW_COLUMNS} FROM objects WHERE digest = ?", (digest,))
        return None if found is None else Row(*found)

    def row_and_inline(self, digest: str) -> tuple[Row | None, bytes | None]:
        """The object row for a canonical digest string and, for an inline object, its bytes
        (one query: what a read of a small artifact needs)."""
        found = self._one(
            self.conn(),
            f"SELECT {ROW_COLUMNS}, (SELECT data FROM inline_data WHERE inline_data.id = objects.id)"
            " FROM objects WHERE digest = ?",
            (digest,),
        )
        if found is None:
            return None, None
        data = found[-1]
        return Row(*found[:-1]), None if data is None else bytes(data)

    def close(self) -> None:
        """Close every connection this index opened."""
        self._closed = True
        with self._lock:
            holders, self._all = list(self._all), weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._local = threading.local()


def _db_error(exc: sqlite3.Error, path: Path) -> SymphonyError:
    """A SymphonyError for an SQLite failure, naming the index file."""
    message = str(exc)
    code = getattr(exc, "sqlite_errorname", "")
    if code in ("SQLITE_FULL", "SQLITE_IOERR_WRITE"):
        import errno as _errno

        return os_error(OSError(_errno.ENOSPC, message), path, "write the index")
    if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        from symphony.commons.errors import OperationTimeoutError

        return OperationTimeoutError(
            f"the artifact index {path} stayed locked by another writer: {message}",
            code="artifact.index.busy",
            context={"path": str(path)},
            hint="raise [artifact_store] busy_timeout",
        )
    if code in ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY_DIRECTORY"):
        from symphony.commons.errors import PermissionDeniedError

        return PermissionDeniedError(
            f"cannot write the artifact index {path}: {message}",
            code="artifact.index.unwritable",
            context={"path": str(path)},
            hint="set [artifact_store] root to a writable directory",
        )
    return FilesystemError(
        f"artifact index {path} failed: {message}",
        code="artifact.index.failed",
        context={"path": str(path), "sqlite_error": code},
    )


db_error = _db_error
