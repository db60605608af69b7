"""Lifecycle operations for collectors: trash, restore, purge, tiers; and whole-store checks."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator, Sequence

from symphony.commons.errors import ConfigError, ConflictError, IntegrityError, NotFoundError, ValidationError
from symphony_artifact_store import _fsio
from symphony_artifact_store._core import StoreCore, log
from symphony_artifact_store._digest import ALGORITHMS, Digest
from symphony_artifact_store._index import ROW_COLUMNS, Row
from symphony_artifact_store._model import TIERS, ArtifactInfo, StoreStats, VerifyReport
from symphony_artifact_store._stream import check_bytes, compressor

__all__ = ["LifecycleMixin"]


class LifecycleMixin(StoreCore):
    """Trash (a state, restorable until emptied), deletion with a grace window, tier moves,
    ``verify`` of the whole store and ``stats``."""

    def trash(self, name: Digest | str, *, grace: float = 0.0, force: bool = False) -> bool:
        """Move an artifact to the trash; True if it was moved (see :meth:`trash_many`)."""
        return bool(self.trash_many([self.resolve(name)], grace=grace, force=force))

    def trash_many(
        self, digests: Iterable[Digest | str], *, grace: float = 0.0, force: bool = False
    ) -> builtins.list[Digest]:
        """Trash every given artifact put longer than ``grace`` seconds ago; return those trashed.

        The check and the change happen in one write transaction, and every put refreshes
        ``last_put`` in its own transaction: an artifact a writer is storing right now is never
        trashed (git's lesson about pruning racing a writer). Pinned artifacts are kept unless
        ``force``. A trashed artifact cannot be read, is reported missing by :meth:`find_missing`,
        and comes back with :meth:`restore` or with a put of the same content.
        """
        items = [self.resolve(d) for d in digests]
        trashed: builtins.list[Digest] = []
        for start in range(0, len(items), 500):
            batch = items[start : start + 500]
            with self.index.write() as txn:
                now = time.time()
                for digest in batch:
                    row = self.index.row(str(digest), txn)
                    if row is None or row.state != "present" or row.last_put > now - grace:
                        continue
                    if row.pinned and not force:
                        continue
                    txn.execute(
                        "UPDATE objects SET state = 'trashed', trashed_at = ? WHERE id = ?", (now, row.id)
                    )
                    trashed.append(digest)
        return trashed

    def restore(self, name: Digest | str) -> bool:
        """Bring an artifact back from the trash; True if it was trashed (its ``last_put`` is refreshed).

        Raises:
            NotFoundError: it is not in the store at all (the trash was emptied).
        """
        digest = self.resolve(name)
        with self.index.write() as txn:
            row = self.index.row(str(digest), txn)
            if row is None:
                raise NotFoundError(
                    f"artifact {digest} is not in the store or its trash",
                    code="artifact.not_found",
                    context={"digest": str(digest)},
                )
            if row.state == "present":
                return False
            if not self._has_bytes(row):
                raise IntegrityError(
                    f"artifact {digest} cannot be restored: its file is gone",
                    code="artifact.object_missing",
                    context={"digest": str(digest)},
                )
            txn.execute(
                "UPDATE objects SET state = 'present', trashed_at = NULL, last_put = ? WHERE id = ?",
                (time.time(), row.id),
            )
        return True

    def empty_trash(self, *, older_than: float = 0.0) -> builtins.list[Digest]:
        """Delete for good every artifact trashed more than ``older_than`` seconds ago; return them."""
        cutoff = time.time() - older_than
        rows = self.index.query(
            "SELECT digest FROM objects WHERE state = 'trashed' AND trashed_at <= ? ORDER BY id", (cutoff,)
        )
        return self._purge([Digest._trusted(r[0]) for r in rows], cutoff)

    def delete(self, name: Digest | str, *, grace: float = 0.0, force: bool = False) -> bool:
        """Delete an artifact for good (trash, then purge); False if ``grace`` or a pin kept it."""
        digest = self.resolve(name)
        if not self.trash_many([digest], grace=grace, force=force):
            return False
        return bool(self._purge([digest], time.time()))

    def _purge(self, digests: Sequence[Digest], cutoff: float) -> builtins.list[Digest]:
        purged: builtins.list[Digest] = []
        for start in range(0, len(digests), 500):
            with self.index.write() as txn:
                for digest in digests[start : start + 500]:
                    row = self.index.row(str(digest), txn)
                    if row is None or row.state != "trashed":
                        continue
                    found = txn.execute("SELECT trashed_at FROM objects WHERE id = ?", (row.id,)).fetchone()
                    if found[0] is None or found[0] > cutoff:
                        continue
                    if not row.inline:
                        try:
                            path = self.layout.locate(digest.algorithm, digest.hex, row.tier, row.encoding)
                        except ConfigError:
                            path = None
                        if path is not None:
                            self.layout.remove(path)
                    txn.execute("DELETE FROM objects WHERE id = ?", (row.id,))
                    txn.execute("DELETE FROM inline_data WHERE id = ?", (row.id,))
                    txn.execute("DELETE FROM tags WHERE id = ?", (row.id,))
                    txn.execute("DELETE FROM lineage WHERE child = ?", (str(digest),))
                    purged.append(digest)
        return purged

    def move(self, name: Digest | str, tier: str, *, compress: bool | None = None) -> ArtifactInfo:
        """Move an artifact to ``tier`` (``hot``, ``warm``: compressed in place, ``cold``: the cold root).

        ``compress`` defaults to True for warm and cold and False for hot. The new copy is
        written, synced and checked against the digest before the index switches to it; the old
        file is removed afterwards. Reads keep working throughout. Inline artifacts stay inline.

        Raises:
            ConfigError: ``cold`` without a ``cold_root``; IntegrityError: the current bytes are corrupt.
        """
        if tier not in TIERS:
            raise ValidationError(
                f"unknown tier {tier!r}",
                code="artifact.tier.invalid",
                context={"field": "tier", "known": list(TIERS)},
            )
        digest, row = self._locate(name)
        encoding = "zstd" if (tier != "hot" if compress is None else compress) else "identity"
        if row.inline or (row.tier, row.encoding) == (tier, encoding):
            return self.info(digest)
        if self.layout.is_remote(tier):
            return self._move_remote(digest, row, tier, encoding)
        temp = _fsio.TempObject.create(self.layout.tmp_dir(tier), encoding)
        try:
            with self.open(digest, verify=True) as reader:
                for chunk in self._encoded(reader, encoding):
                    temp.write(chunk)
            temp.sync()
            final = self.layout.object_path(digest.algorithm, digest.hex, tier, encoding)
            self.layout.ensure_parent(final)
            with self.index.write() as txn:
                fresh = self.index.row(str(digest), txn)
                if fresh is None or (fresh.tier, fresh.encoding, fresh.state) != (
                    row.tier,
                    row.encoding,
                    "present",
                ):
                    raise ConflictError(
                        f"artifact {digest} changed while it was being moved",
                        code="artifact.move.conflict",
                        context={"digest": str(digest)},
                        hint="retry the move",
                    )
                if temp.link_to(final):
                    txn.undo.append(lambda: _fsio.remove_object(final))
                elif _fsio.file_size(final) != temp.size:
                    temp.replace(final)
                self._relocate_row(txn, row, tier, encoding, temp.size, inline=False)
            self.layout.remove(self.layout.locate(digest.algorithm, digest.hex, row.tier, row.encoding))
        finally:
            temp.discard()
        return self.info(digest)

    def _encoded(self, chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
        packer = compressor(self.config) if encoding == "zstd" else None
        for chunk in chunks:
            out = packer.compress(chunk) if packer is not None else chunk
            if out:
                yield out
        if packer is not None:
            yield packer.flush()

    def _move_remote(self, digest: Digest, row: Row, tier: str, encoding: str) -> ArtifactInfo:
        """Move to the cold tier at an fsspec URL: upload (checked on the way), switch the index, remove the old file."""
        remote = self.layout.cold_remote
        assert remote is not None
        final = remote.object_path(digest.algorithm, digest.hex, encoding)
        with self.open(digest, verify=True) as reader:  # a corrupt object raises before the move
            size = remote.write(final, self._encoded(reader, encoding))
        with self.index.write() as txn:
            fresh = self.index.row(str(digest), txn)
            if fresh is None or (fresh.tier, fresh.encoding, fresh.state) != (row.tier, row.encoding, "present"):
                if fresh is None or (fresh.tier, fresh.encoding) != (tier, encoding):
                    remote.remove(final)
                raise ConflictError(
                    f"artifact {digest} changed while it was being moved",
                    code="artifact.move.conflict",
                    context={"digest": str(digest)},
                    hint="retry the move",
                )
            self._relocate_row(txn, row, tier, encoding, size, inline=False)
        self.layout.remove(self.layout.locate(digest.algorithm, digest.hex, row.tier, row.encoding))
        return self.info(digest)

    # -- maintenance ----------------------------------------------------------------------------

    def verify(self, *, hash: bool = True, repair: bool = False) -> VerifyReport:
        """Check the whole store: every indexed object present (and, with ``hash``, intact), no orphans.

        Leftovers of dead writers are cleaned first (as on open) and listed in ``repaired``.
        With ``repair``, orphaned object files whose bytes match their name are adopted into the
        index and the others are removed (also listed in ``repaired``). Missing and corrupt
        objects are only reported: putting the same content again repairs them.
        """
        repaired = [f"removed leftover {n}" for n in self.recover()]
        missing: builtins.list[Digest] = []
        corrupt: builtins.list[Digest] = []
        claimed: set[tuple[str, str, str]] = set()
        checked = 0
        rows = self.index.query(f"SELECT {ROW_COLUMNS} FROM objects ORDER BY id")
        for raw in rows:
            row = Row(*raw)
            digest = Digest._trusted(row.digest)
            if not row.inline:
                try:
                    where = self.layout.where(row.tier)
                except ConfigError:
                    where = ""
                claimed.add((digest.key, where, row.encoding))
            if row.state != "present":
                continue
            checked += 1
            problem = self._check_object(digest, row, hash)
            if problem == "missing":
                missing.append(digest)
            elif problem == "corrupt":
                corrupt.append(digest)
        orphaned: list[str] = []
        for base, algorithm, hex, encoding, path in self.layout.all_object_files():
            if hex and (f"{algorithm}:{hex}", base, encoding) in claimed:
                continue
            if hex and self._claimed_now(algorithm, hex, base, encoding):
                continue
            if repair:
                repaired.append(self._repair_orphan(algorithm, hex, encoding, path, base))
            else:
                orphaned.append(str(path))
        if missing or corrupt or orphaned:
            log.warning(
                "artifact_store.verify_problems",
                root=str(self.root), missing=len(missing), corrupt=len(corrupt), orphaned=len(orphaned),
            )  # fmt: skip
        return VerifyReport(
            checked=checked,
            missing=tuple(missing),
            corrupt=tuple(corrupt),
            orphaned=tuple(orphaned),
            repaired=tuple(repaired),
        )

    def _claimed_now(self, algorithm: str, hex: str, base: str, encoding: str) -> bool:
        """Re-check one file against the index (a writer may have committed it during the scan)."""
        found = self.index.query(
            "SELECT tier, encoding, inline FROM objects WHERE digest >= ? AND digest < ?",
            (f"{algorithm}:{hex}:", f"{algorithm}:{hex};"),
        )
        for tier, enc, inline in found:
            try:
                if not inline and enc == encoding and self.layout.where(tier) == base:
                    return True
            except ConfigError:
                continue
        return False

    def _check_object(self, digest: Digest, row: Row, full: bool) -> str | None:
        if row.inline:
            if not full:
                return None
            found = self.index.query("SELECT data FROM inline_data WHERE id = ?", (row.id,))
            if not found:
                return "missing"
            try:
                check_bytes(digest, bytes(found[0][0]))
            except IntegrityError:
                return "corrupt"
            return None
        try:
            size = self.layout.size(self.layout.locate(digest.algorithm, digest.hex, row.tier, row.encoding))
        except ConfigError:  # a cold row in a store opened without its cold tier
            return "missing"
        if size is None:
            return "missing"
        if size != row.stored_size:
            return "corrupt"
        if not full:
            return None
        try:
            with self.open(digest, verify=True) as reader:
                for _ in reader:
                    pass
        except IntegrityError as err:
            return "missing" if err.code == "artifact.object_missing" else "corrupt"
        except Exception:  # undecodable compressed bytes and the like
            return "corrupt"
        return None

    def _repair_orphan(self, algorithm: str, hex: str, encoding: str, path: _fsio.Location, base: str) -> str:
        if hex and algorithm in ALGORITHMS:
            try:
                digest: Digest | None = self._hash_file(path, encoding, algorithm)
            except Exception:  # unreadable or undecodable: not an object we can keep
                digest = None
            if digest is not None and digest.hex == hex:
                tier = "warm" if encoding == "zstd" else "hot"
                if base != str(self.root):
                    tier = "cold"
                if self._adopt_object(path, digest, encoding, tier):
                    return f"adopted {path}"
        self.layout.remove(path)
        return f"removed orphan {path}"

    def stats(self) -> StoreStats:
        """Counts over the index: objects, bytes, stored bytes, per tier, trash, deduplication."""
        present = self.index.query(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(SUM(stored_size), 0), COALESCE(SUM(inline), 0),"
            " COALESCE(SUM(put_count), 0), COALESCE(SUM((put_count - 1) * size), 0) FROM objects WHERE state = 'present'"
        )[0]
        trashed = self.index.query(
            "SELECT COUNT(*), COALESCE(SUM(stored_size), 0) FROM objects WHERE state = 'trashed'"
        )[0]
        tiers = dict(
            self.index.query("SELECT tier, COUNT(*) FROM objects WHERE state = 'present' GROUP BY tier")
        )
        return StoreStats(
            objects=present[0],
            bytes=present[1],
            stored_bytes=present[2],
            inline=present[3],
            by_tier={t: int(tiers.get(t, 0)) for t in TIERS},
            trashed=trashed[0],
            trashed_bytes=trashed[1],
            puts=present[4],
            dedup_saved_bytes=present[5],
        )
