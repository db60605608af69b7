"""The async API: the same store, with blocking file and index work in anyio worker threads."""

from __future__ import annotations

import builtins
import functools
import os
from collections.abc import AsyncIterable, Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar, Unpack

import anyio
import anyio.to_thread

from symphony.commons.errors import ValidationError
from symphony_artifact_store._digest import Digest
from symphony_artifact_store._model import (
    ArtifactInfo,
    LineageEdge,
    RefEntry,
    StoreStats,
    VerifyReport,
)
from symphony_artifact_store._store import (
    ArtifactFilters,
    ArtifactReader,
    ArtifactStore,
    ArtifactWriter,
    LinkMode,
    PutOptions,
    Source,
)

__all__ = ["AsyncArtifactReader", "AsyncArtifactStore"]

T = TypeVar("T")


class AsyncArtifactStore:
    """Async facade over an :class:`ArtifactStore` (anyio: works on asyncio and trio).

    Every call runs the store's blocking work in a worker thread, at most ``max_threads`` at a
    time; a cancelled call finishes its current step (a put is never left half committed).
    ``put`` also takes an async iterable of byte chunks.

    >>> async with AsyncArtifactStore.from_root(tmp_path) as store:     # doctest: +SKIP
    ...     digest = await store.put(b"hello")
    ...     await store.get(digest)
    b'hello'
    """

    def __init__(self, store: ArtifactStore, *, max_threads: int = 8) -> None:
        self.sync = store
        """The synchronous store underneath."""
        self._limiter = anyio.CapacityLimiter(max_threads)

    @classmethod
    def from_root(cls, root: str | os.PathLike[str] | None = None, **settings: Any) -> AsyncArtifactStore:
        """Open (creating if needed) the store at ``root`` (see :class:`ArtifactStore`)."""
        return cls(ArtifactStore(root, **settings))

    async def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    async def __aenter__(self) -> AsyncArtifactStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store."""
        with anyio.CancelScope(shield=True):
            await self._run(self.sync.close)

    @property
    def root(self) -> Path:
        """The store's root directory."""
        return self.sync.root

    # -- writing --------------------------------------------------------------------------------

    async def put(
        self,
        source: Source | AsyncIterable[bytes],
        *,
        link: LinkMode = "auto",
        ref: str | None = None,
        **options: Unpack[PutOptions],
    ) -> Digest:
        """Store ``source`` (as :meth:`ArtifactStore.put`, plus async iterables of bytes)."""
        if not isinstance(source, AsyncIterable):
            return await self._run(self.sync.put, source, link=link, ref=ref, **options)
        writer = await self._run(self.sync.writer, **options)
        digest = await self._feed(writer, source)
        if ref is not None:
            await self._run(self.sync.set_ref, ref, digest)
        return digest

    async def _feed(self, writer: ArtifactWriter, source: AsyncIterable[bytes]) -> Digest:
        limit = self.sync.config.chunk_size
        batch: list[bytes] = []
        pending = 0
        try:
            async for chunk in source:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise ValidationError(
                        f"an async source must yield bytes, not {type(chunk).__name__}",
                        code="artifact.source.not_binary",
                        context={"type": type(chunk).__name__},
                    )
                batch.append(bytes(chunk))
                pending += len(chunk)
                if pending >= limit:
                    await self._run(_write_all, writer, batch)
                    batch, pending = [], 0
            if batch:
                await self._run(_write_all, writer, batch)
            return await self._run(writer.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._run(writer.abort)
            raise

    # -- reading --------------------------------------------------------------------------------

    async def get(self, name: Digest | str, *, verify: bool | None = None) -> bytes:
        """The artifact's bytes (see :meth:`ArtifactStore.get`)."""
        return await self._run(self.sync.get, name, verify=verify)

    async def get_to(
        self, name: Digest | str, path: str | os.PathLike[str], *, verify: bool | None = None
    ) -> Path:
        """Write the artifact to ``path`` atomically."""
        return await self._run(self.sync.get_to, name, path, verify=verify)

    def open(self, name: Digest | str, *, verify: bool | None = None) -> AsyncArtifactReader:
        """A stream of the artifact: ``async with store.open(d) as r: async for chunk in r: ...``."""
        return AsyncArtifactReader(self, name, verify)

    async def resolve(self, name: Digest | str) -> Digest:
        """A digest from a digest, a digest prefix or a ref name."""
        return await self._run(self.sync.resolve, name)

    async def exists(self, name: Digest | str) -> bool:
        """True if the artifact is stored (and not trashed)."""
        return await self._run(self.sync.exists, name)

    async def find_missing(self, digests: Iterable[Digest | str]) -> builtins.list[Digest | str]:
        """The given digests that are not stored, in order."""
        return await self._run(self.sync.find_missing, list(digests))

    async def info(self, name: Digest | str) -> ArtifactInfo:
        """Everything the index knows about one artifact."""
        return await self._run(self.sync.info, name)

    async def list(self, **filters: Unpack[ArtifactFilters]) -> builtins.list[ArtifactInfo]:
        """Artifacts matching the filters of :meth:`ArtifactStore.list`."""
        return await self._run(self.sync.list, **filters)

    # -- metadata, lineage, refs ----------------------------------------------------------------

    async def tag(self, name: Digest | str, *tags: str) -> None:
        """Add tags."""
        await self._run(self.sync.tag, name, *tags)

    async def untag(self, name: Digest | str, *tags: str) -> None:
        """Remove tags."""
        await self._run(self.sync.untag, name, *tags)

    async def pin(self, name: Digest | str, pinned: bool = True) -> None:
        """Pin or unpin."""
        await self._run(self.sync.pin, name, pinned)

    async def parents(self, name: Digest | str) -> builtins.list[Digest]:
        """What an artifact was made from."""
        return await self._run(self.sync.parents, name)

    async def children(self, name: Digest | str) -> builtins.list[Digest]:
        """What was made from an artifact."""
        return await self._run(self.sync.children, name)

    async def lineage(
        self, name: Digest | str, *, direction: Literal["up", "down"] = "up", max_depth: int | None = None
    ) -> builtins.list[LineageEdge]:
        """Walk lineage up or down (see :meth:`ArtifactStore.lineage`)."""
        return await self._run(self.sync.lineage, name, direction=direction, max_depth=max_depth)

    async def set_ref(
        self,
        name: str,
        target: Digest | str,
        *,
        if_match: Digest | str | None = None,
        create_only: bool = False,
        message: str = "",
    ) -> RefEntry:
        """Point a ref at an artifact, with compare-and-set (see :meth:`ArtifactStore.set_ref`)."""
        return await self._run(
            self.sync.set_ref, name, target, if_match=if_match, create_only=create_only, message=message
        )

    async def get_ref(self, name: str) -> RefEntry:
        """A ref's current value."""
        return await self._run(self.sync.get_ref, name)

    async def refs(self, prefix: str | None = None) -> builtins.list[RefEntry]:
        """Every current ref."""
        return await self._run(self.sync.refs, prefix)

    async def ref_history(self, name: str | None = None) -> builtins.list[RefEntry]:
        """Every version of a ref (or of all refs)."""
        return await self._run(self.sync.ref_history, name)

    async def delete_ref(self, name: str, *, if_match: Digest | str | None = None) -> None:
        """Remove a ref's current value."""
        await self._run(self.sync.delete_ref, name, if_match=if_match)

    # -- lifecycle ------------------------------------------------------------------------------

    async def trash(self, name: Digest | str, *, grace: float = 0.0, force: bool = False) -> bool:
        """Move an artifact to the trash (see :meth:`ArtifactStore.trash_many`)."""
        return await self._run(self.sync.trash, name, grace=grace, force=force)

    async def trash_many(
        self, digests: Iterable[Digest | str], *, grace: float = 0.0, force: bool = False
    ) -> builtins.list[Digest]:
        """Trash many artifacts at once."""
        return await self._run(self.sync.trash_many, list(digests), grace=grace, force=force)

    async def restore(self, name: Digest | str) -> bool:
        """Bring an artifact back from the trash."""
        return await self._run(self.sync.restore, name)

    async def empty_trash(self, *, older_than: float = 0.0) -> builtins.list[Digest]:
        """Delete trashed artifacts for good."""
        return await self._run(self.sync.empty_trash, older_than=older_than)

    async def delete(self, name: Digest | str, *, grace: float = 0.0, force: bool = False) -> bool:
        """Delete an artifact for good."""
        return await self._run(self.sync.delete, name, grace=grace, force=force)

    async def move(self, name: Digest | str, tier: str, *, compress: bool | None = None) -> ArtifactInfo:
        """Move an artifact between tiers."""
        return await self._run(self.sync.move, name, tier, compress=compress)

    async def verify(self, *, hash: bool = True, repair: bool = False) -> VerifyReport:
        """Check the whole store."""
        return await self._run(self.sync.verify, hash=hash, repair=repair)

    async def stats(self) -> StoreStats:
        """Counts over the index."""
        return await self._run(self.sync.stats)


def _write_all(writer: ArtifactWriter, chunks: list[bytes]) -> None:
    for chunk in chunks:
        writer.write(chunk)


class AsyncArtifactReader:
    """An async stream of one artifact (opened on ``async with``; checked at the end)."""

    def __init__(self, store: AsyncArtifactStore, name: Digest | str, verify: bool | None) -> None:
        self._store = store
        self._name = name
        self._verify = verify
        self._reader: ArtifactReader | None = None

    async def __aenter__(self) -> AsyncArtifactReader:
        self._reader = await self._store._run(self._store.sync.open, self._name, verify=self._verify)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def digest(self) -> Digest:
        """The artifact's digest."""
        return self._opened().digest

    def _opened(self) -> ArtifactReader:
        if self._reader is None:
            raise ValidationError("open the reader with `async with` first", code="artifact.reader.not_open")
        return self._reader

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (everything left with -1); ``b""`` at the end."""
        reader = self._opened()
        if size < 0:
            return await self._store._run(reader.read)
        return await self._store._run(reader.read, size)

    def __aiter__(self) -> AsyncArtifactReader:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read(self._store.sync.config.chunk_size)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Release the file."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with anyio.CancelScope(shield=True):
                await self._store._run(reader.close)
