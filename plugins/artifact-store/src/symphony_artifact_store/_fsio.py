"""Every file the store touches goes through here: layout, temporary files, links, reads.

Layout under a root (the cold root has the same shape)::

    index.sqlite                                   the SQLite index (WAL)
    objects/<algorithm>/<2 hex>/<62 hex>[.zst]     one file per stored object, read-only
    tmp/<pid>-<random>.<raw|zst>.tmp               objects being written

A writer holds an exclusive ``flock`` on its temporary file until its put has committed, so
the clean-up on open can tell a live writer's file (locked) from a dead one's (unlocked).
The object reaches its final name by a hard link from the temporary file, made while the
index's write lock is held; the temporary name is removed only after the index row commits.
A leftover temporary file with a second link is therefore an object whose row may be missing:
the clean-up hands it to the store to adopt before removing the temporary name.

OS errors become :class:`~symphony.commons.errors.SymphonyError` through
:func:`~symphony.commons.errors.from_os_error`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

from symphony.commons.errors import ConflictError, FilesystemError, SymphonyError, from_os_error
from symphony.commons.fs import ensure_dir

if TYPE_CHECKING:
    from symphony_artifact_store._remote import RemoteTier

Location: TypeAlias = "Path | str"
"""Where an object is: a local path, or (a ``str``) a path on the remote cold tier."""

__all__ = [
    "ENCODING_SUFFIX",
    "Layout",
    "Location",
    "TempObject",
    "atomic_stream_to",
    "clean_tmp",
    "decoded_chunks",
    "prepare_root",
    "unlink_quiet",
    "unlocked_files",
]

ENCODING_SUFFIX = {"identity": "", "zstd": ".zst"}
_TEMP_SUFFIX = {"identity": "raw", "zstd": "zst"}
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_READ_ONLY = 0o444


def _os_error(exc: OSError, path: object, action: str) -> SymphonyError:
    err = from_os_error(exc, path=path, action=action)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        err.hint = "free disk space (or raise the file size limit) and retry; the store is unchanged"
    elif exc.errno == errno.EROFS:
        err.hint = "the artifact store root is on a read-only filesystem; set [artifact_store] root"
    return err


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries to disk (after a rename, link or unlink in it).

    A no-op on filesystems that cannot fsync a directory.

    Raises:
        NotFoundError / PermissionDeniedError / FilesystemError converted from the OS error.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _os_error(exc, directory, "sync directory") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # cannot fsync a directory here
            raise _os_error(exc, directory, "sync directory") from exc
    finally:
        os.close(fd)


def prepare_root(root: Path) -> Path:
    """Create ``root`` (and its ``tmp`` and ``objects`` folders) and check it is a writable directory.

    Raises:
        ConflictError / PermissionDeniedError / FilesystemError naming the root and the reason.
    """
    if root.exists() and not root.is_dir():
        raise ConflictError(
            f"artifact store root {root} is not a directory",
            code="artifact.root.not_a_directory",
            context={"root": str(root)},
            hint="set [artifact_store] root to a directory",
        )
    try:
        ensure_dir(root)
        ensure_dir(root / "tmp")
        ensure_dir(root / "objects")
        probe = root / "tmp" / f".probe-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _os_error(exc, root, "write to the artifact store root") from exc
        os.close(fd)
        unlink_quiet(probe)  # another process's recovery may have taken it already
    except SymphonyError as err:
        err.context.setdefault("root", str(root))
        if err.hint is None:
            err.hint = "set [artifact_store] root to a writable directory"
        raise
    return root


class Layout:
    """Where each object lives: the local root, and the cold tier when there is one (a local
    directory, or a :class:`~symphony_artifact_store._remote.RemoteTier` at an fsspec URL)."""

    def __init__(self, root: Path, cold: Path | RemoteTier | None = None) -> None:
        self.root = root
        self.cold_root = cold if isinstance(cold, Path) else None
        self.cold_remote = None if isinstance(cold, Path) else cold
        self.index_path = root / "index.sqlite"
        self._made: set[Path] = set()

    def base(self, tier: str) -> Path:
        """The local root holding objects of ``tier`` (see :meth:`where` for a remote cold tier)."""
        if tier == "cold":
            if self.cold_root is None:
                from symphony.commons.errors import ConfigError

                raise ConfigError(
                    "this artifact store has no local cold tier"
                    if self.cold_remote is not None
                    else "this artifact store has no cold tier",
                    code="artifact.config.no_cold_root",
                    context={"section": "artifact_store", "key": "cold_root"},
                    hint="set [artifact_store] cold_root to a directory or an fsspec URL",
                )
            return self.cold_root
        return self.root

    def where(self, tier: str) -> str:
        """The root or URL holding objects of ``tier``, as text."""
        if tier == "cold" and self.cold_remote is not None:
            return str(self.cold_remote)
        return str(self.base(tier))

    def is_remote(self, tier: str) -> bool:
        """True when ``tier`` lives at an fsspec URL."""
        return tier == "cold" and self.cold_remote is not None

    def locate(self, algorithm: str, hex: str, tier: str, encoding: str) -> Location:
        """Where an object of ``tier`` lives: a local path, or a path on the remote cold tier."""
        if tier == "cold" and self.cold_remote is not None:
            return self.cold_remote.object_path(algorithm, hex, encoding)
        return self.object_path(algorithm, hex, tier, encoding)

    def size(self, location: Location) -> int | None:
        """The stored size at ``location``, None when nothing is there."""
        if isinstance(location, Path):
            return file_size(location)
        assert self.cold_remote is not None
        return self.cold_remote.size(location)

    def open_object(self, location: Location) -> IO[bytes]:
        """Open the object at ``location`` for reading (FileNotFoundError as is, for a retry)."""
        if isinstance(location, Path):
            return open_read(location)
        assert self.cold_remote is not None
        return self.cold_remote.open_read(location)

    def remove(self, location: Location) -> None:
        """Remove the object at ``location`` (missing is fine)."""
        if isinstance(location, Path):
            remove_object(location)
        else:
            assert self.cold_remote is not None
            self.cold_remote.remove(location)

    def all_object_files(self) -> Iterator[tuple[str, str, str, str, Location]]:
        """Every file under each tier's ``objects``: ``(where, algorithm, hex, encoding, location)``."""
        bases = [self.root] + ([self.cold_root] if self.cold_root is not None else [])
        for base in bases:
            for algorithm, hex, encoding, path in self.object_files(base):
                yield str(base), algorithm, hex, encoding, path
        if self.cold_remote is not None:
            for algorithm, hex, encoding, remote in self.cold_remote.object_files():
                yield str(self.cold_remote), algorithm, hex, encoding, remote

    def object_path(self, algorithm: str, hex: str, tier: str, encoding: str) -> Path:
        """The final path of an object."""
        return self.base(tier) / "objects" / algorithm / hex[:2] / (hex[2:] + ENCODING_SUFFIX[encoding])

    def tmp_dir(self, tier: str) -> Path:
        """Where temporary files for ``tier`` are written (same filesystem as its objects)."""
        return self.base(tier) / "tmp"

    def ensure_parent(self, path: Path) -> None:
        """Create the fan-out folders of ``path``, syncing each parent whose entries changed."""
        parent = path.parent
        if parent in self._made:
            return
        missing = []
        probe = parent
        while not probe.is_dir():
            missing.append(probe)
            probe = probe.parent
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue
            except OSError as exc:
                raise _os_error(exc, folder, "create directory") from exc
            fsync_dir(folder.parent)
        self._made.add(parent)

    def prepare_fanout(self, tier: str, algorithm: str) -> None:
        """Create the 256 fan-out folders of ``algorithm`` once, so puts never create folders.

        ``ff`` is made last: when it exists, all are there.
        """
        folder = self.base(tier) / "objects" / algorithm
        if (folder / "ff").is_dir():
            return
        try:
            created = not folder.is_dir()
            os.makedirs(folder, exist_ok=True)
            for i in range(256):
                os.makedirs(folder / f"{i:02x}", exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, folder, "create directory") from exc
        fsync_dir(folder)
        if created:
            fsync_dir(folder.parent)

    def object_files(self, tier_base: Path) -> Iterator[tuple[str, str, str, Path]]:
        """Every file under ``<tier_base>/objects``: ``(algorithm, hex, encoding, path)``.

        Names that are not object names come back with an empty ``hex``.
        """
        objects = tier_base / "objects"
        if not objects.is_dir():
            return
        for algo_dir in sorted(objects.iterdir()):
            if not algo_dir.is_dir():
                yield "", "", "", algo_dir
                continue
            for fan in sorted(algo_dir.iterdir()):
                if not fan.is_dir():
                    yield algo_dir.name, "", "", fan
                    continue
                for entry in sorted(fan.iterdir()):
                    name = entry.name
                    encoding = "identity"
                    if name.endswith(".zst"):
                        name, encoding = name[:-4], "zstd"
                    hex = fan.name + name
                    if len(fan.name) != 2 or not _is_hex(hex):
                        hex = ""
                    yield algo_dir.name, hex, encoding, entry


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class TempObject:
    """A temporary file in a ``tmp`` folder, exclusively locked while this process writes it."""

    def __init__(self, path: Path, fd: int, encoding: str, *, borrowed: bool = False) -> None:
        self.path = path
        self.fd = fd
        self.encoding = encoding
        self.size = 0
        self.borrowed = borrowed
        """True for a hard link to the caller's file: its inode is not the store's to annotate."""
        self._closed = False

    @classmethod
    def create(cls, tmp_dir: Path, encoding: str, *, suffix: str | None = None) -> TempObject:
        """A new, empty, locked temporary file (named ``<pid>-<random><suffix>``; by default
        the suffix says the encoding: ``.raw.tmp`` or ``.zst.tmp``)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        if suffix is None:
            suffix = f".{_TEMP_SUFFIX[encoding]}.tmp"
        while True:
            path = tmp_dir / f"{os.getpid()}-{os.urandom(6).hex()}{suffix}"
            try:
                fd = os.open(path, flags, 0o600)  # read-only once synced
            except FileExistsError:
                continue
            except OSError as exc:
                raise _os_error(exc, path, "create a temporary file") from exc
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _still_named(path, fd):
                return cls(path, fd, encoding)
            os.close(fd)  # a cleaner took it for a dead writer's between create and lock: again

    @classmethod
    def hardlink_of(cls, source: Path, tmp_dir: Path) -> TempObject | None:
        """A locked temporary name for ``source`` itself (a hard link), or None if not possible."""
        path = tmp_dir / f"{os.getpid()}-{os.urandom(6).hex()}.raw.tmp"
        try:
            os.link(source, path)
        except OSError:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            unlink_quiet(path)
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not _still_named(path, fd):  # a cleaner removed the name before the lock: copy instead
            os.close(fd)
            return None
        temp = cls(path, fd, "identity", borrowed=True)
        temp.size = os.fstat(fd).st_size
        return temp

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``."""
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
                self.size += written
        except OSError as exc:
            raise _os_error(exc, self.path, "write an object") from exc

    def reflink_from(self, source_fd: int) -> bool:
        """Make this file a copy-on-write clone of ``source_fd``; False where unsupported."""
        try:
            fcntl.ioctl(self.fd, _FICLONE, source_fd)
        except OSError:
            return False
        self.size = os.fstat(self.fd).st_size
        return True

    def sync(self) -> None:
        """fsync the file (and make it read-only)."""
        try:
            os.fchmod(self.fd, _READ_ONLY)
            os.fsync(self.fd)
        except OSError as exc:
            raise _os_error(exc, self.path, "sync an object") from exc

    def link_to(self, final: Path) -> bool:
        """Hard-link the file at ``final``; False if ``final`` already exists. The folder is synced."""
        try:
            os.link(self.path, final)
        except FileExistsError:
            return False
        except OSError as exc:
            raise _os_error(exc, final, "store an object") from exc
        fsync_dir(final.parent)
        return True

    def replace(self, final: Path) -> None:
        """Rename the file over ``final`` (used when ``final`` holds wrong bytes)."""
        try:
            os.replace(self.path, final)
        except OSError as exc:
            raise _os_error(exc, final, "store an object") from exc
        fsync_dir(final.parent)

    def discard(self) -> None:
        """Remove the temporary name and release the lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        unlink_quiet(self.path)
        os.close(self.fd)

    def release(self) -> None:
        """Release the lock and close the file, keeping its name (idempotent)."""
        if self._closed:
            return
        self._closed = True
        os.close(self.fd)


def unlink_quiet(path: Path) -> bool:
    """Remove ``path``; False if it did not exist or could not be removed."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def file_size(path: Path) -> int | None:
    """Size of ``path`` in bytes, None when it does not exist."""
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _still_named(path: Path, fd: int) -> bool:
    """True when ``path`` still names the file open as ``fd`` (checked once its lock is held).

    :func:`clean_tmp` takes a temporary it can lock for a dead writer's; a writer locks right
    after creating, so a cleaner may slip in between. Once the writer holds the lock no cleaner
    can, so a name still there now stays until the writer removes it.
    """
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    here = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (here.st_dev, here.st_ino)


def unlocked_files(folder: Path) -> Iterator[tuple[str, Path, int]]:
    """``(name, path, fd)`` of every file in ``folder`` that no live process holds locked.

    Each file is open and exclusively locked by this process while the caller handles it (the
    lock goes when the iteration moves on), so two processes never handle the same file at once.
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _os_error(exc, folder, "list files") from exc
    for name in names:
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if _still_named(path, fd):
                yield name, path, fd
        finally:
            os.close(fd)


def clean_tmp(tmp_dir: Path, adopt: Callable[[Path, str], None]) -> list[str]:
    """Remove temporary files of dead writers in ``tmp_dir``; return their names.

    A file still locked belongs to a live writer and is left alone. A file with a second link
    is an object that reached its final name; ``adopt(path, encoding)`` is called before its
    temporary name goes, so the store can make sure the index has its row.
    """
    removed: list[str] = []
    for name, path, fd in unlocked_files(tmp_dir):
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink >= 2 and name.endswith((".raw.tmp", ".zst.tmp")):
            adopt(path, "zstd" if name.endswith(".zst.tmp") else "identity")
        if unlink_quiet(path):
            removed.append(name)
    return removed


def open_read(path: Path) -> IO[bytes]:
    """Open an object for reading (raises FileNotFoundError as is, for the caller to retry)."""
    return open(path, "rb", buffering=0)


def decoded_chunks(fh: IO[bytes], encoding: str, chunk_size: int) -> Iterator[bytes]:
    """The decoded content of an open object, ``chunk_size`` bytes at a time."""
    if encoding == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_size=chunk_size, closefd=False)
        while True:
            chunk = reader.read(chunk_size)
            if not chunk:
                return
            yield chunk
    while True:
        chunk = fh.read(chunk_size)
        if not chunk:
            return
        yield chunk


class atomic_stream_to:
    """Write a file in pieces, atomically: temp in the same folder, fsync, rename, fsync folder.

    On an exception inside the ``with`` block the temporary file is removed and ``path`` is
    left as it was.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._temp: TempObject | None = None

    def __enter__(self) -> TempObject:
        parent = self.path.parent
        try:
            ensure_dir(parent)
        except SymphonyError:
            raise
        temp = TempObject.create(parent, "identity")
        self._temp = temp
        return temp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        temp = self._temp
        assert temp is not None
        if exc_type is not None:
            temp.discard()
            return
        try:
            os.fchmod(temp.fd, 0o644)
            os.fsync(temp.fd)
            os.replace(temp.path, self.path)
        except OSError as err:
            temp.discard()
            raise _os_error(err, self.path, "write") from err
        os.close(temp.fd)
        temp._closed = True
        fsync_dir(self.path.parent)


def fsync_file(fh: IO[bytes], path: Path) -> None:
    """Flush and fsync an open file."""
    try:
        fh.flush()
        os.fsync(fh.fileno())
    except OSError as exc:
        raise _os_error(exc, path, "sync") from exc


def remove_object(path: Path) -> None:
    """Remove an object file and sync its folder (missing is fine)."""
    if unlink_quiet(path):
        try:
            fsync_dir(path.parent)
        except FilesystemError:
            pass


def os_error(exc: OSError, path: object, action: str) -> SymphonyError:
    """:func:`~symphony.commons.errors.from_os_error` with hints for a full disk or read-only root."""
    return _os_error(exc, path, action)
