"""An in-memory set of the stored digests, kept exact across processes, for ``find_missing``.

The index counts every change that can make an artifact disappear or come back (a trigger
bumps ``store_meta.presence_epoch`` whenever a row's state changes or a row is deleted); new
artifacts only ever get row ids above the highest one seen. So the cache reads, in one
snapshot, the epoch and the highest id: the same epoch means it only has to add the rows
inserted since, a new epoch means it reloads. A store with more than ``MAX_ENTRIES``
artifacts is not cached (``find_missing`` then asks the index directly).
"""

from __future__ import annotations

import sqlite3
import threading

from symphony_artifact_store._index import Index, db_error

__all__ = ["MAX_ENTRIES", "PresenceCache"]

MAX_ENTRIES = 2_000_000


class PresenceCache:
    """The digests of present artifacts, refreshed from the index on every use."""

    def __init__(self, index: Index, max_entries: int = MAX_ENTRIES) -> None:
        self._index = index
        self._max = max_entries
        self._lock = threading.Lock()
        self._digests: set[str] | None = None
        self._epoch = -1
        self._max_id = 0

    def current(self) -> set[str] | None:
        """The set as of now (do not mutate it), or None when the store is too large to cache."""
        with self._lock:
            conn = self._index.conn()
            try:
                conn.execute("BEGIN")
                try:
                    max_id, epoch = conn.execute(
                        "SELECT (SELECT COALESCE(MAX(id), 0) FROM objects),"
                        " (SELECT value FROM store_meta WHERE key = 'presence_epoch')"
                    ).fetchone()
                    if self._digests is None or epoch != self._epoch or max_id < self._max_id:
                        self._digests = self._load(
                            conn, "SELECT digest FROM objects WHERE state = 'present'", ()
                        )
                    elif max_id > self._max_id:
                        rows = conn.execute(
                            "SELECT digest FROM objects WHERE id > ? AND state = 'present'", (self._max_id,)
                        )
                        self._digests.update(r[0] for r in rows)
                        if len(self._digests) > self._max:
                            self._digests = None
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._digests = None
                raise db_error(exc, self._index.path) from exc
            self._epoch, self._max_id = epoch, max_id
            return self._digests

    def _load(self, conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> set[str] | None:
        digests: set[str] = set()
        for (digest,) in conn.execute(sql, params):
            digests.add(digest)
            if len(digests) > self._max:
                return None
        return digests
