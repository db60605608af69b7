"""A 1 GiB artifact is stored from a generated stream and read back with memory bounded by the
chunk size (checked in a child process: peak RSS growth and tracemalloc's peak)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, tracemalloc
    from symphony_artifact_store import ArtifactStore

    GIB, CHUNK = 1 << 30, 1 << 20
    block = os.urandom(CHUNK)

    def generated():
        for i in range(GIB // CHUNK):
            yield i.to_bytes(8, "little") + block[8:]

    store = ArtifactStore(sys.argv[1])
    store.get(store.put(b"warm up"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    digest = store.put(generated())
    put_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    size = 0
    with store.open(digest) as reader:
        for chunk in reader:
            size += len(chunk)
    get_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "digest": str(digest), "size": size, "put_peak": put_peak, "get_peak": get_peak,
        "rss_growth": (rss_after - rss_before) * 1024, "verify_ok": store.verify(hash=False).ok,
    }))
    """
)


@pytest.mark.slow
def test_one_gib_round_trip_with_bounded_memory(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["size"] == 1 << 30 and result["digest"].endswith(":1073741824")
    assert result["put_peak"] < 8 << 20, result  # a few chunks, not the gigabyte
    assert result["get_peak"] < 8 << 20, result
    assert result["rss_growth"] < 64 << 20, result
    assert result["verify_ok"]
