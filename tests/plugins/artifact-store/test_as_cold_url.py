"""A cold tier at an fsspec URL, on real fsspec filesystems: ``memory://`` (fsspec's in-process
filesystem) and ``file://`` (the local disk through fsspec). Moves, transparent reads, verify,
trash and purge, corruption and bad URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from symphony.commons.errors import ConfigError, IntegrityError
from symphony_artifact_store import ArtifactStore, Digest, StoreConfig

BIG = os.urandom(150_000)
TEXT = b"a line of text that compresses well\n" * 4000


@pytest.fixture(params=["memory", "file"])
def cold_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A cold tier URL of each kind, unique to the test (the memory filesystem is process-wide)."""
    if request.param == "memory":
        url = f"memory://cold-{os.getpid()}-{tmp_path.name}"
        yield url
        fs, path = fsspec.core.url_to_fs(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    else:
        yield f"file://{tmp_path / 'cold'}"


def remote_files(url: str) -> list[str]:
    fs, path = fsspec.core.url_to_fs(url)
    return sorted(str(p) for p in fs.find(path))


def one_cold_object(store: ArtifactStore, url: str) -> tuple[Digest, Any, str, bytes]:
    """Put BIG and move it to the cold tier: its digest, the fsspec filesystem, its path and bytes there."""
    digest = store.move(store.put(BIG), "cold").digest
    (path,) = remote_files(url)
    fs, _ = fsspec.core.url_to_fs(url)
    return digest, fs, path, fs.cat_file(path)


def test_cold_tier_at_a_url_reads_transparently(tmp_path: Path, cold_url: str) -> None:
    with ArtifactStore(tmp_path / "store", cold_root=cold_url) as store:
        assert store.cold_root == cold_url
        big, text = store.put(BIG, tags=["b"]), store.put(TEXT, media_type="text/plain")
        for digest in (big, text):
            info = store.move(digest, "cold")
            assert (info.tier, info.encoding) == ("cold", "zstd")
        assert not [p for p in (store.root / "objects").rglob("*") if p.is_file()]  # gone locally
        files = remote_files(cold_url)
        assert len(files) == 2 and all(f.endswith(".zst") for f in files)
        assert store.get(big) == BIG and store.get(text) == TEXT
        with store.open(text) as reader:
            assert reader.read(10) == TEXT[:10] and reader.read() == TEXT[10:]
        assert store.get_to(big, tmp_path / "out.bin").read_bytes() == BIG
        assert [i.digest for i in store.list(tier="cold")] == [big, text]
        assert store.verify().ok and store.stats().by_tier["cold"] == 2
        assert store.put(BIG) == big and store.info(big).tier == "cold"  # stored once, where it is
        store.move(big, "hot")
        assert store.info(big).tier == "hot" and store.get(big) == BIG
        assert len(remote_files(cold_url)) == 1
    with ArtifactStore(tmp_path / "store", cold_root=cold_url) as store:  # reopened: still there
        assert store.get(text) == TEXT


def test_trash_and_purge_remove_the_remote_copy(tmp_path: Path, cold_url: str) -> None:
    with ArtifactStore(tmp_path / "store", cold_root=cold_url) as store:
        digest = store.put(BIG)
        store.move(digest, "cold")
        assert store.trash(digest) and store.restore(digest) and store.get(digest) == BIG
        assert store.delete(digest)
        assert remote_files(cold_url) == [] and store.find_missing([digest]) == [digest]


def test_verify_finds_corrupt_and_orphaned_remote_objects(tmp_path: Path, cold_url: str) -> None:
    with ArtifactStore(tmp_path / "store", cold_root=cold_url) as store:
        digest, fs, path, original = one_cold_object(store, cold_url)
        fs.pipe_file(path, original[:-8] + bytes(8))  # same size, damaged bytes
        with pytest.raises(IntegrityError) as info:
            store.get(digest)
        assert str(digest) in str(info.value)
        assert store.verify().corrupt == (digest,)
        fs.pipe_file(path, original)
        junk = path.rsplit("/", 1)[0] + "/not-an-object"
        fs.pipe_file(junk, b"junk")
        report = store.verify()
        assert not report.ok and report.orphaned == (junk,)
        assert store.verify(repair=True).repaired == (f"removed orphan {junk}",)
        assert store.verify().ok and store.get(digest) == BIG


def test_an_orphan_at_the_url_is_adopted_into_the_cold_tier(tmp_path: Path, cold_url: str) -> None:
    with ArtifactStore(tmp_path / "store", cold_root=cold_url) as store:
        digest, fs, path, data = one_cold_object(store, cold_url)
        store.delete(digest)
        fs.pipe_file(path, data)  # the remote copy comes back (restored from a backup, say)
        assert store.verify().orphaned == (path,)
        assert any(line.startswith("adopted") for line in store.verify(repair=True).repaired)
        assert store.info(digest).tier == "cold" and store.get(digest) == BIG


def test_a_bad_url_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ArtifactStore(tmp_path / "store", cold_root="nosuch-protocol://bucket/x")
    assert info.value.code == "artifact.config.cold_url"
    assert "nosuch-protocol://bucket/x" in str(info.value)


def test_config_keeps_a_url_and_expands_a_path() -> None:
    assert StoreConfig.from_mapping({"cold_root": "memory://archive"}).cold_root == "memory://archive"
    assert StoreConfig.from_mapping({"cold_root": "~/archive"}).cold_root == Path("~/archive").expanduser()
