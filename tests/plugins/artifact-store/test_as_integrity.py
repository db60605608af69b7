"""A corrupt object is never returned as good data: get, stream and get_to fail naming the
digest, and ``verify`` reports it; missing files too. Verification modes always/sample/never."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from symphony.commons.errors import IntegrityError
from symphony_artifact_store import ArtifactStore, Digest

BIG = os.urandom(200_000)


def object_path(store: ArtifactStore, digest: Digest) -> Path:
    (path,) = [p for p in (store.root / "objects").rglob(digest.hex[2:] + "*") if p.is_file()]
    return path


def flip_byte(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))


def test_corrupt_object_raises_naming_the_digest(store: ArtifactStore, tmp_path: Path) -> None:
    digest = store.put(BIG)
    flip_byte(object_path(store, digest))
    with pytest.raises(IntegrityError) as info:
        store.get(digest)
    assert info.value.code == "artifact.corrupt"
    assert info.value.context["digest"] == str(digest) and str(digest) in str(info.value)
    with pytest.raises(IntegrityError), store.open(digest) as reader:
        reader.read()
    target = tmp_path / "out.bin"
    with pytest.raises(IntegrityError):
        store.get_to(digest, target)
    assert not target.exists() and list(tmp_path.glob("*.tmp")) == []
    report = store.verify()
    assert report.corrupt == (digest,) and not report.ok
    assert store.get(digest, verify=False) != BIG  # only when asked explicitly
    assert store.put(BIG) == digest  # the same content again does not repair a same-size file...
    os.unlink(object_path(store, digest))
    assert store.verify().missing == (digest,)
    assert store.put(BIG) == digest  # ...but a missing one is written again
    assert store.get(digest) == BIG and store.verify().ok


def test_corrupt_compressed_and_inline_objects(store: ArtifactStore) -> None:
    compressed = store.put(b"abc" * 100_000, compress=True)
    flip_byte(object_path(store, compressed), 20)
    with pytest.raises(IntegrityError) as info:
        store.get(compressed)
    assert info.value.context["digest"] == str(compressed)
    small = store.put(b"inline content")
    with sqlite3.connect(store.root / "index.sqlite") as db:
        db.execute(
            "UPDATE inline_data SET data = ? WHERE id = (SELECT id FROM objects WHERE digest = ?)",
            (b"INLINE content", str(small)),
        )
    with pytest.raises(IntegrityError):
        store.get(small)
    report = store.verify()
    assert set(report.corrupt) == {compressed, small}


def test_truncated_object_is_reported_without_hashing(store: ArtifactStore) -> None:
    digest = store.put(BIG)
    path = object_path(store, digest)
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.truncate(10)
    assert store.verify(hash=False).corrupt == (digest,)
    with pytest.raises(IntegrityError):
        store.get(digest)


def test_missing_object_file_is_an_integrity_error(store: ArtifactStore) -> None:
    digest = store.put(BIG)
    os.unlink(object_path(store, digest))
    with pytest.raises(IntegrityError) as info:
        store.get(digest)
    assert info.value.code == "artifact.object_missing" and info.value.context["digest"] == str(digest)


def test_verify_modes(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "never", verify_on_read="never") as store:
        digest = store.put(BIG)
        flip_byte(object_path(store, digest))
        assert store.get(digest) != BIG  # never: the caller chose speed
        with pytest.raises(IntegrityError):
            store.get(digest, verify=True)
    with ArtifactStore(tmp_path / "sample", verify_on_read="sample", verify_sample_rate=1.0) as store:
        digest = store.put(BIG)
        flip_byte(object_path(store, digest))
        with pytest.raises(IntegrityError):
            store.get(digest)
    with ArtifactStore(tmp_path / "sample0", verify_on_read="sample", verify_sample_rate=0.0) as store:
        digest = store.put(BIG)
        flip_byte(object_path(store, digest))
        assert store.get(digest) != BIG
