"""Put records: the metadata of a new object's index row, made durable by the object's own fsync.

A put of a new file object attaches its row's content — digest, encoding, stored size, time and
metadata, as JSON — to the object's temporary file as the extended attribute
``user.symphony.put`` before the file is fsynced: the one fsync makes the bytes and the record
durable together (an extended attribute is inode metadata, which fsync flushes). Once the object
is linked into place and its folder synced, the index row commits **without** syncing SQLite's
WAL (``synchronous=NORMAL``): the row is visible at once and survives a process crash; a power
loss may roll back the newest unsynced WAL frames, and then the object file itself is the
durable record. The put pays for its object's durability alone, like a plain write + fsync +
rename, not for a third fsync of the WAL.

To know when to look for lost rows, a process that commits relaxed rows first leaves a marker
in ``<root>/journal/`` holding the machine's boot id, and removes it on close after one synced
commit (a synced WAL frame makes every frame before it durable). A marker from another boot
means the machine went down while that process had relaxed rows: the next open scans the
objects for files without rows and rebuilds each row from the file's record, after checking
the bytes against the digest. A marker from this boot means only the process died: its rows
are in the WAL already (the OS kept them), so nothing is scanned.

Where the filesystem has no user extended attributes, or a record is too large for one, the put
commits its row synced instead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from symphony.commons.errors import ValidationError
from symphony.commons.fs import ensure_dir, fsync_dir
from symphony_artifact_store import _fsio
from symphony_artifact_store._digest import Digest, check_media_type, check_tag

__all__ = ["XATTR", "Journal", "PutRecord", "attach", "attached", "boot_id"]

XATTR = "user.symphony.put"
MARKER_SUFFIX = ".live"
_VERSION = 1


def _malformed(reason: str) -> ValidationError:
    return ValidationError(
        f"malformed put record: {reason}",
        code="artifact.journal.malformed",
        context={"reason": reason},
    )


@attrs.frozen
class PutRecord:
    """What a new object's index row holds, as written to the journal."""

    digest: str
    encoding: str
    stored_size: int
    created: float
    media_type: str | None = None
    tags: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    producer: tuple[str | None, str | None, str | None] = (None, None, None)
    meta: Mapping[str, Any] | None = None

    def encode(self) -> bytes:
        """The record as JSON bytes."""
        return json.dumps(
            {
                "v": _VERSION, "digest": self.digest, "encoding": self.encoding, "stored_size": self.stored_size,
                "created": self.created, "media_type": self.media_type, "tags": list(self.tags),
                "parents": list(self.parents), "producer": list(self.producer),
                "meta": None if self.meta is None else dict(self.meta),
            },
            sort_keys=True, allow_nan=False,
        ).encode()  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> PutRecord:
        """Parse a record written by :meth:`encode`.

        Raises:
            ValidationError: ``artifact.journal.malformed`` (a torn or foreign file), or the
            digest / tag / media type error naming the bad value.
        """
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _malformed(f"not JSON ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("v") != _VERSION:
            raise _malformed(f"not a version {_VERSION} record")
        encoding, size, created = raw.get("encoding"), raw.get("stored_size"), raw.get("created")
        if encoding not in _fsio.ENCODING_SUFFIX:
            raise _malformed(f"unknown encoding {encoding!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _malformed(f"stored_size must be a non-negative integer, not {size!r}")
        if not isinstance(created, (int, float)) or isinstance(created, bool) or not math.isfinite(created):
            raise _malformed(f"created must be a number, not {created!r}")
        media_type, tags, parents = raw.get("media_type"), raw.get("tags"), raw.get("parents")
        producer, meta = raw.get("producer"), raw.get("meta")
        if not isinstance(tags, list) or not isinstance(parents, list):
            raise _malformed("tags and parents must be lists")
        if not isinstance(producer, list) or len(producer) != 3:
            raise _malformed("producer must be a list of three")
        if not all(p is None or isinstance(p, str) for p in producer):
            raise _malformed("producer entries must be strings or null")
        if meta is not None and not isinstance(meta, dict):
            raise _malformed("meta must be an object or null")
        if not all(isinstance(t, str) for t in tags) or not all(isinstance(p, str) for p in parents):
            raise _malformed("tags and parents must be strings")
        return cls(
            digest=Digest.check(str(raw.get("digest"))),
            encoding=encoding,
            stored_size=size,
            created=float(created),
            media_type=None if media_type is None else check_media_type(media_type),
            tags=tuple(check_tag(t) for t in tags),
            parents=tuple(Digest.check(p) for p in parents),
            producer=(producer[0], producer[1], producer[2]),
            meta=meta,
        )


def attach(fd: int, record: PutRecord) -> bool:
    """Store ``record`` in the extended attribute ``user.symphony.put`` of the open file ``fd``.

    False where that is not possible (no user xattrs on this filesystem, or a record too large
    for one): the caller then commits the row synced instead.
    """
    try:
        os.setxattr(fd, XATTR, record.encode())
    except (OSError, AttributeError):  # ENOTSUP, E2BIG, ENOSPC, EACCES; no xattrs on this OS
        return False
    return True


def attached(path: Path) -> PutRecord | None:
    """The put record attached to the object at ``path``, or None (none, unreadable, malformed)."""
    try:
        return PutRecord.decode(os.getxattr(path, XATTR))
    except (OSError, AttributeError, ValidationError):
        return None


def boot_id() -> str:
    """This boot of the machine (Linux ``boot_id``); empty where unknown (then every crash counts as a power loss)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return ""


class Journal:
    """The ``journal`` folder of a store root: one marker per process that committed relaxed rows.

    A marker holds the machine's boot id and stays locked while its process has the store
    open; the process removes it on close, after one synced commit. An unlocked marker left
    from an earlier boot (or an unknown one) means a power loss or a machine crash may have
    taken rows: the store then scans its objects for files without rows.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        if not folder.is_dir():
            ensure_dir(folder)
            fsync_dir(folder.parent)

    def mark(self) -> _fsio.TempObject:
        """A durable, locked marker for this process (``release``-d never: ``discard`` it on close)."""
        marker = _fsio.TempObject.create(self.folder, "identity", suffix=MARKER_SUFFIX)
        try:
            marker.write(boot_id().encode())
            marker.sync()
            fsync_dir(self.folder)
        except BaseException:
            marker.discard()
            raise
        return marker

    def dead(self) -> Iterator[tuple[Path, bool]]:
        """Markers of processes gone: each path and whether rows may have been lost (another boot).

        Each stays locked by this process while the caller handles it.
        """
        here = boot_id()
        for _name, path, fd in _fsio.unlocked_files(self.folder):
            try:
                then = os.read(fd, 256).decode("ascii", "replace").strip()
            except OSError:
                then = ""
            yield path, not here or then != here
