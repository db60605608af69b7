"""Reliability with real processes on a real SQLite file.

- kill -9 a process doing puts at random moments, 200 times: afterwards ``verify`` is clean and
  every put that returned is readable with the right bytes (no partial object is visible);
- 4 processes x 1,000 concurrent puts and gets of overlapping content: no error, no corruption,
  one object per content.

The kill test forks its writers from a "zygote" process that imported the store once, so 200
trials fit in a few seconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from symphony_artifact_store import ArtifactStore, hash_bytes

CONTENT = textwrap.dedent(
    """
    import random

    SIZES = [50, 3000, 4096, 4097, 20000, 150000, 400000]

    def content(trial, i):
        rnd = random.Random(trial * 100003 + i)
        size = SIZES[rnd.randrange(len(SIZES))]
        if rnd.random() < 0.2:
            return rnd.randbytes(16) * (size // 16), True   # compressible, stored zstd
        if rnd.random() < 0.2:
            return random.Random(i % 7).randbytes(size), False  # shared across trials: dedup
        return rnd.randbytes(size), False
    """
)

ZYGOTE = CONTENT + textwrap.dedent(
    """
    import os, signal, sys
    from symphony_artifact_store import ArtifactStore

    root, logs = sys.argv[1], sys.argv[2]
    import zstandard
    from symphony.commons.log import get_logger
    from symphony_artifact_store import hash_bytes
    hash_bytes("blake3", b"warm up the imports before forking")
    get_logger("symphony.tests").debug("configure logging before forking")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # children are reaped automatically
    for line in sys.stdin:
        trial = int(line)
        pid = os.fork()
        if pid == 0:
            fd = os.open(os.path.join(logs, f"{trial}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            store = ArtifactStore(root)
            i = 0
            while True:
                data, compress = content(trial, i)
                digest = store.put(data, compress=compress, tags=[f"trial-{trial}"])
                if i % 3 == 0:
                    store.set_ref(f"trial/{trial}", digest)
                os.write(fd, f"{i} {digest}\\n".encode())
                i += 1
        print(pid, flush=True)
    """
)


def _content(trial: int, i: int) -> tuple[bytes, bool]:
    namespace: dict[str, object] = {}
    exec(CONTENT, namespace)
    fn = namespace["content"]
    return fn(trial, i)  # type: ignore[operator, no-any-return]


def _wait_dead(pid: int) -> None:
    for _ in range(2000):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not die")


@pytest.mark.slow
def test_kill_9_during_puts_200_times(tmp_path: Path) -> None:
    root, logs = tmp_path / "store", tmp_path / "logs"
    logs.mkdir()
    ArtifactStore(root).close()
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, str(root), str(logs)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert zygote.stdin is not None and zygote.stdout is not None
    rnd = random.Random(20261206)
    try:
        for trial in range(200):
            zygote.stdin.write(f"{trial}\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            time.sleep(rnd.uniform(0.0, 0.1))
            os.kill(pid, signal.SIGKILL)
            _wait_dead(pid)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
    returned = 0
    with ArtifactStore(root) as store:
        report = store.verify()
        assert report.ok, report
        for log in logs.iterdir():  # a writer killed before it opened its log has none
            trial = int(log.stem)
            for line in log.read_text().splitlines():
                index, digest = line.split()
                data, _ = _content(trial, int(index))
                assert str(hash_bytes("blake3", data)) == digest
                assert store.get(digest) == data
                returned += 1
        assert list((root / "tmp").iterdir()) == []
        assert list((root / "journal").iterdir()) == []  # every dead writer's marker was handled
        for ref in store.refs("trial/"):
            assert store.exists(ref.digest)
    assert returned >= 100  # many trials got puts through before the kill


WORKER = CONTENT + textwrap.dedent(
    """
    import json, random, sys
    from symphony_artifact_store import ArtifactStore

    root, seed = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(seed)
    pool = [content(0, i) for i in range(60)]
    errors, done = [], {}
    with ArtifactStore(root) as store:
        for n in range(1000):
            k = rnd.randrange(len(pool))
            data, compress = pool[k]
            try:
                done[k] = str(store.put(data, compress=compress))
                other = rnd.choice(list(done))
                if store.get(done[other]) != pool[other][0]:
                    errors.append(f"wrong bytes for {other}")
            except Exception as exc:
                errors.append(repr(exc))
    print(json.dumps({"errors": errors[:10], "digests": done}))
    """
)


@pytest.mark.slow
def test_four_processes_put_and_get_overlapping_content(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ArtifactStore(root).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), str(seed)], stdout=subprocess.PIPE, text=True
        )
        for seed in range(4)
    ]
    results = [json.loads(p.communicate(timeout=240)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [r["errors"] for r in results] == [[], [], [], []]
    digests: dict[str, str] = {}
    for r in results:
        for k, d in r["digests"].items():
            assert digests.setdefault(k, d) == d
    with ArtifactStore(root) as store:
        stats = store.stats()
        assert stats.objects == len(set(digests.values())) and stats.puts == 4000
        files = [p for p in (root / "objects").rglob("*") if p.is_file()]
        assert len(files) == stats.objects - stats.inline  # one object per content
        assert store.verify().ok
