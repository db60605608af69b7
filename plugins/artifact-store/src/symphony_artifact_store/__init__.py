"""Symphony's artifact store: content-addressed, durable storage of what workflows produce.

    from symphony_artifact_store import ArtifactStore

    with ArtifactStore("/tmp/store") as store:
        digest = store.put(b"hello", media_type="text/plain", tags=["greeting"])
        assert store.get(digest) == b"hello"
        store.set_ref("greetings/latest", digest)

Artifacts are addressed by :class:`Digest` (``blake3:<hex>:<size>``); small ones live inline in
the SQLite index, larger ones in fan-out folders, optionally zstd-compressed. The store keeps
metadata, lineage and named refs with history, and offers an async API
(:class:`AsyncArtifactStore`, on anyio). The package is also a Symphony plugin: the service
``artifact-store`` and the command ``symphony artifacts``.
"""

from __future__ import annotations

from symphony.commons.errors import IntegrityError
from symphony_artifact_store._async import AsyncArtifactReader, AsyncArtifactStore
from symphony_artifact_store._digest import ALGORITHMS, Digest, check_ref_name, hash_bytes
from symphony_artifact_store._model import (
    TIERS,
    ArtifactInfo,
    LineageEdge,
    Producer,
    RefEntry,
    StoreConfig,
    StoreStats,
    VerifyReport,
)
from symphony_artifact_store._store import (
    ArtifactFilters,
    ArtifactReader,
    ArtifactStore,
    ArtifactWriter,
    PutOptions,
    Source,
)

__all__ = [
    "ALGORITHMS",
    "TIERS",
    "ArtifactFilters",
    "ArtifactInfo",
    "ArtifactReader",
    "ArtifactStore",
    "ArtifactWriter",
    "AsyncArtifactReader",
    "AsyncArtifactStore",
    "Digest",
    "IntegrityError",
    "LineageEdge",
    "Producer",
    "PutOptions",
    "RefEntry",
    "Source",
    "StoreConfig",
    "StoreStats",
    "VerifyReport",
    "check_ref_name",
    "hash_bytes",
]
