"""Artifact store benchmarks (symphony-artifact-store), each figure beside its anchor in the same run.

- put of 4 KiB, 1 MiB and 64 MiB (new content each time, durable: a 4 KiB artifact is one
  synced index commit; a larger object carries its put record as an extended attribute, is
  fsynced and linked into place, its folder fsynced, and its row committed without a WAL fsync)
  beside a raw write of the same bytes to a temp file + fsync + rename + fsync of the folder
  (target <= 1.5 x); and the 1 MiB put again with ``durable_index=false`` (no put record, no
  WAL fsync on any commit), which shows what durability costs now: nothing measurable;
- get of the same sizes (read + blake3 check against the digest, warm cache) beside a raw
  read + blake3 of a file of the same size (target <= 1.5 x);
- find_missing of 10,000 digests (half stored) against an index of 100,000 artifacts
  (target < 20 ms), beside a Python set lookup of the same strings; and the first call in a
  process, which loads the set of stored digests.

Measurements alternate ours and the anchor and take medians, because the machine is noisy.
Run: ``.venv/bin/python tests/benchmarks/bench_artifact_store.py`` (JSON lines on stdout).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, median

from symphony_artifact_store import ArtifactStore, Digest, hash_bytes

SIZES = [("4KiB", 4096, 60), ("1MiB", 1 << 20, 40), ("64MiB", 64 << 20, 6)]


def raw_put(directory: Path, name: str, data: bytes) -> None:
    """The anchor: temp file in the same folder, fsync, rename, fsync the folder."""
    temp = directory / f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, directory / name)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def raw_get(path: Path) -> bytes:
    """The anchor: read the whole file and blake3 it."""
    with open(path, "rb", buffering=0) as fh:
        data = fh.read()
    blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
    return data


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pair(
    i: int, ours: Callable[[], object], anchor: Callable[[], object], *, flush: bool = False
) -> tuple[float, float]:
    """Time ``ours`` and ``anchor`` back to back, alternating which goes first. With ``flush``
    (writes) each starts with the page cache written back (``os.sync``, untimed), so neither
    pays for the writeback of what the other wrote."""

    def run(fn: Callable[[], object]) -> float:
        if flush:
            os.sync()
        return timed(fn)

    if i % 2 == 0:
        a = run(ours)
        return a, run(anchor)
    b = run(anchor)
    return run(ours), b


def bench_put_get(work: Path) -> None:
    for label, size, reps in SIZES:
        base = bytearray(os.urandom(size))
        raw_dir = work / f"raw-{label}"
        raw_dir.mkdir()
        ours: list[float] = []
        anchor: list[float] = []
        digests: list[Digest] = []
        with ArtifactStore(work / f"store-{label}") as store:
            store.put(b"warm up the index")
            for i in range(reps):
                base[:8] = i.to_bytes(8, "little")
                data = bytes(base)
                a, b = pair(
                    i, partial(_put, store, data, digests), partial(raw_put, raw_dir, f"f{i}", data), flush=True
                )
                ours.append(a)
                anchor.append(b)
            emit(
                f"artifact put {label}", median(ours) * 1e3, "ms",
                baseline="raw write + fsync + rename + fsync dir", baseline_value=median(anchor) * 1e3,
                target="<= 1.5 x raw", check=lambda v, r: r is not None and r <= 1.5,
            )  # fmt: skip
            ours, anchor = [], []
            files = sorted(raw_dir.iterdir())
            for _ in range(2):  # warm both caches
                store.get(digests[0])
                raw_get(files[0])
            for i in range(max(reps, 6)):
                digest, path = digests[i % len(digests)], files[i % len(files)]
                a, b = pair(i, partial(store.get, digest), partial(raw_get, path))
                ours.append(a)
                anchor.append(b)
            emit(
                f"artifact get {label} (verified)", median(ours) * 1e3, "ms",
                baseline="raw read + blake3", baseline_value=median(anchor) * 1e3,
                target="<= 1.5 x raw", check=lambda v, r: r is not None and r <= 1.5,
            )  # fmt: skip
        if label == "1MiB":
            bench_put_relaxed(work, base, raw_dir, reps)
        shutil.rmtree(raw_dir)
        log(f"# put/get {label} done")


def bench_put_relaxed(work: Path, base: bytearray, raw_dir: Path, reps: int) -> None:
    """put 1 MiB with ``durable_index=False``: the index's WAL is not synced on each commit."""
    ours: list[float] = []
    anchor: list[float] = []
    with ArtifactStore(work / "store-relaxed", durable_index=False) as store:
        store.put(b"warm up the index")
        for i in range(reps):
            base[:8] = (1_000_000 + i).to_bytes(8, "little")
            data = bytes(base)
            a, b = pair(i, partial(store.put, data), partial(raw_put, raw_dir, f"r{i}", data), flush=True)
            ours.append(a)
            anchor.append(b)
    emit(
        "artifact put 1MiB (durable_index=false)", median(ours) * 1e3, "ms",
        baseline="raw write + fsync + rename + fsync dir", baseline_value=median(anchor) * 1e3,
        target="<= 1.5 x raw", check=lambda v, r: r is not None and r <= 1.5,
    )  # fmt: skip


def _put(store: ArtifactStore, data: bytes, digests: list[Digest]) -> None:
    digests.append(store.put(data))


def bench_find_missing(work: Path) -> None:
    root = work / "store-find"
    ArtifactStore(root).close()
    stored = [hash_bytes("blake3", i.to_bytes(8, "little")) for i in range(100_000)]
    now = time.time()
    # Fill the index of a store holding 100,000 artifacts directly (putting them one by one
    # would only measure 100,000 fsyncs): the rows are what find_missing reads.
    with sqlite3.connect(root / "index.sqlite") as db:
        db.executemany(
            "INSERT INTO objects(digest, k, algorithm, size, stored_size, inline, created, last_put, accessed)"
            " VALUES (?, ?, 'blake3', 8, 8, 1, ?, ?, ?)",
            [(str(d), int(d.hex[:16], 16) - (1 << 63), now, now, now) for d in stored],
        )
    absent = [str(hash_bytes("blake3", b"absent %d" % i)) for i in range(5000)]
    query = [str(d) for d in stored[::20]] + absent
    present = set(map(str, stored))
    with ArtifactStore(root) as store:
        start = time.perf_counter()
        assert store.find_missing(query) == absent
        first = time.perf_counter() - start
        ours, anchor = [], []
        for _ in range(15):
            ours.append(timed(lambda: store.find_missing(query)))
            anchor.append(timed(lambda: [q for q in query if q not in present]))
    emit(
        "artifact find_missing 10,000 digests (100,000 stored)", median(ours) * 1e3, "ms",
        baseline="Python set lookup of the same strings (in memory, no index)", baseline_value=median(anchor) * 1e3,
        target="< 20 ms", check=lambda v, r: v < 20,
    )  # fmt: skip
    emit(
        "artifact find_missing, first call in a process (loads the set of 100,000 stored digests)",
        first * 1e3, "ms", baseline=None, baseline_value=None,
    )  # fmt: skip


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-artifacts-", dir=os.environ.get("BENCH_TMP")))
    try:
        bench_put_get(work)
        bench_find_missing(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
