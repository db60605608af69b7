"""The synchronous artifact store: :class:`ArtifactStore` puts together the core (puts, reads,
queries, metadata, lineage), refs and the lifecycle operations (trash, tiers, verify)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony_artifact_store._core import ArtifactFilters, LinkMode, PutOptions, Source
from symphony_artifact_store._lifecycle import LifecycleMixin
from symphony_artifact_store._refs import RefsMixin
from symphony_artifact_store._stream import ArtifactReader, ArtifactWriter

if TYPE_CHECKING:
    from symphony_artifact_store._async import AsyncArtifactStore

__all__ = [
    "ArtifactFilters",
    "ArtifactReader",
    "ArtifactStore",
    "ArtifactWriter",
    "LinkMode",
    "PutOptions",
    "Source",
]


class ArtifactStore(RefsMixin, LifecycleMixin):
    """A content-addressed store of artifacts under one root directory (synchronous API).

    ``ArtifactStore(root)`` opens (creating if needed) the store at ``root``; settings come from
    ``config`` (a :class:`StoreConfig`) and keyword overrides of its fields. Opening removes the
    temporary files of writers that died, adopting any object they had already put in place.
    Use it as a context manager or call :meth:`close`. One store object may be shared by
    threads; several processes may open the same root at once.

    >>> with ArtifactStore(tmp_path) as store:                     # doctest: +SKIP
    ...     d = store.put(b"hello", media_type="text/plain", tags=["greeting"])
    ...     store.get(d)
    b'hello'
    """

    _aio: AsyncArtifactStore | None = None

    @property
    def aio(self) -> AsyncArtifactStore:
        """The async API over this store (blocking work runs in worker threads)."""
        if self._aio is None:
            from symphony_artifact_store._async import AsyncArtifactStore

            self._aio = AsyncArtifactStore(self)
        return self._aio
