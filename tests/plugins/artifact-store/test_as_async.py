"""The async API on asyncio and trio: puts from async iterators, reads as bytes and streams,
concurrent puts of overlapping content, refs, cancellation leaving nothing half done."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from symphony.commons.errors import ConflictError, IntegrityError
from symphony_artifact_store import ArtifactStore, AsyncArtifactStore, hash_bytes

pytestmark = pytest.mark.anyio

DATA = os.urandom(3 * (1 << 20) + 123)


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[i : i + size]


async def test_put_and_read_async(tmp_path: Path) -> None:
    async with AsyncArtifactStore.from_root(tmp_path / "s") as store:
        digest = await store.put(chunks(DATA), media_type="application/x-test", tags=["a"], ref="latest")
        assert digest == hash_bytes("blake3", DATA)
        assert await store.get("latest") == DATA
        assert await store.put(DATA) == digest
        received = bytearray()
        async with store.open(digest) as reader:
            assert reader.digest == digest
            async for piece in reader:
                received += piece
        assert bytes(received) == DATA
        out = await store.get_to(digest, tmp_path / "out.bin")
        assert out.read_bytes() == DATA
        small = await store.put(chunks(b"tiny"))
        assert await store.get(small) == b"tiny"
        assert await store.find_missing([digest, small]) == []
        assert [i.digest for i in await store.list(tags=["a"])] == [digest]
        assert (await store.info(digest)).media_type == "application/x-test"
        assert (await store.verify()).ok


async def test_concurrent_puts_of_overlapping_content(tmp_path: Path) -> None:
    payloads = [bytes([i % 5]) * (10000 + i % 5) for i in range(40)]
    results: dict[int, object] = {}
    async with AsyncArtifactStore.from_root(tmp_path / "s") as store:

        async def one(i: int) -> None:
            results[i] = await store.put(chunks(payloads[i], 4096))

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(one, i)
        assert len(set(results.values())) == 5
        assert (await store.stats()).objects == 5
        assert (await store.verify()).ok


async def test_refs_compare_and_set_async(tmp_path: Path) -> None:
    async with AsyncArtifactStore.from_root(tmp_path / "s") as store:
        a, b = await store.put(b"a"), await store.put(b"b")
        await store.set_ref("r", a)
        await store.set_ref("r", b, if_match=a)
        with pytest.raises(ConflictError):
            await store.set_ref("r", a, if_match=a)
        assert [e.digest for e in await store.ref_history("r")] == [a, b]


async def test_cancelled_put_leaves_nothing(tmp_path: Path) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            await anyio.sleep(0)
            yield b"x" * 65536

    async with AsyncArtifactStore.from_root(tmp_path / "s") as store:
        with anyio.move_on_after(0.2):
            await store.put(endless())
        assert list((tmp_path / "s" / "tmp").iterdir()) == []
        assert (await store.stats()).objects == 0 and (await store.verify()).ok


async def test_corrupt_stream_raises_at_the_end(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path / "s") as sync:
        digest = sync.put(DATA)
        (path,) = [p for p in (sync.root / "objects").rglob("*") if p.is_file()]
        os.chmod(path, 0o644)
        with open(path, "r+b") as fh:
            fh.seek(5)
            fh.write(b"\x00\x01")
        with pytest.raises(IntegrityError):
            async with sync.aio.open(digest) as reader:
                async for _ in reader:
                    pass
