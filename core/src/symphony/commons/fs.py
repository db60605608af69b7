"""Safe filesystem helpers: confined paths, size limits, atomic writes, platform directories.

Every failure is a :class:`~symphony.commons.errors.SymphonyError`: OS errors are converted
with :func:`~symphony.commons.errors.from_os_error` (the path is kept in ``context``), bad
paths raise :class:`~symphony.commons.errors.ValidationError` or
:class:`~symphony.commons.errors.PermissionDeniedError`.

    >>> from symphony.commons.fs import atomic_write, read_text
    >>> path = atomic_write(tmp / "notes" / "a.txt", "hello")   # doctest: +SKIP
    >>> read_text(path, max_size=1024)                           # doctest: +SKIP
    'hello'

The module imports only ``os`` and ``pathlib`` at import time; ``platformdirs`` is imported
the first time a platform directory is asked for.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Union

from symphony.commons.errors import (
    PermissionDeniedError,
    SerializationError,
    ValidationError,
    from_os_error,
)

__all__ = [
    "APP_NAME",
    "atomic_write",
    "cache_dir",
    "data_dir",
    "ensure_dir",
    "exists",
    "fsync_dir",
    "read_bytes",
    "read_text",
    "reject_parent_refs",
    "resolve_within",
    "user_config_file",
]

APP_NAME = "symphony"
"""Application name used for the platform directories."""

StrPath = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- path checks


def reject_parent_refs(path: StrPath) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, refusing any ``..`` component.

    Both ``/`` and ``\\`` count as separators, so ``a\\..\\b`` is refused on every platform.

    Raises:
        ValidationError: ``code="fs.parent_ref"``, ``context={"field": "path", "value": ...}``.
    """
    text = os.fspath(path)
    if ".." in text.replace("\\", "/").split("/"):
        raise ValidationError(
            f"path must not contain '..': {text}",
            code="fs.parent_ref",
            context={"field": "path", "value": text},
            hint="use a path relative to the root without parent references",
        )
    return Path(text)


def resolve_within(root: StrPath, path: StrPath) -> Path:
    """Resolve ``path`` (symlinks included) and require the result to lie inside ``root``.

    A relative ``path`` is taken relative to ``root``. ``root`` itself is resolved too, so a
    root reached through a symlink works. The path need not exist.

    Raises:
        PermissionDeniedError: ``code="fs.outside_root"`` with ``context={"path", "root"}``.
    """
    try:
        root_resolved = Path(root).resolve()
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root_resolved / candidate
        resolved = candidate.resolve()
    except OSError as exc:  # e.g. a symlink loop
        raise from_os_error(exc, path=path, action="resolve") from exc
    except (RuntimeError, ValueError) as exc:  # symlink loop on older Pythons, NUL byte
        raise ValidationError(
            f"cannot resolve path {os.fspath(path)!r}: {exc}",
            code="fs.bad_path",
            context={"field": "path", "value": os.fspath(path)},
        ) from exc
    if resolved != root_resolved and not resolved.is_relative_to(root_resolved):
        raise PermissionDeniedError(
            f"path {os.fspath(path)} resolves outside the allowed root {root_resolved}",
            code="fs.outside_root",
            context={"path": str(resolved), "root": str(root_resolved)},
        )
    return resolved


def _target(path: StrPath, root: StrPath | None) -> Path:
    return resolve_within(root, path) if root is not None else Path(path)


def _too_large(path: Path, size: int, max_size: int) -> ValidationError:
    return ValidationError(
        f"{path} is {size} bytes, over the limit of {max_size} bytes",
        code="fs.too_large",
        context={"field": "path", "path": str(path), "size": size, "max_size": max_size},
        hint="raise fs.max_file_size or use a smaller file",
    )


# --------------------------------------------------------------------------- reading


def read_bytes(path: StrPath, *, root: StrPath | None = None, max_size: int | None = None) -> bytes:
    """Read a whole file, optionally confined to ``root`` and limited to ``max_size`` bytes.

    The limit is enforced on the bytes actually read too, so a file that grows while being read
    (or a device reporting size 0) cannot get past it.

    Raises:
        ValidationError: ``fs.too_large``; PermissionDeniedError: ``fs.outside_root``;
        NotFoundError / PermissionDeniedError / FilesystemError converted from the OS error.
    """
    target = _target(path, root)
    try:
        with open(target, "rb") as fh:
            if max_size is None:
                return fh.read()
            size = os.fstat(fh.fileno()).st_size
            if size > max_size:
                raise _too_large(target, size, max_size)
            data = fh.read(max_size + 1)
            if len(data) > max_size:
                raise _too_large(target, len(data), max_size)
            return data
    except OSError as exc:
        raise from_os_error(exc, path=target, action="read") from exc


def read_text(
    path: StrPath, *, root: StrPath | None = None, max_size: int | None = None, encoding: str = "utf-8"
) -> str:
    """Read a whole text file (see :func:`read_bytes`) and decode it.

    Raises:
        SerializationError: ``fs.decode`` when the bytes are not valid in ``encoding``;
        ValidationError: ``fs.bad_encoding`` for an unknown encoding name; and everything
        :func:`read_bytes` raises.
    """
    data = read_bytes(path, root=root, max_size=max_size)
    try:
        return data.decode(encoding)
    except LookupError as exc:
        raise ValidationError(
            f"unknown text encoding {encoding!r}",
            code="fs.bad_encoding",
            context={"field": "encoding", "value": encoding},
        ) from exc
    except UnicodeDecodeError as exc:
        raise SerializationError(
            f"{path} is not valid {encoding} (byte {exc.start}): {exc.reason}",
            code="fs.decode",
            context={"path": str(path), "encoding": encoding, "position": exc.start},
        ) from exc


def exists(path: StrPath, *, root: StrPath | None = None) -> bool:
    """True if ``path`` exists (after confinement to ``root`` when given)."""
    return _target(path, root).exists()


# --------------------------------------------------------------------------- writing


def ensure_dir(path: StrPath, mode: int | None = None) -> Path:
    """Create ``path`` and its parents if missing; return it as a :class:`~pathlib.Path`.

    ``mode`` (subject to the umask) applies to the directories created; an existing directory
    is left as it is.

    Raises:
        ConflictError: ``io.exists`` when ``path`` exists and is not a directory; other OS
        errors converted with :func:`~symphony.commons.errors.from_os_error`.
    """
    target = Path(path)
    try:
        os.makedirs(target, mode=0o777 if mode is None else mode, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, path=target, action="create directory") from exc
    return target


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems cannot fsync a directory; the rename itself already happened.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def fsync_dir(directory: StrPath) -> None:
    """Flush a directory's entries to disk (after a rename, link or unlink in it).

    A no-op off POSIX, and on filesystems that cannot fsync a directory.

    Raises:
        NotFoundError / PermissionDeniedError / FilesystemError converted from the OS error.
    """
    try:
        _fsync_dir(Path(directory))
    except OSError as exc:
        raise from_os_error(exc, path=directory, action="sync directory") from exc


def _create_temp(directory: Path, name: str) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temp = directory / f".{name[:200]}.{os.urandom(6).hex()}.tmp"
        try:
            # 0o666 honours the umask, like a plain open() would.
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a unique temporary file", str(directory))


def atomic_write(
    path: StrPath,
    data: bytes | str,
    *,
    root: StrPath | None = None,
    max_size: int | None = None,
    mode: int | None = None,
    fsync: bool = True,
) -> Path:
    """Replace ``path`` with ``data`` atomically; return the path written.

    Parent directories are created; the data goes to a uniquely named temporary file in the
    same directory, which is flushed and fsynced, then renamed over ``path`` with
    :func:`os.replace`, and the directory is fsynced. On any failure the temporary file is
    removed and an existing ``path`` is left untouched. ``str`` data is encoded as UTF-8.

    ``mode`` sets the permissions of the result; by default an existing file keeps its mode
    and a new one gets ``0o666`` minus the umask. ``fsync=False`` skips both fsyncs (for
    caches that may be lost on power failure).

    Raises:
        ValidationError: ``fs.too_large`` when ``len(data) > max_size``;
        PermissionDeniedError: ``fs.outside_root``; OS errors converted with
        :func:`~symphony.commons.errors.from_os_error` (``action="write"``).
    """
    target = _target(path, root)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if max_size is not None and len(payload) > max_size:
        raise _too_large(target, len(payload), max_size)
    directory = target.parent
    ensure_dir(directory)
    if mode is None:
        try:
            mode = os.stat(target).st_mode & 0o7777
        except OSError:
            mode = None
    temp: Path | None = None
    try:
        fd, temp = _create_temp(directory, target.name)
        with open(fd, "wb", closefd=True) as fh:
            fh.write(payload)
            fh.flush()
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            if fsync:
                os.fsync(fh.fileno())
        if mode is not None and not hasattr(os, "fchmod"):
            os.chmod(temp, mode)
        os.replace(temp, target)
        temp = None
        if fsync:
            _fsync_dir(directory)
    except OSError as exc:
        raise from_os_error(exc, path=target, action="write") from exc
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass
    return target


# --------------------------------------------------------------------------- platform dirs


def _from_env(environ: Mapping[str, str] | None, name: str) -> Path | None:
    value = (os.environ if environ is None else environ).get(name)
    return Path(os.path.expanduser(value)) if value else None


def cache_dir(*, environ: Mapping[str, str] | None = None) -> Path:
    """Symphony's cache directory: ``$SYMPHONY_CACHE_DIR``, else the platform user cache dir.

    The directory is not created (use :func:`ensure_dir`).
    """
    found = _from_env(environ, "SYMPHONY_CACHE_DIR")
    if found is not None:
        return found
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def data_dir(*, environ: Mapping[str, str] | None = None) -> Path:
    """Symphony's data directory: ``$SYMPHONY_DATA_DIR``, else the platform user data dir.

    The directory is not created (use :func:`ensure_dir`).
    """
    found = _from_env(environ, "SYMPHONY_DATA_DIR")
    if found is not None:
        return found
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_file(*, environ: Mapping[str, str] | None = None) -> Path:
    """The user config file: ``$SYMPHONY_USER_CONFIG``, else ``<user config dir>/config.toml``.

    Neither the file nor its directory is created.
    """
    found = _from_env(environ, "SYMPHONY_USER_CONFIG")
    if found is not None:
        return found
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"
