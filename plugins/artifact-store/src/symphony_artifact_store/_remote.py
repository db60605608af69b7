"""A cold tier at any fsspec URL (``s3://bucket/artifacts``, ``file:///mnt/archive``, ``memory://x``).

The objects keep the local layout under the URL: ``objects/<algorithm>/<2 hex>/<62 hex>[.zst]``.
A copy is written under a ``.part-<random>`` name beside its final name and moved into place,
so a reader never sees a partial object under a final name; its size is checked before the
index points at it. Durability is the remote filesystem's: object stores make a finished upload
durable, but fsspec has no fsync, so a local disk is better named as a plain directory
(``cold_root = "/mnt/archive"``), which the store syncs like its own root.

OS and fsspec errors become :class:`~symphony.commons.errors.SymphonyError` naming the URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

from symphony.commons.errors import ConfigError, FilesystemError, SymphonyError
from symphony_artifact_store._fsio import ENCODING_SUFFIX, os_error

__all__ = ["RemoteTier", "is_url"]

_PART = ".part-"


def is_url(value: object) -> bool:
    """True for a string naming an fsspec URL (``<protocol>://...``) rather than a local path."""
    return isinstance(value, str) and "://" in value


def _error(exc: Exception, url: str, action: str) -> SymphonyError:
    if isinstance(exc, OSError):
        err = os_error(exc, url, action)
    else:
        err = FilesystemError(
            f"cold tier {url}: cannot {action}: {exc}",
            code="artifact.cold.failed",
            context={"url": url, "action": action, "error": type(exc).__name__},
        )
    err.context.setdefault("url", url)
    return err


class RemoteTier:
    """The cold tier's objects at an fsspec URL (``fsspec`` is imported on first use)."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            fs, path = fsspec.core.url_to_fs(self.url)
        except (ValueError, ImportError) as exc:  # unknown protocol, or its package is missing
            raise ConfigError(
                f"cold_root {url!r} is not a usable fsspec URL: {exc}",
                code="artifact.config.cold_url",
                context={"section": "artifact_store", "key": "cold_root", "value": url},
                hint="use a directory or a URL fsspec knows (install the package for its protocol)",
            ) from exc
        self.fs: Any = fs
        self.base = str(path).rstrip("/")
        try:
            self.fs.makedirs(f"{self.base}/objects", exist_ok=True)
        except Exception as exc:
            raise _error(exc, self.url, "create the objects folder") from exc

    def __str__(self) -> str:
        return self.url

    def object_path(self, algorithm: str, hex: str, encoding: str) -> str:
        """Where an object lives on the remote filesystem."""
        return f"{self.base}/objects/{algorithm}/{hex[:2]}/{hex[2:]}{ENCODING_SUFFIX[encoding]}"

    def size(self, path: str) -> int | None:
        """The object's size, None when it is not there."""
        try:
            return int(self.fs.size(path))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise _error(exc, self.url, "stat an object") from exc

    def open_read(self, path: str) -> IO[bytes]:
        """Open an object for reading (raises FileNotFoundError as is, for the caller to retry)."""
        try:
            return self.fs.open(path, "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise _error(exc, self.url, "read an object") from exc

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        """Write an object under a partial name, move it to ``path``; return its size."""
        part = f"{path}{_PART}{os.urandom(6).hex()}"
        size = 0
        try:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with self.fs.open(part, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    size += len(chunk)
            self.fs.mv(part, path)
        except BaseException as exc:
            self.remove(part)
            if isinstance(exc, Exception) and not isinstance(exc, SymphonyError):
                raise _error(exc, self.url, "write an object") from exc
            raise
        if self.size(path) != size:
            self.remove(path)
            raise FilesystemError(
                f"cold tier {self.url}: the copy at {path} does not have the {size} bytes written",
                code="artifact.cold.short_write",
                context={"url": self.url, "path": path, "size": size},
            )
        return size

    def remove(self, path: str) -> None:
        """Remove an object (missing is fine)."""
        try:
            self.fs.rm(path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise _error(exc, self.url, "remove an object") from exc

    def object_files(self) -> Iterator[tuple[str, str, str, str]]:
        """Every file under ``objects``: ``(algorithm, hex, encoding, path)``; other names get an empty hex."""
        top = f"{self.base}/objects/"
        try:
            found = sorted(self.fs.find(top.rstrip("/")))
        except Exception as exc:
            raise _error(exc, self.url, "list objects") from exc
        for path in found:
            path = str(path)
            parts = path[len(top) :].split("/") if path.startswith(top) else []
            if len(parts) != 3 or len(parts[1]) != 2:
                yield (parts[0] if parts else ""), "", "", path
                continue
            name, encoding = parts[2], "identity"
            if name.endswith(".zst"):
                name, encoding = name[:-4], "zstd"
            hex = parts[1] + name
            ok = len(hex) == 64 and all(c in "0123456789abcdef" for c in hex)
            yield parts[0], hex if ok else "", encoding, path
