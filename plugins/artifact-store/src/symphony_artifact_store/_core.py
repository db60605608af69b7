"""The store's core: opening, the put and commit protocol, reads, queries, metadata and lineage."""

from __future__ import annotations

import builtins
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Self, TypedDict, Union, Unpack

import attrs

from symphony.commons.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    SymphonyError,
    ValidationError,
)
from symphony.commons.log import get_logger
from symphony_artifact_store import _fsio
from symphony_artifact_store._digest import (
    ALGORITHMS,
    Digest,
    check_media_type,
    check_ref_name,
    check_tag,
    hash_bytes,
    new_hasher,
)
from symphony_artifact_store._index import Index, Row, Txn, db_error, key64
from symphony_artifact_store._journal import Journal, PutRecord, attach, attached
from symphony_artifact_store._model import (
    TIERS,
    ArtifactInfo,
    LineageEdge,
    Producer,
    RefEntry,
    ScanRow,
    StoreConfig,
)
from symphony_artifact_store._presence import PresenceCache
from symphony_artifact_store._remote import RemoteTier, is_url
from symphony_artifact_store._stream import (
    ArtifactReader,
    ArtifactWriter,
    check_bytes,
    decompress,
    write_encoded,
)

__all__ = ["ArtifactFilters", "LinkMode", "PutOptions", "Source", "StoreCore"]

log = get_logger("symphony.artifact_store")

DEFAULT_MEDIA_TYPE = "application/octet-stream"
LinkMode = Literal["auto", "reflink", "hardlink", "copy"]
Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes], Iterable[bytes]]
"""What :meth:`ArtifactStore.put` accepts: bytes, a path, a binary file object or an iterable of bytes."""

_LINK_MODES = ("auto", "reflink", "hardlink", "copy")


class PutOptions(TypedDict, total=False):
    """Metadata a put may give (every key optional); merged into an existing artifact's."""

    media_type: str | None
    tags: Iterable[str]
    parents: Iterable[Digest | str]
    producer: Producer | Mapping[str, Any] | None
    meta: Mapping[str, Any] | None
    compress: bool | None


class ArtifactFilters(TypedDict, total=False):
    """Filters of :meth:`ArtifactStore.list` (every key optional; all given must match)."""

    tags: Iterable[str]
    media_type: str | None
    producer: Producer | Mapping[str, Any] | None
    since: float | None
    until: float | None
    tier: str | None
    state: Literal["present", "trashed", "any"]
    pinned: bool | None
    limit: int | None
    offset: int


_FIND_BATCH = 30000
_OVERLAP_MAX = 16 << 20
"""Puts of bytes up to this size hash while their object syncs (see ``_put_bytes_overlapped``)."""


@attrs.frozen
class _PutMeta:
    media_type: str | None
    tags: tuple[str, ...]
    parents: tuple[str, ...]
    producer: Producer | None
    meta: Mapping[str, Any] | None
    compress: bool | None


def _producer(value: Producer | Mapping[str, Any] | None) -> Producer | None:
    if value is None or isinstance(value, Producer):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(
            "producer must be a Producer or a mapping with workflow, run and node",
            code="artifact.producer.invalid",
            context={"field": "producer", "value": repr(value)[:200]},
        )
    unknown = set(value) - {"workflow", "run", "node"}
    if unknown:
        raise ValidationError(
            f"unknown producer keys: {', '.join(sorted(map(str, unknown)))}",
            code="artifact.producer.invalid",
            context={"field": "producer", "keys": sorted(map(str, unknown))},
        )
    for key, item in value.items():
        if item is not None and not isinstance(item, str):
            raise ValidationError(
                f"producer.{key} must be a string",
                code="artifact.producer.invalid",
                context={"field": f"producer.{key}", "value": repr(item)[:200]},
            )
    return Producer(value.get("workflow"), value.get("run"), value.get("node"))


def _meta_json(meta: Mapping[str, Any] | None) -> str | None:
    if meta is None:
        return None
    if not isinstance(meta, Mapping):
        raise ValidationError(
            "meta must be a mapping",
            code="artifact.meta.invalid",
            context={"field": "meta", "value": repr(meta)[:200]},
        )
    try:
        return json.dumps(dict(meta), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"meta must be JSON-serialisable: {exc}",
            code="artifact.meta.invalid",
            context={"field": "meta"},
        ) from exc


def _as_digest_text(value: Digest | str) -> str:
    if isinstance(value, Digest):
        return str(value)
    return Digest.check(value)


class StoreCore:
    """The store's state, puts, reads, queries, metadata and lineage (see :class:`ArtifactStore`)."""

    if TYPE_CHECKING:  # provided by RefsMixin; declared for the type checker only

        def set_ref(
            self,
            name: str,
            target: Digest | str,
            *,
            if_match: Digest | str | None = None,
            create_only: bool = False,
            message: str = "",
        ) -> RefEntry: ...

        def get_ref(self, name: str) -> RefEntry: ...

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        config: StoreConfig | None = None,
        **settings: Any,
    ) -> None:
        base = config or StoreConfig()
        if root is not None:
            settings["root"] = Path(root)
        try:
            self.config = attrs.evolve(base, **settings) if settings else base
        except TypeError as exc:
            raise ConfigError(
                f"unknown artifact store setting: {exc}",
                code="artifact.config.invalid",
                context={"settings": sorted(settings)},
            ) from exc
        if self.config.root is None:
            from symphony.commons.fs import data_dir

            self.config = attrs.evolve(self.config, root=data_dir() / "artifacts")
        assert self.config.root is not None
        self.root = _fsio.prepare_root(Path(self.config.root).expanduser().absolute())
        cold = self.config.cold_root
        self.layout: _fsio.Layout
        self.cold_root: Path | str | None = None
        """The cold tier: a local directory, an fsspec URL (a ``str``), or None."""
        if is_url(cold):
            assert isinstance(cold, str)
            remote = RemoteTier(cold)
            self.cold_root = remote.url
            self.layout = _fsio.Layout(self.root, remote)
        else:
            if cold is not None:
                self.cold_root = _fsio.prepare_root(Path(cold).expanduser().absolute())
            self.layout = _fsio.Layout(self.root, self.cold_root)
        self.layout.prepare_fanout("hot", self.config.algorithm)
        self.index = Index(
            self.layout.index_path, busy_timeout=self.config.busy_timeout, durable=self.config.durable_index
        )
        self._presence = PresenceCache(self.index)
        self.journal: Journal | None = None
        if self.config.durable_index:
            self.journal = Journal(self.root / "journal")
        self._marker: _fsio.TempObject | None = None
        self._marker_lock = threading.Lock()
        self._helpers: ThreadPoolExecutor | None = None
        self.recovered = self.recover()

    # -- life cycle -----------------------------------------------------------------------------

    @classmethod
    def from_kernel(cls, kernel: Any) -> Self:
        """A store configured from the kernel's ``[artifact_store]`` section."""
        return cls(config=StoreConfig.from_kernel(kernel))

    @property
    def algorithm(self) -> str:
        """The hash algorithm new artifacts are addressed with."""
        return self.config.algorithm

    def close(self) -> None:
        """Make this process's relaxed index rows durable, close the index connections (idempotent)."""
        marker, self._marker = self._marker, None
        if marker is not None and not self.index.closed:
            try:
                self._synced_commit()
            except SymphonyError as err:  # the marker stays: the next open checks this store
                log.warning("artifact_store.sync_failed", root=str(self.root), error=str(err))
                marker.release()
            else:
                marker.discard()
        if self._helpers is not None:
            self._helpers.shutdown(wait=True)
            self._helpers = None
        self.index.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArtifactStore(root={str(self.root)!r}, algorithm={self.algorithm!r})"

    def recover(self) -> builtins.list[str]:
        """Rebuild index rows a machine crash took (from the records their objects carry), clear
        the markers of processes gone, and remove temporary files of dead writers (adopting
        objects already in place).

        Returns what it repaired: ``index row of <digest> rebuilt`` per row rebuilt (see
        ``_journal``), then the names of the temporary files removed.
        """
        removed = self._recover_rows()
        for tier in ("hot", "cold") if self.layout.cold_root is not None else ("hot",):
            removed += _fsio.clean_tmp(self.layout.tmp_dir(tier), self._adopt_temp)
        if removed:
            log.info("artifact_store.recovered", root=str(self.root), removed=len(removed))
        return removed

    def _recover_rows(self) -> builtins.list[str]:
        """After a machine crash under a process with relaxed rows: rebuild rows the WAL lost."""
        if self.journal is None:
            return []
        markers: builtins.list[Path] = []
        lost = False
        for path, maybe_lost in self.journal.dead():
            markers.append(path)
            lost = lost or maybe_lost
        rebuilt = self._rescan() if lost else []
        if markers:
            self._synced_commit()
            for path in markers:
                _fsio.unlink_quiet(path)
        if rebuilt:
            log.warning("artifact_store.rows_rebuilt", root=str(self.root), rows=len(rebuilt))
        return rebuilt

    def _rescan(self) -> builtins.list[str]:
        """Rows for the intact local objects that have none, from the put records attached to them."""
        claimed = {text.rsplit(":", 1)[0] for (text,) in self.index.query("SELECT digest FROM objects")}
        rebuilt: builtins.list[str] = []
        for algorithm, hex, encoding, path in self.layout.object_files(self.root):
            if not hex or algorithm not in ALGORITHMS or f"{algorithm}:{hex}" in claimed:
                continue
            try:
                digest = self._hash_file(path, encoding, algorithm)
            except Exception:  # unreadable or undecodable: verify reports it
                continue
            if digest.hex == hex and self._adopt_object(path, digest, encoding):
                rebuilt.append(f"index row of {digest} rebuilt")
        return rebuilt

    def _adopt_object(self, path: _fsio.Location, digest: Digest, encoding: str, tier: str = "hot") -> bool:
        """Insert the row of an intact object file that has none, with the metadata of its put
        record when one is attached; False if a row exists."""
        record = attached(path) if isinstance(path, Path) else None
        info = self._put_meta({})
        if record is not None:
            info = _PutMeta(
                media_type=record.media_type, tags=record.tags, parents=record.parents,
                producer=Producer(*record.producer), meta=record.meta, compress=None,
            )  # fmt: skip
        with self.index.write() as txn:
            if self.index.row(str(digest), txn) is not None:
                return False
            self._insert(
                txn, digest, info, time.time() if record is None else record.created,
                stored_size=self.layout.size(path) or 0, encoding=encoding, inline=False,
            )  # fmt: skip
            if tier != "hot":
                txn.execute("UPDATE objects SET tier = ? WHERE digest = ?", (tier, str(digest)))
        return True

    def _synced_commit(self) -> None:
        """One synced commit: every row committed before it is durable from here on."""
        with self.index.write() as txn:
            txn.execute(
                "INSERT INTO store_meta(key, value) VALUES ('synced', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1"
            )

    # -- writing --------------------------------------------------------------------------------

    def put(
        self,
        source: Source,
        *,
        link: LinkMode = "auto",
        ref: str | None = None,
        **options: Unpack[PutOptions],
    ) -> Digest:
        """Store ``source`` and return its digest; storing the same content again stores nothing new.

        ``source`` is bytes, a path (``str`` or path-like: imported by reflink where the
        filesystem allows, by hard link with ``link="hardlink"``, else copied), a binary file
        object, or an iterable of byte chunks. The :class:`PutOptions` (``media_type``, ``tags``,
        ``parents`` — the digests it was made from —, ``producer``, ``meta``, ``compress``) are
        merged into the artifact's metadata; ``compress`` forces zstd on or off (default: by
        media type, from the config). ``ref`` then points that ref at the digest.

        The object is durable (fsynced, linked into place, folder fsynced) before its index row
        commits; the row's ``last_put`` is refreshed in the same transaction.

        Raises:
            ValidationError: bad metadata or source; FilesystemError: the disk is full or
            failed (the store is unchanged).
        """
        info = self._put_meta(options)
        if link not in _LINK_MODES:
            raise ValidationError(
                f"link must be one of {', '.join(_LINK_MODES)}",
                code="artifact.link.invalid",
                context={"field": "link", "value": repr(link)[:100]},
            )
        if ref is not None:
            check_ref_name(ref)
        if isinstance(source, (bytes, bytearray, memoryview)):
            digest = self._put_bytes(source, info)
        elif isinstance(source, (str, os.PathLike)):
            digest = self._put_path(Path(source), info, link)
        elif hasattr(source, "read"):
            digest = self._put_stream(_read_chunks(source, self.config.chunk_size), info)  # type: ignore[arg-type]
        elif isinstance(source, Iterable):
            digest = self._put_stream(source, info)
        else:
            raise ValidationError(
                f"cannot store a {type(source).__name__}: give bytes, a path, a binary file or an iterable of bytes",
                code="artifact.source.invalid",
                context={"field": "source", "type": type(source).__name__},
            )
        if ref is not None:
            self.set_ref(ref, digest)
        return digest

    def writer(self, **options: Unpack[PutOptions]) -> ArtifactWriter:
        """A streaming writer: ``write`` chunks, then ``commit`` for the digest (or ``abort``).

        Used as a context manager it aborts when the block raises and commits otherwise.
        """
        return ArtifactWriter(self, self._put_meta(options))

    def _put_meta(self, options: PutOptions) -> _PutMeta:
        _reject_unknown(options, PutOptions, "put option")
        tags = options.get("tags", ())
        parents = options.get("parents", ())
        media_type = options.get("media_type")
        compress = options.get("compress")
        meta = options.get("meta")
        if isinstance(tags, str):
            tags = [tags]
        if isinstance(parents, (str, Digest)):
            parents = [parents]
        if compress is not None and not isinstance(compress, bool):
            raise ValidationError("compress must be True, False or None", code="artifact.compress.invalid")
        _meta_json(meta)
        return _PutMeta(
            media_type=None if media_type is None else check_media_type(media_type),
            tags=tuple(dict.fromkeys(check_tag(t) for t in tags)),
            parents=tuple(dict.fromkeys(_as_digest_text(p) for p in parents)),
            producer=_producer(options.get("producer")),
            meta=None if meta is None else dict(meta),
            compress=compress,
        )

    def _compress(self, info: _PutMeta) -> bool:
        if info.compress is not None:
            return info.compress
        return self.config.compress_by_default(info.media_type or DEFAULT_MEDIA_TYPE)

    def _put_bytes(self, data: bytes | bytearray | memoryview, info: _PutMeta) -> Digest:
        if self.config.inline_max < len(data) <= _OVERLAP_MAX:
            return self._put_bytes_overlapped(data, info)
        digest = hash_bytes(self.algorithm, data)
        if self._refresh_if_present(digest, info):
            return digest
        if len(data) <= self.config.inline_max:
            self._commit_inline(digest, bytes(data), info)
            return digest
        temp = self._new_temp(self._compress(info))
        try:
            write_encoded(temp, data, self.config)
            self._commit_file(digest, temp, info)
        finally:
            temp.discard()
        return digest

    def _put_bytes_overlapped(self, data: bytes | bytearray | memoryview, info: _PutMeta) -> Digest:
        """Write first, then hash (and look for the content) while the object's fsync runs.

        Storing content that is already there then costs a write and an fsync nobody needed,
        which is why only puts up to ``_OVERLAP_MAX`` bytes take this path.
        """
        temp = self._new_temp(self._compress(info))
        try:
            write_encoded(temp, data, self.config)
            now = time.time()
            relaxed = self._attach_record(temp, info, now)
            synced = self._background().submit(temp.sync)
            try:
                digest = hash_bytes(self.algorithm, data)
                present = self._refresh_if_present(digest, info)
            finally:
                wait([synced])
            synced.result()  # a failed sync raises here
            if not present:
                self._commit_file(digest, temp, info, prepared=(now, relaxed))
        finally:
            temp.discard()
        return digest

    def _background(self) -> ThreadPoolExecutor:
        """The store's helper threads (an object's fsync while its bytes are hashed)."""
        with self._marker_lock:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="artifact-store")
            return self._helpers

    def _put_stream(self, chunks: Iterable[bytes], info: _PutMeta) -> Digest:
        with ArtifactWriter(self, info) as writer:
            for chunk in chunks:
                writer.write(chunk)
        assert writer.digest is not None
        return writer.digest

    def _put_path(self, path: Path, info: _PutMeta, link: LinkMode) -> Digest:
        try:
            fh = open(path, "rb", buffering=0)
        except OSError as exc:
            raise _fsio.os_error(exc, path, "read") from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            compress = self._compress(info)
            if size <= self.config.inline_max or compress or link == "copy":
                return self._put_stream(_read_chunks(fh, self.config.chunk_size), info)
            temp: _fsio.TempObject | None = None
            if link == "hardlink":
                temp = _fsio.TempObject.hardlink_of(path, self.layout.tmp_dir("hot"))
            else:
                temp = self._new_temp(False)
                if not temp.reflink_from(fh.fileno()):
                    temp.discard()
                    temp = None
            if temp is None:
                return self._put_stream(_read_chunks(fh, self.config.chunk_size), info)
            try:
                hasher = new_hasher(self.algorithm)
                total = 0
                with open(temp.path, "rb", buffering=0) as copy:
                    for chunk in _read_chunks(copy, self.config.chunk_size):
                        hasher.update(chunk)
                        total += len(chunk)
                digest = Digest(self.algorithm, hasher.hexdigest(), total)
                if not self._refresh_if_present(digest, info):
                    self._commit_file(digest, temp, info)
            finally:
                temp.discard()
            return digest

    def _new_temp(self, compress: bool) -> _fsio.TempObject:
        return _fsio.TempObject.create(self.layout.tmp_dir("hot"), "zstd" if compress else "identity")

    # -- commit protocol ------------------------------------------------------------------------

    def _has_bytes(self, row: Row) -> bool:
        if row.inline:
            return True
        algorithm, hex, _ = row.digest.split(":")
        try:
            path = self.layout.locate(algorithm, hex, row.tier, row.encoding)
        except ConfigError:
            return False
        return self.layout.size(path) == row.stored_size

    def _refresh_if_present(self, digest: Digest, info: _PutMeta) -> bool:
        """Refresh an existing object's row (its ``last_put`` and metadata); False if it must be written."""
        text = str(digest)
        row = self.index.row(text)
        if row is None or not self._has_bytes(row):
            return False
        with self.index.write() as txn:
            row = self.index.row(text, txn)
            if row is None or not self._has_bytes(row):
                return False
            self._refresh(txn, row, info, time.time())
        return True

    def _refresh(self, txn: Txn, row: Row, info: _PutMeta, now: float) -> None:
        meta_json = None
        if info.meta:
            found = txn.execute("SELECT meta FROM objects WHERE id = ?", (row.id,)).fetchone()
            merged = json.loads(found[0]) if found and found[0] else {}
            merged.update(info.meta)
            meta_json = _meta_json(merged)
        p = info.producer or Producer()
        txn.execute(
            "UPDATE objects SET last_put = ?, put_count = put_count + 1, state = 'present', trashed_at = NULL,"
            " media_type = CASE WHEN media_type = ? AND ? IS NOT NULL THEN ? ELSE media_type END,"
            " producer_workflow = COALESCE(producer_workflow, ?), producer_run = COALESCE(producer_run, ?),"
            " producer_node = COALESCE(producer_node, ?), meta = COALESCE(?, meta) WHERE id = ?",
            (
                now,
                DEFAULT_MEDIA_TYPE,
                info.media_type,
                info.media_type,
                p.workflow,
                p.run,
                p.node,
                meta_json,
                row.id,
            ),
        )
        self._add_links(txn, row.id, row.digest, info)

    def _add_links(self, txn: Txn, object_id: int, digest: str, info: _PutMeta) -> None:
        if info.tags:
            txn.conn.executemany(
                "INSERT OR IGNORE INTO tags(tag, id) VALUES (?, ?)", [(t, object_id) for t in info.tags]
            )
        if info.parents:
            txn.conn.executemany(
                "INSERT OR IGNORE INTO lineage(child, parent) VALUES (?, ?)",
                [(digest, p) for p in info.parents],
            )

    def _insert(
        self,
        txn: Txn,
        digest: Digest,
        info: _PutMeta,
        now: float,
        *,
        stored_size: int,
        encoding: str,
        inline: bool,
    ) -> int:
        p = info.producer or Producer()
        cursor = txn.execute(
            "INSERT INTO objects(digest, k, algorithm, size, stored_size, tier, encoding, inline, state, media_type,"
            " producer_workflow, producer_run, producer_node, meta, created, last_put, accessed)"
            " VALUES (?, ?, ?, ?, ?, 'hot', ?, ?, 'present', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(digest), key64(digest.hex), digest.algorithm, digest.size, stored_size, encoding, int(inline),
                info.media_type or DEFAULT_MEDIA_TYPE, p.workflow, p.run, p.node, _meta_json(info.meta), now, now, now,
            ),
        )  # fmt: skip
        object_id = cursor.lastrowid
        assert object_id is not None
        self._add_links(txn, object_id, str(digest), info)
        return object_id

    def _commit_inline(self, digest: Digest, data: bytes, info: _PutMeta) -> None:
        now = time.time()
        with self.index.write() as txn:
            row = self.index.row(str(digest), txn)
            if row is None:
                object_id = self._insert(
                    txn, digest, info, now, stored_size=len(data), encoding="identity", inline=True
                )
                txn.execute("INSERT INTO inline_data(id, data) VALUES (?, ?)", (object_id, data))
                return
            if not self._has_bytes(row):
                self._relocate_row(txn, row, "hot", "identity", len(data), inline=True)
                txn.execute("INSERT OR REPLACE INTO inline_data(id, data) VALUES (?, ?)", (row.id, data))
            self._refresh(txn, row, info, now)

    def _relocate_row(
        self, txn: Txn, row: Row, tier: str, encoding: str, stored_size: int, *, inline: bool
    ) -> None:
        txn.execute(
            "UPDATE objects SET tier = ?, encoding = ?, stored_size = ?, inline = ? WHERE id = ?",
            (tier, encoding, stored_size, int(inline), row.id),
        )
        if not inline:
            txn.execute("DELETE FROM inline_data WHERE id = ?", (row.id,))

    def _commit_file(
        self, digest: Digest, temp: _fsio.TempObject, info: _PutMeta, prepared: tuple[float, bool] | None = None
    ) -> None:
        """Make a written temporary file durable, link it in place and commit its row.

        ``prepared`` is ``(time, relaxed)`` when the caller has attached the record and synced
        ``temp`` already (see :meth:`_put_bytes_overlapped`).

        With its put record attached (see ``_journal``), a new row commits without a WAL fsync:
        the object's own fsync made the record durable. A change to an existing row (another
        writer got there first, or its file was missing) commits synced. The link, the
        folder's fsync and the row happen under the index's write lock.
        """
        final = self.layout.object_path(digest.algorithm, digest.hex, "hot", temp.encoding)
        self.layout.ensure_parent(final)
        if prepared is None:
            now = time.time()
            relaxed = self._attach_record(temp, info, now)
            temp.sync()
        else:
            now, relaxed = prepared
        new = relaxed and self.index.row(str(digest)) is None
        for sync in (False, True) if new else (True,):
            with self.index.write(sync=sync) as txn:
                row = self.index.row(str(digest), txn)
                if row is not None and not sync:
                    continue  # another writer's row: change it in a synced commit instead
                if row is not None and self._has_bytes(row):
                    self._refresh(txn, row, info, now)
                    return
                if temp.link_to(final):
                    txn.undo.append(lambda: _fsio.remove_object(final))
                elif _fsio.file_size(final) != temp.size:
                    temp.replace(final)
                if row is None:
                    self._insert(
                        txn, digest, info, now, stored_size=temp.size, encoding=temp.encoding, inline=False
                    )
                else:
                    self._relocate_row(txn, row, "hot", temp.encoding, temp.size, inline=False)
                    self._refresh(txn, row, info, now)
                return

    def _attach_record(self, temp: _fsio.TempObject, info: _PutMeta, now: float) -> bool:
        """Attach the put record to ``temp`` (before its fsync); False when the row must commit synced."""
        if self.journal is None or temp.borrowed:  # a hard link's inode is the caller's file: leave it be
            return False
        with self._marker_lock:
            if self._marker is None:
                self._marker = self.journal.mark()
        p = info.producer or Producer()
        record = PutRecord(
            created=now, media_type=info.media_type, tags=info.tags, parents=info.parents,
            producer=(p.workflow, p.run, p.node), meta=info.meta,
        )  # fmt: skip
        return attach(temp.fd, record)

    def _hash_file(self, path: _fsio.Location, encoding: str, algorithm: str) -> Digest:
        """The digest of a stored file's decoded content (raises OSError, zstd errors)."""
        with self.layout.open_object(path) as fh:
            hasher = new_hasher(algorithm)
            size = 0
            for chunk in _fsio.decoded_chunks(fh, encoding, self.config.chunk_size):
                hasher.update(chunk)
                size += len(chunk)
        return Digest(algorithm, hasher.hexdigest(), size)

    def _adopt_temp(self, path: Path, encoding: str) -> None:
        """A dead writer's temporary file that also has a final name: make sure its row exists."""
        for algorithm in sorted(ALGORITHMS, key=lambda a: a != self.algorithm):
            try:
                digest = self._hash_file(path, encoding, algorithm)
            except Exception:  # an unreadable leftover is simply removed
                return
            final = self.layout.object_path(algorithm, digest.hex, "hot", encoding)
            try:
                if not os.path.samefile(final, path):
                    continue
            except OSError:
                continue
            if self._adopt_object(final, digest, encoding):
                log.info("artifact_store.adopted", digest=str(digest))
            return

    # -- reading --------------------------------------------------------------------------------

    def resolve(self, name: Digest | str) -> Digest:
        """A digest from a digest, a digest string, ``<algorithm>:<hex prefix>`` or a ref name.

        Raises:
            ValidationError: malformed, or an ambiguous prefix; NotFoundError: no such ref or prefix.
        """
        if isinstance(name, Digest):
            return name
        if not isinstance(name, str):
            raise ValidationError(
                f"expected a digest or a ref name, not {type(name).__name__}",
                code="artifact.name.invalid",
                context={"value": repr(name)[:100]},
            )
        if ":" not in name:
            return self.get_ref(name).digest
        parts = name.split(":")
        if len(parts) == 2 and parts[0] in ALGORITHMS and 6 <= len(parts[1]) <= 64 and _is_hex(parts[1]):
            found = self.index.query(
                "SELECT digest FROM objects WHERE digest >= ? AND digest < ? ORDER BY digest LIMIT 5",
                (f"{parts[0]}:{parts[1]}", f"{parts[0]}:{parts[1]}~"),
            )
            if not found:
                raise NotFoundError(
                    f"no artifact matches {name}", code="artifact.not_found", context={"digest": name}
                )
            if len(found) > 1:
                raise ValidationError(
                    f"{name} is ambiguous: it matches {len(found)} artifacts",
                    code="artifact.digest.ambiguous",
                    context={"digest": name, "matches": [r[0] for r in found]},
                    hint="give more hex digits",
                )
            return Digest._trusted(found[0][0])
        return Digest.parse(name)

    def _locate(self, name: Digest | str) -> tuple[Digest, Row]:
        digest = self.resolve(name)
        return digest, self._present(digest, self.index.row(str(digest)))

    def _present(self, digest: Digest, row: Row | None) -> Row:
        """``row``, if it is an artifact a read may return; else the error saying why not."""
        if row is None:
            raise NotFoundError(
                f"artifact {digest} is not in the store",
                code="artifact.not_found",
                context={"digest": str(digest), "root": str(self.root)},
            )
        if row.state != "present":
            raise NotFoundError(
                f"artifact {digest} is in the trash",
                code="artifact.trashed",
                context={"digest": str(digest)},
                hint=f"restore it with `symphony artifacts restore {digest}`",
            )
        return row

    def exists(self, name: Digest | str) -> bool:
        """True if the artifact is stored (and not in the trash)."""
        digest = Digest.parse(name) if not isinstance(name, Digest) else name
        row = self.index.row(str(digest))
        return row is not None and row.state == "present"

    def find_missing(self, digests: Iterable[Digest | str]) -> builtins.list[Digest | str]:
        """The given digests that are not stored, in the order given (like Bazel's ``FindMissingBlobs``).

        Answered from an in-memory set of the stored digests that is brought up to date from
        the index on every call (so puts and deletions by other processes count); the first
        call in a process loads it. Stores too large to cache are asked in one indexed query
        per 30,000 digests.

        Raises:
            ValidationError: a malformed digest, naming it.
        """
        items = builtins.list(digests)
        texts = [str(item) if isinstance(item, Digest) else item for item in items]
        for text in texts:
            if not isinstance(text, str):
                Digest.check(text)  # raises, naming the value
        present = self._presence.current()
        if present is None:
            present = self._find_in_index(texts)
        missing = [item for item, text in zip(items, texts, strict=True) if text not in present]
        for item in missing:  # what was found is canonical already; check the rest
            if not isinstance(item, Digest):
                Digest.check(item)
        return missing

    def _find_in_index(self, texts: builtins.list[str]) -> set[str]:
        keys: builtins.list[int] = []
        for text in texts:
            try:
                start = text.index(":") + 1
                keys.append(int(text[start : start + 16], 16) - (1 << 63))
            except (AttributeError, TypeError, ValueError):
                Digest.check(text)  # raises the error that names what is wrong
                raise
        found: set[str] = set()
        conn = self.index.conn()
        try:
            for first in range(0, len(keys), _FIND_BATCH):
                batch = keys[first : first + _FIND_BATCH]
                sql = (
                    "SELECT digest FROM objects INDEXED BY objects_k"
                    f" WHERE k IN ({','.join('?' * len(batch))}) AND state = 'present'"
                )
                found.update(r[0] for r in conn.execute(sql, batch))
        except sqlite3.Error as exc:
            raise db_error(exc, self.index.path) from exc
        return found

    def _should_verify(self, verify: bool | None) -> bool:
        if verify is not None:
            return verify
        mode = self.config.verify_on_read
        if mode == "always":
            return True
        if mode == "never":
            return False
        return random.random() < self.config.verify_sample_rate

    def _touch(self, row: Row) -> None:
        now = time.time()
        if now - row.accessed < self.config.atime_resolution:
            return
        try:
            self.index.conn().execute("UPDATE objects SET accessed = ? WHERE id = ?", (now, row.id))
        except sqlite3.Error:  # access times are best effort: a busy index must not fail a read
            pass

    def _open_file(self, digest: Digest, row: Row) -> tuple[IO[bytes], Row]:
        """Open an object's file, following a concurrent move between tiers once."""
        for attempt in range(3):
            path = self.layout.locate(digest.algorithm, digest.hex, row.tier, row.encoding)
            try:
                return self.layout.open_object(path), row
            except FileNotFoundError:
                fresh = self.index.row(str(digest))
                if (
                    fresh is None
                    or fresh.state != "present"
                    or attempt == 2
                    or (fresh.tier, fresh.encoding)
                    == (
                        row.tier,
                        row.encoding,
                    )
                ):
                    raise IntegrityError(
                        f"artifact {digest} is indexed but its file is missing: {path}",
                        code="artifact.object_missing",
                        context={"digest": str(digest), "path": str(path)},
                        hint="run `symphony artifacts verify`; put the content again to repair it",
                    ) from None
                row = fresh
            except OSError as exc:
                raise _fsio.os_error(exc, path, "read") from exc
        raise AssertionError("unreachable")

    def get(self, name: Digest | str, *, verify: bool | None = None) -> bytes:
        """The artifact's bytes (``name`` is a digest, a digest prefix or a ref).

        ``verify`` overrides ``verify_on_read``. A corrupt object raises instead of returning.

        Raises:
            NotFoundError: not stored (or trashed); IntegrityError: the bytes do not match the digest.
        """
        digest = self.resolve(name)
        found, inline = self.index.row_and_inline(str(digest))
        row = self._present(digest, found)
        if row.inline:
            data = inline or b""
        else:
            fh, row = self._open_file(digest, row)
            with fh:
                try:
                    raw = fh.read()
                except OSError as exc:
                    raise _fsio.os_error(exc, self.root, "read") from exc
            data = raw if row.encoding == "identity" else decompress(raw, digest)
        if self._should_verify(verify):
            check_bytes(digest, data)
        self._touch(row)
        return data

    def open(self, name: Digest | str, *, verify: bool | None = None) -> ArtifactReader:
        """A binary file object streaming the artifact (``read``, iteration by chunk, ``close``).

        With verification on, reaching the end of a corrupt object raises :class:`IntegrityError`
        instead of the last read: a consumer that reads to the end never takes bad bytes as good.
        """
        digest, row = self._locate(name)
        check = self._should_verify(verify)
        if row.inline:
            found = self.index.query("SELECT data FROM inline_data WHERE id = ?", (row.id,))
            data = bytes(found[0][0]) if found else b""
            reader = ArtifactReader(digest, iter([data] if data else []), None, check)
        else:
            fh, row = self._open_file(digest, row)
            chunks = _fsio.decoded_chunks(fh, row.encoding, self.config.chunk_size)
            reader = ArtifactReader(digest, chunks, fh, check)
        self._touch(row)
        return reader

    def get_to(self, name: Digest | str, path: str | os.PathLike[str], *, verify: bool | None = None) -> Path:
        """Write the artifact to ``path`` atomically (never leaving corrupt or partial bytes there)."""
        target = Path(path)
        with self.open(name, verify=verify) as reader, _fsio.atomic_stream_to(target) as out:
            for chunk in reader:
                out.write(chunk)
        return target

    def info(self, name: Digest | str) -> ArtifactInfo:
        """Everything the index knows about one artifact, trashed or not (with its parents)."""
        digest = self.resolve(name)
        rows = list(self._select_infos("WHERE o.digest = ?", [str(digest)]))
        if not rows:
            raise NotFoundError(
                f"artifact {digest} is not in the store",
                code="artifact.not_found",
                context={"digest": str(digest)},
            )
        parents = tuple(self.parents(digest))
        return attrs.evolve(rows[0], parents=parents)

    def list(self, **filters: Unpack[ArtifactFilters]) -> builtins.list[ArtifactInfo]:
        """Artifacts matching every filter given, oldest first (see :meth:`iter_artifacts`)."""
        return builtins.list(self.iter_artifacts(**filters))

    def iter_artifacts(self, **filters: Unpack[ArtifactFilters]) -> Iterator[ArtifactInfo]:
        """Stream artifacts matching every filter, oldest first; one query for the whole listing.

        The :class:`ArtifactFilters`: ``tags`` (all of them); ``media_type`` (exact, or a
        ``type/*`` pattern); ``producer`` (the fields given); ``since``/``until`` (creation time
        bounds, POSIX seconds, inclusive/exclusive); ``tier``; ``state`` (``present``,
        ``trashed`` or ``any``); ``pinned``; ``limit`` and ``offset``. Parents are not filled in
        (:meth:`lineage_edges` gives all of them at once).
        """
        _reject_unknown(filters, ArtifactFilters, "filter")
        tags = filters.get("tags", ())
        media_type = filters.get("media_type")
        since, until = filters.get("since"), filters.get("until")
        tier, pinned = filters.get("tier"), filters.get("pinned")
        state = filters.get("state", "present")
        limit, offset = filters.get("limit"), filters.get("offset", 0)
        where: list[str] = []
        params: builtins.list[Any] = []
        if isinstance(tags, str):
            tags = [tags]
        for tag in tags:
            where.append("EXISTS (SELECT 1 FROM tags t WHERE t.tag = ? AND t.id = o.id)")
            params.append(check_tag(tag))
        if media_type is not None:
            if media_type.endswith("/*"):
                where.append("o.media_type >= ? AND o.media_type < ?")
                params += [media_type[:-1].lower(), media_type[:-2].lower() + "0"]
            else:
                where.append("o.media_type = ?")
                params.append(check_media_type(media_type))
        prod = _producer(filters.get("producer"))
        if prod is not None:
            for column, value in (("workflow", prod.workflow), ("run", prod.run), ("node", prod.node)):
                if value is not None:
                    where.append(f"o.producer_{column} = ?")
                    params.append(value)
        if since is not None:
            where.append("o.created >= ?")
            params.append(float(since))
        if until is not None:
            where.append("o.created < ?")
            params.append(float(until))
        if tier is not None:
            if tier not in TIERS:
                raise ValidationError(
                    f"unknown tier {tier!r}",
                    code="artifact.tier.invalid",
                    context={"field": "tier", "known": list(TIERS)},
                )
            where.append("o.tier = ?")
            params.append(tier)
        if state != "any":
            if state not in ("present", "trashed"):
                raise ValidationError(
                    f"unknown state {state!r}", code="artifact.state.invalid", context={"field": "state"}
                )
            where.append("o.state = ?")
            params.append(state)
        if pinned is not None:
            where.append("o.pinned = ?")
            params.append(int(pinned))
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        clause += " ORDER BY o.created, o.id"
        if limit is not None or offset:
            clause += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else max(0, int(limit)), max(0, int(offset))]
        return self._select_infos(clause, params)

    def scan(self, *, state: Literal["present", "trashed", "any"] = "any") -> Iterator[ScanRow]:
        """Every object as a light :class:`ScanRow`, in one query (for collectors and tierers).

        Much cheaper per row than :meth:`iter_artifacts`: no tags, producer, metadata or parents.
        """
        if state not in ("present", "trashed", "any"):
            raise ValidationError(
                f"unknown state {state!r}", code="artifact.state.invalid", context={"field": "state"}
            )
        sql = (
            "SELECT digest, size, stored_size, tier, inline, state, created, last_put, accessed, pinned,"
            " trashed_at FROM objects" + ("" if state == "any" else " WHERE state = ?")
        )
        try:
            cursor = self.index.conn().execute(sql, () if state == "any" else (state,))
        except sqlite3.Error as exc:
            raise db_error(exc, self.index.path) from exc
        yield from map(ScanRow._make, cursor)

    def _select_infos(self, clause: str, params: Sequence[Any]) -> Iterator[ArtifactInfo]:
        sql = (
            "SELECT o.digest, o.size, o.stored_size, o.media_type, o.tier, o.encoding, o.inline, o.state, o.created,"
            " o.last_put, o.accessed, o.pinned, o.put_count, o.producer_workflow, o.producer_run, o.producer_node,"
            " o.meta, o.trashed_at, (SELECT group_concat(t.tag, char(31)) FROM tags t WHERE t.id = o.id)"
            f" FROM objects o {clause}"
        )
        try:
            cursor = self.index.conn().execute(sql, params)
        except sqlite3.Error as exc:
            raise db_error(exc, self.index.path) from exc
        trusted = Digest._trusted
        for r in cursor:
            producer = (
                None if r[13] is None and r[14] is None and r[15] is None else Producer(r[13], r[14], r[15])
            )
            yield ArtifactInfo(
                digest=trusted(r[0]), size=r[1], stored_size=r[2], media_type=r[3], tier=r[4], encoding=r[5],
                inline=bool(r[6]), state=r[7], created=r[8], last_put=r[9], accessed=r[10], pinned=bool(r[11]),
                put_count=r[12], tags=tuple(sorted(r[18].split("\x1f"))) if r[18] else (), producer=producer,
                meta=json.loads(r[16]) if r[16] else {}, trashed_at=r[17],
            )  # fmt: skip

    # -- metadata ---------------------------------------------------------------------------------

    def _object_id(self, txn: Txn, digest: Digest) -> int:
        found = txn.execute("SELECT id FROM objects WHERE digest = ?", (str(digest),)).fetchone()
        if found is None:
            raise NotFoundError(
                f"artifact {digest} is not in the store",
                code="artifact.not_found",
                context={"digest": str(digest)},
            )
        return int(found[0])

    def tag(self, name: Digest | str, *tags: str) -> None:
        """Add tags to an artifact."""
        digest = self.resolve(name)
        checked = [check_tag(t) for t in tags]
        with self.index.write() as txn:
            object_id = self._object_id(txn, digest)
            txn.conn.executemany(
                "INSERT OR IGNORE INTO tags(tag, id) VALUES (?, ?)", [(t, object_id) for t in checked]
            )

    def untag(self, name: Digest | str, *tags: str) -> None:
        """Remove tags from an artifact (tags it does not have are ignored)."""
        digest = self.resolve(name)
        checked = [check_tag(t) for t in tags]
        with self.index.write() as txn:
            object_id = self._object_id(txn, digest)
            txn.conn.executemany(
                "DELETE FROM tags WHERE tag = ? AND id = ?", [(t, object_id) for t in checked]
            )

    def pin(self, name: Digest | str, pinned: bool = True) -> None:
        """Pin (or unpin) an artifact: a pinned artifact is never trashed unless forced."""
        digest = self.resolve(name)
        with self.index.write() as txn:
            object_id = self._object_id(txn, digest)
            txn.execute("UPDATE objects SET pinned = ? WHERE id = ?", (int(pinned), object_id))

    def parents(self, name: Digest | str) -> builtins.list[Digest]:
        """The digests an artifact was made from."""
        digest = self.resolve(name)
        rows = self.index.query("SELECT parent FROM lineage WHERE child = ? ORDER BY parent", (str(digest),))
        return [Digest._trusted(r[0]) for r in rows]

    def children(self, name: Digest | str) -> builtins.list[Digest]:
        """The artifacts made from this one."""
        digest = self.resolve(name)
        rows = self.index.query("SELECT child FROM lineage WHERE parent = ? ORDER BY child", (str(digest),))
        return [Digest._trusted(r[0]) for r in rows]

    def lineage(
        self, name: Digest | str, *, direction: Literal["up", "down"] = "up", max_depth: int | None = None
    ) -> builtins.list[LineageEdge]:
        """Walk lineage breadth first: ``up`` to what it was made from, ``down`` to what was made from it.

        Each edge is reported once, with the depth at which it was first reached.
        """
        if direction not in ("up", "down"):
            raise ValidationError(
                f"direction must be 'up' or 'down', not {direction!r}", code="artifact.lineage.direction"
            )
        digest = self.resolve(name)
        if direction == "up":
            sql = "SELECT child, parent FROM lineage WHERE child IN ({})"
        else:
            sql = "SELECT child, parent FROM lineage WHERE parent IN ({})"
        seen = {str(digest)}
        frontier = [str(digest)]
        edges: builtins.list[LineageEdge] = []
        depth = 0
        while frontier and (max_depth is None or depth < max_depth):
            depth += 1
            nxt: list[str] = []
            for start in range(0, len(frontier), 500):
                batch = frontier[start : start + 500]
                for child, parent in self.index.query(sql.format(",".join("?" * len(batch))), batch):
                    edges.append(LineageEdge(Digest._trusted(child), Digest._trusted(parent), depth))
                    other = parent if direction == "up" else child
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        return edges

    def lineage_edges(self) -> Iterator[tuple[Digest, Digest]]:
        """Every ``(child, parent)`` pair in the store, in one query."""
        for child, parent in self.index.query("SELECT child, parent FROM lineage"):
            yield Digest._trusted(child), Digest._trusted(parent)


def _reject_unknown(given: Mapping[str, Any], allowed: type, what: str) -> None:
    unknown = sorted(set(given) - set(allowed.__annotations__))
    if unknown:
        raise ValidationError(
            f"unknown {what}: {', '.join(unknown)}",
            code="artifact.option.invalid",
            context={"unknown": unknown, "known": sorted(allowed.__annotations__)},
        )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _read_chunks(fh: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while True:
        chunk = fh.read(chunk_size)
        if not chunk:
            return
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise ValidationError(
                f"the source file object returned {type(chunk).__name__}, not bytes: open it in binary mode",
                code="artifact.source.not_binary",
            )
        yield chunk
