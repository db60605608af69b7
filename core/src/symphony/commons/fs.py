"""Safe filesystem helpers: race-free root confinement, bounded reads, atomic writes, platform dirs.

Every failure is a :class:`~symphony.commons.errors.SymphonyError`: OS errors are converted
with :func:`~symphony.commons.errors.from_os_error` (the path is kept in ``context``), bad
paths (bytes, NUL, anything but ``str`` / ``os.PathLike[str]``) raise
:class:`~symphony.commons.errors.ValidationError` (``fs.bad_path``), escapes
:class:`~symphony.commons.errors.PermissionDeniedError` (``fs.outside_root``).

**Confinement** (:func:`open_within`, the check :func:`resolve_within` and the ``root=``
arguments) and **reading** (regular files only, at most :data:`DEFAULT_MAX_FILE_SIZE` bytes
unless told otherwise) work as the package README's *Files: what is read, and how much*
describes. POSIX only: every step works on directory descriptors (``dir_fd``).

    >>> from symphony.commons.fs import atomic_write, read_text
    >>> path = atomic_write("notes/a.txt", "hello", root=tmp)   # doctest: +SKIP
    >>> read_text("notes/a.txt", root=tmp, max_size=1024)       # doctest: +SKIP
    'hello'

The module imports only standard-library modules at import time; ``platformdirs`` is
imported the first time a platform directory is asked for.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

from symphony.commons.errors import (
    FilesystemError,
    PermissionDeniedError,
    SerializationError,
    ValidationError,
    from_os_error,
)

__all__ = [
    "APP_NAME",
    "DEFAULT_MAX_FILE_SIZE",
    "atomic_write",
    "cache_dir",
    "data_dir",
    "ensure_dir",
    "exclusive_lock",
    "open_within",
    "read_bytes",
    "read_text",
    "remove_temporaries",
    "resolve_within",
    "user_config_file",
]

APP_NAME = "symphony"
"""Application name used for the platform directories."""

StrPath = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- path checks


def _path_text(path: object, field: str = "path") -> str:
    """``path`` as text; anything but ``str`` / ``os.PathLike[str]`` is a ValidationError."""
    try:
        text = os.fspath(path)  # type: ignore[call-overload]
    except TypeError:
        text = None
    if not isinstance(text, str):
        problem = f"must be a str or os.PathLike[str], not {type(path).__name__}"
    elif "\x00" in text:
        problem = "contains a NUL character"
    else:
        try:
            os.fsencode(text)
            return text
        except UnicodeEncodeError:
            problem = "cannot be encoded for the filesystem"
    shown = repr(path)[:200]
    raise ValidationError(
        f"{field} {problem}: {shown}", code="fs.bad_path", context={"field": field, "value": shown}
    )


def _outside(path: str, root: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"path {path} resolves outside the allowed root {root}",
        code="fs.outside_root",
        context={"path": path, "root": root},
    )


_LINK: Any = object()  # returned by a final-step callback: the last component is a symlink
_MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_R = TypeVar("_R")


def _open_root(root: StrPath) -> tuple[int, str]:
    text = _path_text(root, "root")
    try:
        fd = os.open(text, _DIR_FLAGS)
    except OSError as exc:
        raise from_os_error(exc, path=text, action="open root") from exc
    return fd, os.path.realpath(text)


def _walk(
    root: StrPath,
    path: StrPath,
    final: Callable[[int, str], _R],
    *,
    create_dirs: bool = False,
    missing_ok: bool = False,
) -> tuple[_R, str]:
    """Resolve ``path`` beneath ``root`` one component at a time, holding a directory fd.

    Every directory is opened relative to its parent's fd with ``O_NOFOLLOW``; a symbolic
    link is read (``readlinkat``) and its target resolved by the same rules, so no step ever
    lets the kernel follow a link on its own: what is checked is what is used. ``..`` goes back
    to the directory actually opened before, never above ``root``. ``final(dir_fd, name)``
    acts on the last component (``"."`` when ``path`` names a directory already open); it
    returns :data:`_LINK` or raises ELOOP when that component is a link to follow. Returns
    ``(final's result, the resolved path as text)``. With ``missing_ok`` a missing directory
    ends the walk lexically and ``final`` is not called (the result is None).
    """
    text = _path_text(path)
    root_fd, root_real = _open_root(root)
    stack: list[tuple[int, str]] = [(root_fd, root_real)]
    if os.path.isabs(text):
        rel = _relative_to_root(text, os.fspath(root), root_real)
        if rel is None:
            _close_all(stack)
            raise _outside(os.path.normpath(text), root_real)
        text = rel
    pending = _split(text)
    links = 0
    try:
        while True:
            if pending and pending[0] == "..":
                pending.pop(0)
                if len(stack) == 1:
                    raise _outside(os.path.normpath(os.path.join(root_real, "..", *pending)), root_real)
                os.close(stack.pop()[0])
                continue
            fd, here = stack[-1]
            name = pending.pop(0) if pending else "."
            target: str | None = None
            if not pending:  # the last component
                try:
                    result = final(fd, name)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR) or name == ".":
                        raise from_os_error(exc, path=os.path.join(here, name), action="open") from exc
                    target = _readlink(fd, name, here, exc)
                else:
                    if result is not _LINK:
                        return result, os.path.normpath(os.path.join(here, name))
                    target = _readlink(fd, name, here, None)
            else:
                try:
                    child = os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except FileNotFoundError as exc:
                    if missing_ok:
                        rest = os.path.normpath(os.path.join(name, *pending))
                        if rest == ".." or rest.startswith("../"):
                            raise _outside(os.path.normpath(os.path.join(here, rest)), root_real) from None
                        return None, os.path.join(here, rest)  # type: ignore[return-value]
                    if not create_dirs:
                        raise from_os_error(exc, path=os.path.join(here, name), action="open") from exc
                    try:
                        os.mkdir(name, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as err:
                        raise from_os_error(
                            err, path=os.path.join(here, name), action="create directory"
                        ) from err
                    pending.insert(0, name)  # open it on the next turn (it may be a link by then)
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise from_os_error(exc, path=os.path.join(here, name), action="open") from exc
                    target = _readlink(fd, name, here, exc)
                else:
                    stack.append((child, os.path.join(here, name)))
                    continue
            links += 1
            if links > _MAX_LINKS:
                raise FilesystemError(
                    f"too many symbolic links resolving {os.fspath(path)} within {root_real}",
                    code="fs.link_loop",
                    context={"path": os.fspath(path), "root": root_real},
                )
            if os.path.isabs(target):
                rel = _relative_to_root(target, os.fspath(root), root_real)
                if rel is None:
                    raise _outside(os.path.realpath(target), root_real)
                while len(stack) > 1:
                    os.close(stack.pop()[0])
                target = rel
            pending = _split(target) + pending
    finally:
        _close_all(stack)


def _split(text: str) -> list[str]:
    return [p for p in text.replace(os.sep, "/").split("/") if p not in ("", ".")]


def _close_all(stack: list[tuple[int, str]]) -> None:
    while stack:
        os.close(stack.pop()[0])


def _relative_to_root(absolute: str, root_given: str, root_real: str) -> str | None:
    """``absolute`` relative to the root (as given or resolved), lexically; None if outside."""
    for base in (root_real, os.path.normpath(os.path.abspath(root_given))):
        normal = os.path.normpath(absolute)
        if normal == base:
            return "."
        if normal.startswith(base.rstrip("/") + "/"):
            return (
                absolute[len(base.rstrip("/")) + 1 :]
                if absolute.startswith(base)
                else normal[len(base) + 1 :]
            )
    return None


def _readlink(dir_fd: int, name: str, here: str, original: OSError | None) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:  # not a link after all: the original error stands
        cause = original or exc
        raise from_os_error(cause, path=os.path.join(here, name), action="open") from cause


def _lstat_final(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat of ``name``, :data:`_LINK` for a symlink, None when missing."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return _LINK if stat.S_ISLNK(st.st_mode) else st


def resolve_within(root: StrPath, path: StrPath) -> Path:
    """Resolve ``path`` (symlinks included) and require the result to lie inside ``root``.

    A relative ``path`` is taken relative to ``root``; ``root`` itself may be reached through a
    symlink. The path need not exist. Symlinks inside the root are followed only while they
    stay inside it. This is a *check*: to act on the path use :func:`open_within` (or the
    ``root=`` argument of :func:`read_bytes` / :func:`atomic_write`), which resolve and act in
    one race-free walk.

    Raises:
        PermissionDeniedError: ``code="fs.outside_root"`` with ``context={"path", "root"}``;
        ValidationError: ``fs.bad_path`` for a value that is not a text path (bytes included);
        FilesystemError: ``fs.link_loop``; other OS errors converted.
    """
    _, resolved = _walk(root, path, _lstat_final, missing_ok=True)
    return Path(resolved)


# --------------------------------------------------------------------------- confined access


def open_within(root: StrPath, path: StrPath, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """Open ``path`` beneath ``root`` without ever following a link out of it; return the fd.

    ``flags`` are :func:`os.open` flags (``O_CLOEXEC`` is added); missing directories are not
    created. Wrap the fd with :func:`os.fdopen`.

    Raises:
        PermissionDeniedError: ``fs.outside_root``; ValidationError: ``fs.bad_path``;
        OS errors converted with :func:`~symphony.commons.errors.from_os_error`.
    """

    def final(dir_fd: int, name: str) -> int:
        return os.open(name, flags | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode, dir_fd=dir_fd)

    fd, _ = _walk(root, path, final)
    return fd


def _parent_fd(dir_fd: int, name: str) -> tuple[int, str]:
    """A walk's final step: an fd of the directory holding ``name``, and ``name``."""
    if _lstat_final(dir_fd, name) is not _LINK:  # "." is never a link
        return os.dup(dir_fd), name
    return _LINK  # type: ignore[return-value]


def _too_large(path: object, size: int, max_size: int) -> ValidationError:
    return ValidationError(
        f"{path} is {size} bytes, over the limit of {max_size} bytes",
        code="fs.too_large",
        context={"field": "path", "path": str(path), "size": size, "max_size": max_size},
        hint="raise fs.max_file_size or use a smaller file",
    )


# --------------------------------------------------------------------------- reading

DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024
"""The default read limit (100 MiB), also the default of the ``fs.max_file_size`` setting."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _read_fd(fd: int, shown: object, max_size: int | None) -> bytes:
    """Read a whole regular file from ``fd`` (closed here), refusing anything else."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise FilesystemError(
                f"{shown} is {kind}, not a regular file: refusing to read it",
                code="fs.not_regular",
                context={"path": str(shown), "kind": kind},
                hint="point the setting at a regular file",
            )
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb", closefd=True) as fh:
        if max_size is None:
            return fh.read()
        if st.st_size > max_size:
            raise _too_large(shown, st.st_size, max_size)
        data = fh.read(max_size + 1)
        if len(data) > max_size:
            raise _too_large(shown, len(data), max_size)
        return data


def read_bytes(
    path: StrPath, *, root: StrPath | None = None, max_size: int | None = DEFAULT_MAX_FILE_SIZE
) -> bytes:
    """Read a whole regular file, optionally confined to ``root``, at most ``max_size`` bytes.

    Only regular files are read: the file is opened non-blocking and checked with ``fstat``,
    so a FIFO, socket, device (``/dev/zero``) or directory is refused at once, never read or
    waited on. The limit (default :data:`DEFAULT_MAX_FILE_SIZE`; ``None`` for none) is enforced
    on the bytes actually read too, so a file growing while being read cannot get past it.
    With ``root`` the path is opened by :func:`open_within` (no link followed out of it).

    Raises:
        ValidationError: ``fs.too_large``, ``fs.bad_path``; FilesystemError: ``fs.not_regular``;
        PermissionDeniedError: ``fs.outside_root``; NotFoundError / PermissionDeniedError /
        FilesystemError converted from the OS error.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if root is not None:
        fd = open_within(root, path, flags)
        shown: object = path
    else:
        shown = _path_text(path)
        try:
            fd = os.open(shown, flags)
        except OSError as exc:
            raise from_os_error(exc, path=shown, action="read") from exc
    try:
        return _read_fd(fd, shown, max_size)
    except OSError as exc:
        raise from_os_error(exc, path=shown, action="read") from exc


def read_text(
    path: StrPath, *, root: StrPath | None = None, max_size: int | None = DEFAULT_MAX_FILE_SIZE
) -> str:
    """Read a whole UTF-8 text file (see :func:`read_bytes`) and decode it.

    Raises:
        SerializationError: ``fs.decode`` when the bytes are not valid UTF-8; and everything
        :func:`read_bytes` raises.
    """
    data = read_bytes(path, root=root, max_size=max_size)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(
            f"{path} is not valid utf-8 (byte {exc.start}): {exc.reason}",
            code="fs.decode",
            context={"path": str(path), "encoding": "utf-8", "position": exc.start},
        ) from exc


# --------------------------------------------------------------------------- writing


def ensure_dir(path: StrPath, mode: int | None = None) -> Path:
    """Create ``path`` and its parents if missing; return it as a :class:`~pathlib.Path`.

    ``mode`` (subject to the umask) applies to the directories created; an existing directory
    is left as it is.

    Raises:
        ConflictError: ``io.exists`` when ``path`` exists and is not a directory; other OS
        errors converted with :func:`~symphony.commons.errors.from_os_error`.
    """
    target = Path(_path_text(path))
    try:
        os.makedirs(target, mode=0o777 if mode is None else mode, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, path=target, action="create directory") from exc
    return target


_TEMP_SUFFIX = ".tmp"


def _temp_name(name: str) -> str:
    return f".{name[:200]}.{os.urandom(6).hex()}{_TEMP_SUFFIX}"


def _is_temp_of(entry: str, name: str | None) -> bool:
    if not (entry.startswith(".") and entry.endswith(_TEMP_SUFFIX)):
        return False
    stem = entry[1 : -len(_TEMP_SUFFIX)]
    base, _, token = stem.rpartition(".")
    if len(token) != 12 or any(c not in "0123456789abcdef" for c in token):
        return False
    return name is None or base == name[:200]


def _write_in_dir(dir_fd: int, name: str, payload: bytes, mode: int | None, fsync: bool) -> None:
    """Write ``payload`` to a temporary in ``dir_fd``, rename it over ``name``; never leave it."""
    if mode is None:
        try:
            mode = os.stat(name, dir_fd=dir_fd).st_mode & 0o7777
        except OSError:
            mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temp = _temp_name(name)
        try:
            fd = os.open(temp, flags, 0o666, dir_fd=dir_fd)  # 0o666 honours the umask
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "could not create a unique temporary file", name)
    try:
        with open(fd, "wb", closefd=True) as fh:
            fh.write(payload)
            fh.flush()
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            if fsync:
                os.fsync(fh.fileno())
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    if fsync:
        try:
            os.fsync(dir_fd)
        except OSError as exc:
            # Some filesystems cannot fsync a directory; the rename itself already happened.
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
                raise


def atomic_write(
    path: StrPath,
    data: bytes | str,
    *,
    root: StrPath | None = None,
    mode: int | None = None,
    fsync: bool = True,
) -> Path:
    """Replace ``path`` with ``data`` atomically; return the path written.

    Parent directories are created; the data goes to a uniquely named temporary file
    (``.<name>.<12 hex>.tmp``) in the same directory, which is flushed and fsynced, then renamed
    over ``path`` and the directory is fsynced. Every step works on an fd of that directory, so
    a link swapped in meanwhile cannot redirect it; with ``root`` the directory is reached by
    the race-free walk of :func:`open_within`. On any failure (interrupts included) the
    temporary file is removed and an existing ``path`` is left untouched; the temporaries of a
    killed process are removed by :func:`remove_temporaries`. ``str`` data is encoded as UTF-8.

    ``mode`` sets the permissions of the result; by default an existing file keeps its mode
    and a new one gets ``0o666`` minus the umask. ``fsync=False`` skips both fsyncs (for
    caches that may be lost on power failure).

    Raises:
        ValidationError: ``fs.bad_path``;
        PermissionDeniedError: ``fs.outside_root``; OS errors converted with
        :func:`~symphony.commons.errors.from_os_error` (``action="write"``).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if root is not None:
        (dir_fd, name), resolved = _walk(root, path, _parent_fd, create_dirs=True)
        target = Path(resolved)
    else:
        target = Path(_path_text(path))
        ensure_dir(target.parent)
        name = target.name
        try:
            dir_fd = os.open(target.parent, _DIR_FLAGS)
        except OSError as exc:
            raise from_os_error(exc, path=target, action="write") from exc
    try:
        if name in (".", ""):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
        _write_in_dir(dir_fd, name, payload, mode, fsync)
    except OSError as exc:
        raise from_os_error(exc, path=target, action="write") from exc
    finally:
        os.close(dir_fd)
    return target


def remove_temporaries(directory: StrPath, *, name: str | None = None) -> int:
    """Remove the temporaries :func:`atomic_write` left in ``directory`` (a killed process's).

    Only regular files named ``.<name>.<12 hex>.tmp`` are touched, and only those of ``name``
    when given. A writer running at the same time owns a fresh one: call this under the lock
    that orders the writers (see :func:`exclusive_lock`). Returns how many were removed.
    """
    try:
        fd = os.open(_path_text(directory, "directory"), _DIR_FLAGS)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise from_os_error(exc, path=directory, action="list") from exc
    removed = 0
    try:
        for entry in os.listdir(fd):
            if not _is_temp_of(entry, name):
                continue
            try:
                st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    os.unlink(entry, dir_fd=fd)
                    removed += 1
            except FileNotFoundError:
                continue
    except OSError as exc:
        raise from_os_error(exc, path=directory, action="clean") from exc
    finally:
        os.close(fd)
    return removed


# --------------------------------------------------------------------------- platform dirs


def _from_env(environ: Mapping[str, str] | None, name: str) -> Path | None:
    value = (os.environ if environ is None else environ).get(name)
    return Path(os.path.expanduser(value)) if value else None


def _user_dir(kind: str) -> Path:
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP_NAME, appauthor=False))


def cache_dir(*, environ: Mapping[str, str] | None = None) -> Path:
    """Symphony's cache directory: ``$SYMPHONY_CACHE_DIR``, else the platform user cache dir.

    The directory is not created (use :func:`ensure_dir`).
    """
    return _from_env(environ, "SYMPHONY_CACHE_DIR") or _user_dir("cache")


def data_dir(*, environ: Mapping[str, str] | None = None) -> Path:
    """Symphony's data directory: ``$SYMPHONY_DATA_DIR``, else the platform user data dir.

    The directory is not created (use :func:`ensure_dir`).
    """
    return _from_env(environ, "SYMPHONY_DATA_DIR") or _user_dir("data")


def user_config_file(*, environ: Mapping[str, str] | None = None) -> Path:
    """The user config file: ``$SYMPHONY_USER_CONFIG``, else ``<user config dir>/config.toml``.

    Neither the file nor its directory is created.
    """
    return _from_env(environ, "SYMPHONY_USER_CONFIG") or _user_dir("config") / "config.toml"


# --------------------------------------------------------------------------- locking, leftovers


@contextlib.contextmanager
def exclusive_lock(path: StrPath) -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``path`` (created if missing, never removed).

    Processes that edit one file take the lock on a lock file beside it, then re-read the file
    under the lock, so concurrent read-modify-write cycles lose no update. ``fcntl.flock``
    (POSIX, as the ``dir_fd`` walks of this module); the lock is released when the block exits
    or the process dies (a killed editor never leaves it held). Yields the lock file's path.
    """
    import fcntl

    lock_path = Path(path)
    ensure_dir(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise from_os_error(exc, path=lock_path, action="lock") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield lock_path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
