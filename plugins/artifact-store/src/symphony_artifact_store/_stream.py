"""Streaming pieces of the store: the writer behind every streamed put, the checked reader, and
the byte-level helpers (zstd, digest checks) they share with the store."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from symphony.commons.errors import IntegrityError, ValidationError
from symphony_artifact_store import _fsio
from symphony_artifact_store._digest import Digest, Hasher, hash_bytes, new_hasher
from symphony_artifact_store._model import StoreConfig

if TYPE_CHECKING:
    from symphony_artifact_store._core import StoreCore, _PutMeta

__all__ = [
    "ArtifactReader",
    "ArtifactWriter",
    "check_bytes",
    "compressor",
    "corrupt_error",
    "decompress",
    "write_encoded",
]


def compressor(config: StoreConfig) -> Any:
    import zstandard

    return zstandard.ZstdCompressor(level=config.compression_level).compressobj()


def write_encoded(temp: _fsio.TempObject, data: bytes | bytearray | memoryview, config: StoreConfig) -> None:
    if temp.encoding == "zstd":
        import zstandard

        temp.write(zstandard.ZstdCompressor(level=config.compression_level).compress(data))
    else:
        temp.write(data)


def decompress(raw: bytes, digest: Digest) -> bytes:
    import zstandard

    try:
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    except zstandard.ZstdError as exc:
        raise IntegrityError(
            f"artifact {digest} is corrupt: its compressed bytes do not decode ({exc})",
            code="artifact.corrupt",
            context={"digest": str(digest)},
            hint="run `symphony artifacts verify`; put the content again to repair it",
        ) from exc


def corrupt_error(digest: Digest, actual: str) -> IntegrityError:
    return IntegrityError(
        f"artifact {digest} is corrupt: its bytes hash to {actual}",
        code="artifact.corrupt",
        context={"digest": str(digest), "actual": actual},
        hint="run `symphony artifacts verify`; put the content again to repair it",
    )


def check_bytes(digest: Digest, data: bytes) -> None:
    actual = hash_bytes(digest.algorithm, data)
    if actual != digest:
        raise corrupt_error(digest, str(actual))


class ArtifactWriter:
    """A streaming put: ``write`` chunks, ``commit`` for the digest, or ``abort``.

    Small content (up to ``inline_max``) stays in memory and goes into the index; beyond that
    it streams into a locked temporary file, so memory stays bounded by the chunk size.
    """

    def __init__(self, store: StoreCore, info: _PutMeta) -> None:
        self._store = store
        self._info = info
        self._hasher: Hasher = new_hasher(store.algorithm)
        self._buffer = bytearray()
        self._size = 0
        self._temp: _fsio.TempObject | None = None
        self._compressor: Any = None
        self._done = False
        self.digest: Digest | None = None
        """The digest, once committed."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append a chunk."""
        if self._done:
            raise ValidationError(
                "this writer is already committed or aborted", code="artifact.writer.closed"
            )
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValidationError(
                f"a chunk must be bytes, not {type(data).__name__}",
                code="artifact.source.not_binary",
                context={"type": type(data).__name__},
            )
        self._hasher.update(data)
        self._size += len(data)
        if self._temp is None:
            if self._size <= self._store.config.inline_max:
                self._buffer += data
                return
            compress = self._store._compress(self._info)
            self._temp = self._store._new_temp(compress)
            if compress:
                self._compressor = compressor(self._store.config)
            pending = bytes(self._buffer)
            self._buffer = bytearray()
            if pending:
                self._emit(pending)
        self._emit(data)

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        assert self._temp is not None
        if self._compressor is not None:
            out = self._compressor.compress(data)
            if out:
                self._temp.write(out)
        else:
            self._temp.write(data)

    def commit(self) -> Digest:
        """Finish: make the object durable, commit its row, return its digest."""
        if self._done:
            if self.digest is None:
                raise ValidationError("this writer was aborted", code="artifact.writer.closed")
            return self.digest
        digest = Digest(self._store.algorithm, self._hasher.hexdigest(), self._size)
        store = self._store
        try:
            if self._temp is None:
                if not store._refresh_if_present(digest, self._info):
                    store._commit_inline(digest, bytes(self._buffer), self._info)
            else:
                if self._compressor is not None:
                    self._temp.write(self._compressor.flush())
                if not store._refresh_if_present(digest, self._info):
                    store._commit_file(digest, self._temp, self._info)
        finally:
            self._finish()
        self.digest = digest
        return digest

    def abort(self) -> None:
        """Drop everything written so far (idempotent)."""
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._buffer = bytearray()
        if self._temp is not None:
            self._temp.discard()

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class ArtifactReader(io.RawIOBase):
    """A read-only binary stream of one artifact, checked against its digest at the end."""

    def __init__(self, digest: Digest, chunks: Iterator[bytes], fh: IO[bytes] | None, verify: bool) -> None:
        super().__init__()
        self.digest = digest
        self._chunks = chunks
        self._fh = fh
        self._hasher: Hasher | None = new_hasher(digest.algorithm) if verify else None
        self._pending = memoryview(b"")
        self._size = 0
        self._eof = False

    def readable(self) -> bool:
        """Always True."""
        return True

    def _next_chunk(self) -> bytes:
        if self._eof:
            return b""
        try:
            chunk = next(self._chunks)
        except StopIteration:
            chunk = b""
        except IntegrityError:
            raise
        except Exception as exc:  # a decompression error means the stored bytes are damaged
            import zstandard

            if isinstance(exc, zstandard.ZstdError):
                raise IntegrityError(
                    f"artifact {self.digest} is corrupt: {exc}",
                    code="artifact.corrupt",
                    context={"digest": str(self.digest)},
                ) from exc
            if isinstance(exc, OSError):
                raise _fsio.os_error(exc, str(self.digest), "read") from exc
            raise
        if not chunk:
            self._eof = True
            self._finish_check()
            return b""
        self._size += len(chunk)
        if self._hasher is not None:
            self._hasher.update(chunk)
        return chunk

    def _finish_check(self) -> None:
        if self._hasher is None:
            return
        actual = Digest(self.digest.algorithm, self._hasher.hexdigest(), self._size)
        if actual != self.digest:
            raise corrupt_error(self.digest, str(actual))

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes; 0 at the end."""
        view = memoryview(buffer).cast("B")
        if not self._pending:
            self._pending = memoryview(self._next_chunk())
            if not self._pending:
                return 0
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the content in chunks (of the store's chunk size)."""
        if self._pending:
            pending, self._pending = self._pending, memoryview(b"")
            yield bytes(pending)
        while True:
            chunk = self._next_chunk()
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        """Release the underlying file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()

    def __enter__(self) -> ArtifactReader:
        return self
