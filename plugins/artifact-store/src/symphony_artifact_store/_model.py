"""The store's value types: configuration, artifact metadata, refs, lineage, reports."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import attrs

from symphony.commons.errors import ConfigError
from symphony_artifact_store._digest import ALGORITHMS, Digest
from symphony_artifact_store._remote import is_url

__all__ = [
    "TIERS",
    "ArtifactInfo",
    "LineageEdge",
    "Producer",
    "RefEntry",
    "ScanRow",
    "StoreConfig",
    "StoreStats",
    "VerifyReport",
]

Tier = Literal["hot", "warm", "cold"]
TIERS: tuple[str, ...] = ("hot", "warm", "cold")
"""Storage tiers: ``hot`` (local, as written), ``warm`` (local, zstd), ``cold`` (the cold root, zstd)."""

VERIFY_MODES = ("always", "sample", "never")

_LIMITS: dict[str, tuple[float, float]] = {
    "inline_max": (0, 1 << 20),
    "chunk_size": (4096, 64 << 20),
    "verify_sample_rate": (0.0, 1.0),
    "compression_level": (1, 22),
    "atime_resolution": (0.0, 366 * 86400.0),
    "busy_timeout": (0.1, 600.0),
}


def _bad(key: str, value: object, rule: str) -> ConfigError:
    return ConfigError(
        f"artifact_store.{key} = {value!r}: {rule}",
        code="artifact.config.invalid",
        context={"section": "artifact_store", "key": key, "value": repr(value)[:200], "rule": rule},
    )


def _number(key: str, value: object, integer: bool) -> Any:
    low, high = _LIMITS[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok_type or isinstance(value, bool) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise _bad(key, value, "must be an integer" if integer else "must be a number")
    if not low <= value <= high:  # type: ignore[operator]
        raise _bad(key, value, f"must be between {low:g} and {high:g}")
    return value


@attrs.frozen
class StoreConfig:
    """Settings of one store (the ``[artifact_store]`` config section).

    ``root`` None means ``<platform data dir>/artifacts``; ``cold_root`` is the cold tier's
    directory, or a ``str`` fsspec URL (``s3://bucket/artifacts``), or None for no cold tier.
    ``compress_media_types`` holds glob patterns (``text/*``): artifacts of a matching media type
    are stored zstd-compressed unless a put says otherwise. With ``durable_index`` (the default)
    every put that returned survives a power loss with its metadata: a new object's row commits
    without a WAL fsync because the object carries its put record (rebuilt from it after a
    machine crash), and every other change commits synced. ``durable_index`` False commits every
    change without syncing the WAL (SQLite ``synchronous=NORMAL``) and attaches no records:
    objects stay durable and a process crash loses nothing, but a power loss may lose the newest
    changes; ``verify(repair=True)`` adopts lost objects back without their metadata.
    """

    root: Path | None = None
    algorithm: str = "blake3"
    inline_max: int = 4096
    verify_on_read: str = "always"
    verify_sample_rate: float = 0.1
    chunk_size: int = 1 << 20
    compress_media_types: tuple[str, ...] = ()
    compression_level: int = 3
    cold_root: Path | str | None = None
    atime_resolution: float = 3600.0
    busy_timeout: float = 30.0
    durable_index: bool = True

    def __attrs_post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise _bad("algorithm", self.algorithm, f"must be one of {', '.join(ALGORITHMS)}")
        if self.verify_on_read not in VERIFY_MODES:
            raise _bad("verify_on_read", self.verify_on_read, f"must be one of {', '.join(VERIFY_MODES)}")
        for key in ("inline_max", "chunk_size", "compression_level"):
            _number(key, getattr(self, key), True)
        for key in ("verify_sample_rate", "atime_resolution", "busy_timeout"):
            _number(key, getattr(self, key), False)
        if not isinstance(self.durable_index, bool):
            raise _bad("durable_index", self.durable_index, "must be true or false")
        for pattern in self.compress_media_types:
            if not isinstance(pattern, str) or not pattern:
                raise _bad("compression.media_types", pattern, "must be non-empty strings")

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> StoreConfig:
        """Build from a config section (``root``, ``algorithm``, ``compression = {...}``, ...).

        Raises:
            ConfigError: ``artifact.config.invalid`` naming the key and the rule.
        """
        known = {
            "root", "algorithm", "inline_max", "verify_on_read", "verify_sample_rate",
            "chunk_size", "compression", "cold_root", "atime_resolution", "busy_timeout", "durable_index",
        }  # fmt: skip
        for key in section:
            if key not in known:
                raise _bad(str(key), section[key], f"unknown key (known: {', '.join(sorted(known))})")
        compression = section.get("compression") or {}
        if not isinstance(compression, Mapping):
            raise _bad("compression", compression, "must be a table")
        media_types = compression.get("media_types", ())
        if isinstance(media_types, str) or not isinstance(media_types, (list, tuple)):
            raise _bad("compression.media_types", media_types, "must be a list of patterns")
        root = section.get("root") or None
        cold = section.get("cold_root") or None
        for key, value in (("root", root), ("cold_root", cold)):
            if value is not None and not isinstance(value, str):
                raise _bad(key, value, "must be a path string")
        return cls(
            root=Path(root).expanduser() if root else None,
            algorithm=section.get("algorithm", "blake3"),
            inline_max=section.get("inline_max", 4096),
            verify_on_read=section.get("verify_on_read", "always"),
            verify_sample_rate=section.get("verify_sample_rate", 0.1),
            chunk_size=section.get("chunk_size", 1 << 20),
            compress_media_types=tuple(media_types),
            compression_level=compression.get("level", 3),
            cold_root=(cold if is_url(cold) else Path(cold).expanduser()) if cold else None,
            atime_resolution=section.get("atime_resolution", 3600.0),
            busy_timeout=section.get("busy_timeout", 30.0),
            durable_index=section.get("durable_index", True),
        )

    @classmethod
    def from_kernel(cls, kernel: Any) -> StoreConfig:
        """The settings in a kernel's ``[artifact_store]`` section (defaults when it has none)."""
        from symphony.commons.errors import NotFoundError

        try:
            section = dict(kernel.config.section("artifact_store"))
        except (NotFoundError, AttributeError):
            section = {}
        return cls.from_mapping(section)

    def compress_by_default(self, media_type: str) -> bool:
        """Whether an artifact of ``media_type`` is compressed when the put does not say."""
        return any(fnmatch.fnmatchcase(media_type, p.lower()) for p in self.compress_media_types)


@attrs.frozen
class Producer:
    """What produced an artifact: a workflow, a run of it and a node in it (any may be None)."""

    workflow: str | None = None
    run: str | None = None
    node: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """``{"workflow": ..., "run": ..., "node": ...}``."""
        return {"workflow": self.workflow, "run": self.run, "node": self.node}


@attrs.frozen
class ArtifactInfo:
    """Everything the index knows about one artifact.

    Times are POSIX seconds. ``last_put`` is refreshed by every put of the same content (inside
    the put's own transaction): a collector that spares everything put within a grace window
    therefore never removes what a concurrent writer just stored. ``accessed`` is refreshed by
    reads at most once per ``atime_resolution`` seconds (like ``relatime``). ``state`` is
    ``present`` or ``trashed``; ``stored_size`` is the bytes on disk (compressed or not).
    """

    digest: Digest
    size: int
    stored_size: int
    media_type: str
    tier: str
    encoding: str
    inline: bool
    state: str
    created: float
    last_put: float
    accessed: float
    pinned: bool
    put_count: int
    tags: tuple[str, ...] = ()
    producer: Producer | None = None
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    trashed_at: float | None = None
    parents: tuple[Digest, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the digest as its string)."""
        return {
            "digest": str(self.digest),
            "size": self.size,
            "stored_size": self.stored_size,
            "media_type": self.media_type,
            "tier": self.tier,
            "encoding": self.encoding,
            "inline": self.inline,
            "state": self.state,
            "created": self.created,
            "last_put": self.last_put,
            "accessed": self.accessed,
            "pinned": self.pinned,
            "put_count": self.put_count,
            "tags": list(self.tags),
            "producer": None if self.producer is None else self.producer.to_dict(),
            "meta": dict(self.meta),
            "trashed_at": self.trashed_at,
            "parents": [str(p) for p in self.parents],
        }


class ScanRow(NamedTuple):
    """One object as :meth:`ArtifactStore.scan` reports it: the index columns a collector needs.

    ``digest`` is the canonical digest string; times are POSIX seconds; ``inline`` and
    ``pinned`` are 1 or 0 (as the index stores them); ``state`` is ``present`` or ``trashed``.
    """

    digest: str
    size: int
    stored_size: int
    tier: str
    inline: int
    state: str
    created: float
    last_put: float
    accessed: float
    pinned: int
    trashed_at: float | None


@attrs.frozen
class RefEntry:
    """One version of a named ref: ``name`` pointed to ``digest`` from ``time`` on."""

    name: str
    digest: Digest
    version: int
    time: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "digest": str(self.digest),
            "version": self.version,
            "time": self.time,
            "message": self.message,
        }


@attrs.frozen
class LineageEdge:
    """``child`` was made from ``parent``; ``depth`` counts steps from the artifact asked about (1 = direct)."""

    child: Digest
    parent: Digest
    depth: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"child": str(self.child), "parent": str(self.parent), "depth": self.depth}


@attrs.frozen
class VerifyReport:
    """Result of :meth:`ArtifactStore.verify`: what was checked and every problem found.

    ``missing``: indexed objects whose file is gone; ``corrupt``: bytes that do not hash to
    their digest; ``orphaned``: object files no index row claims; ``repaired``: what was
    cleaned up (dead writers' temporary files always, orphans with ``repair``).
    """

    checked: int
    missing: tuple[Digest, ...] = ()
    corrupt: tuple[Digest, ...] = ()
    orphaned: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is missing, corrupt or orphaned."""
        return not (self.missing or self.corrupt or self.orphaned)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "missing": [str(d) for d in self.missing],
            "corrupt": [str(d) for d in self.corrupt],
            "orphaned": list(self.orphaned),
            "repaired": list(self.repaired),
        }


@attrs.frozen
class StoreStats:
    """Counts over the index: objects, bytes, compression and deduplication."""

    objects: int
    bytes: int
    stored_bytes: int
    inline: int
    by_tier: Mapping[str, int]
    trashed: int
    trashed_bytes: int
    puts: int
    dedup_saved_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self)
