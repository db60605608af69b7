"""Durability of relaxed index commits: a new object's row commits without a WAL fsync, and the
put record attached to the object (``user.symphony.put``) rebuilds it after a power loss.

A power loss is simulated with real processes on a real SQLite file: a writer puts, is killed
with SIGKILL, and the index files are put back as they were before its last put (what a power
loss may do to WAL frames that were never synced), while the marker it left says another boot.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.commons.errors import ValidationError
from symphony_artifact_store import ArtifactStore, Producer, hash_bytes
from symphony_artifact_store._journal import XATTR, PutRecord

BIG = os.urandom(200_000)

WRITER = textwrap.dedent(
    """
    import json, os, sys
    from symphony_artifact_store import ArtifactStore, Producer

    root, first_size = sys.argv[1], int(sys.argv[2])
    store = ArtifactStore(root)
    first = store.put(os.urandom(first_size), tags=["first"])
    print(json.dumps({"first": str(first)}), flush=True)
    sys.stdin.readline()                           # the test snapshots the index here
    second = store.put(
        bytes(range(256)) * 800, tags=["second", "keep"], media_type="text/csv", meta={"rows": 3},
        parents=[first], producer=Producer(workflow="w", run="r-1", node="n"),
    )
    print(json.dumps({"second": str(second)}), flush=True)
    sys.stdin.readline()                           # killed here, before close
    """
)

INDEX_FILES = ("index.sqlite", "index.sqlite-wal")


def _run_writer(root: Path, snapshot: Path) -> tuple[str, str]:
    """Put twice in a child process, snapshot the index between the puts, then SIGKILL the child."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), "100000"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = json.loads(proc.stdout.readline())["first"]
        snapshot.mkdir()
        for name in INDEX_FILES:
            if (root / name).exists():
                shutil.copy2(root / name, snapshot / name)
        proc.stdin.write("\n")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline())["second"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    return first, second


def _lose_unsynced_frames(root: Path, snapshot: Path) -> None:
    """Put the index back as the snapshot had it (the frames written after it never reached the disk)."""
    for name in (*INDEX_FILES, "index.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
        if (snapshot / name).exists():
            shutil.copy2(snapshot / name, root / name)


def _markers(root: Path) -> list[Path]:
    return sorted((root / "journal").iterdir())


def test_a_new_object_commits_relaxed_and_carries_its_record(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "s") as store:
        digest = store.put(BIG, tags=["t"], meta={"k": 1})
        (path,) = [p for p in (store.root / "objects").rglob("*") if p.is_file()]
        record = PutRecord.decode(os.getxattr(path, XATTR))
        assert (record.tags, record.meta) == (("t",), {"k": 1}) and store.info(
            digest
        ).created == record.created
        assert len(os.getxattr(path, XATTR)) < 60  # compact: it fits in an ext4 inode
        assert len(_markers(store.root)) == 1  # this process committed a relaxed row
        assert store.index.conn().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert _markers(tmp_path / "s") == []  # close: one synced commit, then the marker goes


def test_power_loss_rebuilds_the_lost_row_with_its_metadata(tmp_path: Path) -> None:
    root = tmp_path / "store"
    first, second = _run_writer(root, tmp_path / "snapshot")
    _lose_unsynced_frames(root, tmp_path / "snapshot")
    (marker,) = _markers(root)
    marker.chmod(0o644)
    marker.write_text("an earlier boot")  # the machine went down, not just the process
    with ArtifactStore(root) as store:
        assert f"index row of {second} rebuilt" in store.recovered
        assert store.get(second) == bytes(range(256)) * 800
        info = store.info(second)
        assert info.tags == ("keep", "second") and info.media_type == "text/csv"
        assert info.meta == {"rows": 3} and info.producer == Producer("w", "r-1", "n")
        assert [str(p) for p in info.parents] == [first]
        assert store.get(first) and store.verify().ok
    assert _markers(root) == []


def test_a_killed_process_of_this_boot_needs_no_scan(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _, second = _run_writer(root, tmp_path / "snapshot")
    assert len(_markers(root)) == 1
    with ArtifactStore(root) as store:
        assert not [line for line in store.recovered if "rebuilt" in line]  # the OS kept the WAL
        assert store.info(second).tags == ("keep", "second") and store.verify().ok
    assert _markers(root) == []


def test_a_hard_linked_source_is_left_alone_and_committed_synced(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(BIG)
    with ArtifactStore(tmp_path / "s") as store:
        digest = store.put(source, link="hardlink")
        assert store.get(digest) == BIG
        assert XATTR not in os.listxattr(source)  # the caller's inode carries no record of ours
        assert _markers(store.root) == []  # nothing relaxed was committed


def test_durable_index_false_keeps_no_journal(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "s", durable_index=False) as store:
        store.put(BIG)
        assert not (store.root / "journal").exists()


def test_content_put_again_keeps_one_row(tmp_path: Path) -> None:
    """A second writer of the same content takes the synced path and merges its metadata."""
    with ArtifactStore(tmp_path / "s") as a, ArtifactStore(tmp_path / "s") as b:
        digest = a.put(BIG, tags=["a"])
        assert b.put(BIG, tags=["b"]) == digest == hash_bytes("blake3", BIG)
        assert a.info(digest).tags == ("a", "b") and a.info(digest).put_count == 2


records = st.builds(
    PutRecord,
    created=st.floats(0, 4e9),
    media_type=st.none() | st.just("text/plain"),
    tags=st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), max_size=4).map(tuple),
    parents=st.lists(st.just(str(hash_bytes("sha256", b"p"))), max_size=2).map(tuple),
    producer=st.tuples(st.none() | st.text(max_size=10), st.none() | st.text(max_size=10), st.none()),
    meta=st.none() | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_put_records_round_trip(record: PutRecord) -> None:
    assert PutRecord.decode(record.encode()) == record


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=400) | st.text(max_size=400).map(str.encode) | records.map(lambda r: r.encode()[:-3])
)
def test_put_record_decoder_raises_only_validation_errors(data: bytes) -> None:
    try:
        PutRecord.decode(data)
    except ValidationError:
        pass


def test_a_put_of_stored_bytes_hashed_during_the_sync_leaves_one_object(tmp_path: Path) -> None:
    """Bytes up to 16 MiB are written and synced while they are hashed: storing them again
    drops the new copy and refreshes the row."""
    with ArtifactStore(tmp_path / "s") as store:
        first = store.put(BIG)
        before = store.info(first).last_put
        assert store.put(BIG, tags=["again"]) == first
        info = store.info(first)
        assert info.put_count == 2 and info.tags == ("again",) and info.last_put >= before
        assert len([p for p in (store.root / "objects").rglob("*") if p.is_file()]) == 1
        assert list((store.root / "tmp").iterdir()) == []
