"""The store's API on a real SQLite index: puts and gets of every source, dedup, compression,
metadata queries, lineage, refs with history and compare-and-set, trash, tiers, find_missing."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from symphony.commons.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from symphony_artifact_store import ArtifactStore, Digest, Producer, hash_bytes

BIG = os.urandom(300_000)


def object_files(root: Path) -> list[Path]:
    return [p for p in (root / "objects").rglob("*") if p.is_file()]


def test_small_content_is_inline_and_big_content_is_a_file(store: ArtifactStore) -> None:
    small = store.put(b"x" * 4096)
    big = store.put(b"y" * 4097)
    assert store.info(small).inline and not store.info(big).inline
    assert store.get(small) == b"x" * 4096 and store.get(big) == b"y" * 4097
    files = object_files(store.root)
    assert len(files) == 1
    assert files[0].relative_to(store.root / "objects").parts[:2] == ("blake3", big.hex[:2])
    assert files[0].stat().st_mode & 0o777 == 0o444


def test_digest_names_its_algorithm_and_size(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "b3") as b3, ArtifactStore(tmp_path / "sha", algorithm="sha256") as sha:
        d1, d2 = b3.put(b"abc"), sha.put(b"abc")
    assert str(d1).startswith("blake3:") and str(d1).endswith(":3")
    assert str(d2) == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad:3"
    assert Digest.parse(str(d2)) == d2 == hash_bytes("sha256", b"abc")


def test_identical_content_is_stored_once(store: ArtifactStore) -> None:
    digests = {store.put(BIG, tags=[f"t{i}"]) for i in range(3)}
    assert len(digests) == 1 and len(object_files(store.root)) == 1
    info = store.info(next(iter(digests)))
    assert info.put_count == 3 and info.tags == ("t0", "t1", "t2")
    assert store.stats().dedup_saved_bytes == 2 * len(BIG)


def test_every_source_kind_gives_the_same_digest(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "src.bin"
    path.write_bytes(BIG)
    expected = hash_bytes("blake3", BIG)
    chunks = [BIG[i : i + 65536] for i in range(0, len(BIG), 65536)]
    assert store.put(BIG) == expected
    assert store.put(str(path)) == expected
    assert store.put(path, link="copy") == expected
    assert store.put(io.BytesIO(BIG)) == expected
    assert store.put(iter(chunks)) == expected
    with store.writer() as writer:
        for chunk in chunks:
            writer.write(chunk)
    assert writer.digest == expected
    assert store.verify().ok


def test_hardlink_import_shares_the_inode(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "src.bin"
    path.write_bytes(BIG)
    digest = store.put(path, link="hardlink")
    (stored,) = object_files(store.root)
    assert stored.stat().st_ino == path.stat().st_ino
    assert store.get(digest) == BIG and store.verify().ok


def test_reflink_falls_back_to_a_copy(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "src.bin"
    path.write_bytes(BIG)
    digest = store.put(path, link="reflink")
    (stored,) = object_files(store.root)
    assert stored.stat().st_ino != path.stat().st_ino
    path.write_bytes(b"changed")  # the user's file changing does not touch the store
    assert store.get(digest) == BIG


def test_reads_as_bytes_stream_and_file(store: ArtifactStore, tmp_path: Path) -> None:
    digest = store.put(BIG)
    with store.open(digest) as reader:
        assert reader.read(10) == BIG[:10]
        assert reader.read() == BIG[10:]
    with store.open(digest) as reader:
        assert b"".join(reader) == BIG
    target = store.get_to(digest, tmp_path / "out" / "copy.bin")
    assert target.read_bytes() == BIG


def test_compression_by_media_type_and_per_artifact_is_transparent(tmp_path: Path) -> None:
    text = b"all work and no play " * 20000
    with ArtifactStore(tmp_path / "s", compress_media_types=("text/*",)) as store:
        by_type = store.put(text, media_type="text/plain")
        info = store.info(by_type)
        assert info.encoding == "zstd" and info.stored_size < len(text) // 10
        forced_off = store.put(text + b"!", media_type="text/plain", compress=False)
        forced_on = store.put(text + b"?", compress=True)
        assert store.info(forced_off).encoding == "identity"
        assert store.info(forced_on).encoding == "zstd"
        for digest, data in ((by_type, text), (forced_off, text + b"!"), (forced_on, text + b"?")):
            assert store.get(digest) == data
            with store.open(digest) as reader:
                assert b"".join(reader) == data
        streamed = store.put(iter([text[:5000], text[5000:]]), media_type="text/csv")
        assert streamed == by_type and store.verify().ok


def test_metadata_queries(store: ArtifactStore) -> None:
    a = store.put(
        b"a", media_type="text/plain", tags=["x", "y"], producer={"workflow": "wf", "run": "r1", "node": "n"}
    )
    t = time.time()
    b = store.put(b"b", media_type="text/csv", tags=["x"], producer=Producer("wf", "r2"), meta={"rows": 1})
    c = store.put(b"c", media_type="application/json")
    assert [i.digest for i in store.list(tags=["x"])] == [a, b]
    assert [i.digest for i in store.list(tags=["x", "y"])] == [a]
    assert [i.digest for i in store.list(media_type="text/*")] == [a, b]
    assert [i.digest for i in store.list(media_type="application/json")] == [c]
    assert [i.digest for i in store.list(producer={"workflow": "wf"})] == [a, b]
    assert [i.digest for i in store.list(producer=Producer(run="r2"))] == [b]
    assert [i.digest for i in store.list(since=t)] == [b, c]
    assert [i.digest for i in store.list(until=t)] == [a]
    assert [i.digest for i in store.list(limit=1, offset=1)] == [b]
    info = store.info(b)
    assert info.meta == {"rows": 1} and info.producer == Producer("wf", "r2", None)
    store.tag(c, "z")
    store.untag(a, "y")
    assert store.info(c).tags == ("z",) and store.info(a).tags == ("x",)


def test_lineage_both_ways(store: ArtifactStore) -> None:
    raw = store.put(b"raw")
    clean = store.put(b"clean", parents=[raw])
    features = store.put(b"features", parents=[clean])
    report = store.put(b"report", parents=[features, raw])
    assert store.parents(report) == sorted([features, raw], key=str)
    assert set(store.children(raw)) == {clean, report}
    up = store.lineage(report)
    assert {(e.parent, e.depth) for e in up} == {(features, 1), (raw, 1), (clean, 2), (raw, 3)}
    down = store.lineage(raw, direction="down")
    assert {e.child for e in down} == {clean, features, report}
    assert {(e.child, e.depth) for e in store.lineage(raw, direction="down", max_depth=1)} == {
        (clean, 1),
        (report, 1),
    }
    assert len(list(store.lineage_edges())) == 4


def test_refs_keep_history_and_compare_and_set(store: ArtifactStore) -> None:
    v1, v2, v3 = store.put(b"v1"), store.put(b"v2"), store.put(b"v3")
    store.set_ref("reports/weekly", v1, create_only=True, message="first")
    with pytest.raises(ConflictError) as info:
        store.set_ref("reports/weekly", v2, create_only=True)
    assert info.value.code == "artifact.ref.conflict"
    store.set_ref("reports/weekly", v2, if_match=v1)
    with pytest.raises(ConflictError) as info:
        store.set_ref("reports/weekly", v3, if_match=v1)  # a second writer that read v1 loses
    assert info.value.context == {"ref": "reports/weekly", "expected": str(v1), "actual": str(v2)}
    assert store.get_ref("reports/weekly").digest == v2
    assert store.get("reports/weekly") == b"v2"
    history = store.ref_history("reports/weekly")
    assert [(e.version, e.digest, e.message) for e in history] == [(1, v1, "first"), (2, v2, "")]
    store.delete_ref("reports/weekly")
    with pytest.raises(NotFoundError):
        store.get_ref("reports/weekly")
    assert store.set_ref("reports/weekly", v3).version == 3
    assert [r.name for r in store.refs("reports/")] == ["reports/weekly"]
    with pytest.raises(NotFoundError):
        store.set_ref("x", "blake3:" + "0" * 64 + ":1")


def test_resolve_accepts_prefixes_and_refs(store: ArtifactStore) -> None:
    digest = store.put(b"content")
    store.set_ref("latest", digest)
    assert store.resolve(f"blake3:{digest.hex[:10]}") == digest
    assert store.resolve("latest") == digest
    with pytest.raises(NotFoundError):
        store.resolve("blake3:ffffffffff")


def test_find_missing_of_ten_thousand(store: ArtifactStore) -> None:
    stored = [store.put(f"item {i}".encode()) for i in range(200)]
    absent = [hash_bytes("blake3", f"absent {i}".encode()) for i in range(9800)]
    query = [str(d) for d in stored] + absent
    missing = store.find_missing(query)
    assert missing == absent
    assert store.find_missing([]) == []
    with pytest.raises(ValidationError):
        store.find_missing(["blake3:nothex:1"])


def test_trash_restore_and_empty(store: ArtifactStore) -> None:
    keep, drop, pinned = store.put(BIG), store.put(b"drop"), store.put(b"pinned")
    store.pin(pinned)
    assert store.trash_many([keep, drop, pinned]) == [keep, drop]
    assert store.find_missing([keep, drop, pinned]) == [keep, drop]
    with pytest.raises(NotFoundError) as info:
        store.get(keep)
    assert info.value.code == "artifact.trashed"
    assert [i.digest for i in store.list(state="trashed")] == [keep, drop]
    assert store.restore(keep) and store.get(keep) == BIG
    assert store.empty_trash() == [drop]
    with pytest.raises(NotFoundError):
        store.restore(drop)
    assert store.trash(pinned, force=True)
    assert store.put(b"pinned") == pinned and store.exists(pinned)  # a put brings it back
    assert store.verify().ok


def test_grace_window_spares_a_fresh_put(store: ArtifactStore) -> None:
    digest = store.put(BIG)
    assert not store.trash(digest, grace=60)
    assert not store.delete(digest, grace=60)
    assert store.exists(digest)
    assert store.delete(digest) and not store.exists(digest)
    assert object_files(store.root) == []


def test_tiers_warm_and_cold_read_transparently(cold_store: ArtifactStore) -> None:
    store = cold_store
    digest = store.put(b"tiered " * 100_000, tags=["t"])
    warm = store.move(digest, "warm")
    assert (warm.tier, warm.encoding) == ("warm", "zstd") and warm.stored_size < warm.size
    assert store.get(digest) == b"tiered " * 100_000
    cold = store.move(digest, "cold")
    assert cold.tier == "cold" and object_files(store.root) == []
    assert store.cold_root is not None and len(object_files(store.cold_root)) == 1
    assert store.get(digest) == b"tiered " * 100_000 and store.info(digest).tags == ("t",)
    assert [i.digest for i in store.list(tier="cold")] == [digest]
    store.move(digest, "hot")
    assert store.cold_root is not None and object_files(store.cold_root) == []
    assert store.get(digest) == b"tiered " * 100_000 and store.verify().ok


def test_cold_without_cold_root_is_a_config_error(store: ArtifactStore) -> None:
    digest = store.put(BIG)
    with pytest.raises(ConfigError) as info:
        store.move(digest, "cold")
    assert info.value.code == "artifact.config.no_cold_root"
    assert store.get(digest) == BIG


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "s") as store:
        digest = store.put(BIG, tags=["kept"])
        store.set_ref("r", digest)
    with ArtifactStore(tmp_path / "s") as store:
        assert store.get("r") == BIG and store.info(digest).tags == ("kept",)


def test_verify_finds_orphans_and_repair_adopts_them(store: ArtifactStore, tmp_path: Path) -> None:
    digest = store.put(BIG)
    (path,) = object_files(store.root)
    data = path.read_bytes()
    store.delete(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)  # an object file no row claims (a backup restored by hand, say)
    junk = store.root / "objects" / "blake3" / "00" / "not-an-object"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"junk")
    report = store.verify()
    assert not report.ok and set(report.orphaned) == {str(path), str(junk)}
    repaired = store.verify(repair=True)
    assert any(line.startswith("adopted") for line in repaired.repaired)
    assert store.get(digest) == BIG and store.verify().ok and not junk.exists()


def test_config_rules() -> None:
    from symphony_artifact_store import StoreConfig

    with pytest.raises(ConfigError) as info:
        StoreConfig.from_mapping({"inline_max": 1 << 30})
    assert info.value.context["key"] == "inline_max"
    with pytest.raises(ConfigError):
        StoreConfig.from_mapping({"algorithm": "md5"})
    with pytest.raises(ConfigError):
        StoreConfig.from_mapping({"verify_on_read": "sometimes"})
    with pytest.raises(ConfigError):
        StoreConfig.from_mapping({"nope": 1})
    with pytest.raises(ConfigError):
        StoreConfig.from_mapping({"durable_index": "yes"})
    assert not StoreConfig.from_mapping({"durable_index": False}).durable_index
    config = StoreConfig.from_mapping({"compression": {"media_types": ["text/*"], "level": 5}, "root": "/x"})
    assert config.compress_by_default("text/plain") and not config.compress_by_default("image/png")
    assert config.root == Path("/x")


def test_collector_racing_a_writer_never_loses_a_fresh_put(tmp_path: Path) -> None:
    """A writer re-putting content while a collector trashes and empties with a grace window."""
    import threading

    root = tmp_path / "s"
    data = os.urandom(50_000)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        with ArtifactStore(root) as mine:
            while not stop.is_set():
                try:
                    assert mine.get(mine.put(data)) == data
                except BaseException as exc:  # reported below
                    errors.append(exc)
                    return

    with ArtifactStore(root) as collector:
        digest = collector.put(data)
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(30):
                assert collector.trash_many([digest], grace=1.0) == []
                collector.empty_trash()
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join()
        assert errors == [] and collector.get(digest) == data
        assert collector.trash(digest) and collector.empty_trash() == [digest]
        assert collector.put(data) == digest and collector.get(digest) == data  # written again
        assert collector.verify().ok


def test_connections_of_finished_threads_are_closed(store: ArtifactStore) -> None:
    import gc
    import threading

    digest = store.put(b"x")

    def open_index_files() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(store.root / "index.sqlite"))

    for _ in range(20):
        thread = threading.Thread(target=store.get, args=(digest,))
        thread.start()
        thread.join()
    gc.collect()
    # SQLite keeps a closed connection's descriptor for reuse while another connection of the
    # process holds the file (closing it would drop that connection's POSIX locks): bounded.
    assert open_index_files() <= 2
    assert store.get(digest) == b"x"


def test_relaxed_index_durability(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "s", durable_index=False) as store:
        assert store.index.conn().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        digest = store.put(BIG)
    with ArtifactStore(tmp_path / "s") as store:
        assert store.index.conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.get(digest) == BIG


def test_find_missing_follows_other_writers(tmp_path: Path) -> None:
    """The cached answer stays exact while another store (another connection) puts and deletes."""
    with ArtifactStore(tmp_path / "s") as mine, ArtifactStore(tmp_path / "s") as other:
        a = mine.put(b"a" * 5000)
        b = hash_bytes("blake3", b"b" * 5000)
        assert mine.find_missing([a, b]) == [b]
        assert other.put(b"b" * 5000) == b
        assert mine.find_missing([a, b]) == []
        other.trash(a)
        assert mine.find_missing([a, b]) == [a]
        other.restore(a)
        assert mine.find_missing([a, b]) == []
        other.delete(b)
        assert mine.find_missing([str(a), str(b)]) == [str(b)]
        other.put(b"b" * 5000)
        assert mine.find_missing([a, b]) == []


def test_find_missing_without_the_cache(store: ArtifactStore) -> None:
    from symphony_artifact_store._presence import PresenceCache

    digests = [store.put(f"x{i}".encode()) for i in range(5)]
    store._presence = PresenceCache(store.index, max_entries=3)  # too large to cache: asks the index
    absent = hash_bytes("blake3", b"absent")
    assert store.find_missing([*digests, absent]) == [absent]
    with pytest.raises(ValidationError):
        store.find_missing([absent, "blake3:xyz:1"])
    with pytest.raises(ValidationError):
        store.find_missing([["not", "a", "digest"]])  # type: ignore[list-item]
