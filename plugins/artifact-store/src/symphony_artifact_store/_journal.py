"""Put records: the metadata of a new object's index row, made durable by the object's own fsync.

A put of a new file object attaches what its index row holds beyond what the object itself
tells (its name the digest, its bytes the sizes): the time and the metadata, as compact JSON,
to the object's temporary file as the extended attribute ``user.symphony.put``, before the
file is fsynced: the one fsync makes the bytes and the record durable together (an extended
attribute is inode metadata, which fsync flushes). Once the object
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
from symphony.commons.fs import ensure_dir
from symphony_artifact_store import _fsio
from symphony_artifact_store._digest import Digest, check_media_type, check_tag
from symphony_artifact_store._fsio import fsync_dir

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
    """The metadata of a new object's index row, as attached to the object.

    The object's own name and bytes give the rest (digest, encoding, sizes). Encoded compactly,
    empty fields left out, so a put without metadata attaches a few dozen bytes, which ext4
    keeps inside the inode (no extra block to write).
    """

    created: float
    media_type: str | None = None
    tags: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    producer: tuple[str | None, str | None, str | None] = (None, None, None)
    meta: Mapping[str, Any] | None = None

    def encode(self) -> bytes:
        """The record as compact JSON bytes."""
        raw: dict[str, Any] = {"v": _VERSION, "c": self.created}
        if self.media_type is not None:
            raw["m"] = self.media_type
        if self.tags:
            raw["t"] = list(self.tags)
        if self.parents:
            raw["p"] = list(self.parents)
        if self.producer != (None, None, None):
            raw["w"] = list(self.producer)
        if self.meta is not None:
            raw["x"] = dict(self.meta)
        return json.dumps(raw, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()

    @classmethod
    def decode(cls, data: bytes) -> PutRecord:
        """Parse a record written by :meth:`encode`.

        Raises:
            ValidationError: ``artifact.journal.malformed`` (damaged or foreign), or the
            digest / tag / media type error naming the bad value.
        """
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _malformed(f"not JSON ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("v") != _VERSION:
            raise _malformed(f"not a version {_VERSION} record")
        created, media_type, meta = raw.get("c"), raw.get("m"), raw.get("x")
        tags, parents, producer = raw.get("t", []), raw.get("p", []), raw.get("w", [None, None, None])
        if not isinstance(created, (int, float)) or isinstance(created, bool) or not math.isfinite(created):
            raise _malformed(f"the creation time must be a number, not {created!r}")
        if not isinstance(tags, list) or not isinstance(parents, list):
            raise _malformed("tags and parents must be lists")
        if not all(isinstance(t, str) for t in tags) or not all(isinstance(p, str) for p in parents):
            raise _malformed("tags and parents must be strings")
        if not isinstance(producer, list) or len(producer) != 3:
            raise _malformed("the producer must be a list of three")
        if not all(p is None or isinstance(p, str) for p in producer):
            raise _malformed("the producer's entries must be strings or null")
        if meta is not None and not isinstance(meta, dict):
            raise _malformed("meta must be an object or null")
        return cls(
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
