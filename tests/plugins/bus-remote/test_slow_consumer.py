"""Issue #10.1: a subscriber that does not read is flagged a slow consumer and dropped; its
publishers are held for a bounded time only, and nobody else is disturbed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.bus._codecs import get_codec
from symphony.bus._core import Bus
from symphony.bus._message import Message
from symphony.commons.errors import ConfigError, OperationTimeoutError
from symphony_bus_remote import BusClient, BusServer, FramedStream

_SLOW = {"slow_consumer_timeout": 0.5, "heartbeat_interval": 0.2, "heartbeat_timeout": 1.5}


@pytest.mark.anyio
async def test_in_process_slow_subscriber_is_dropped_and_publisher_goes_on() -> None:
    flagged: list[Any] = []
    async with Bus(config=_SLOW) as bus:
        slow = bus.subscribe("demo.#", buffer=2, on_slow=flagged.append)
        fast = bus.subscribe("demo.#", buffer=100)
        with anyio.fail_after(10):  # a guard against a hang, not a timing assertion
            for i in range(10):
                await bus.publish(Message("demo.tick", {"i": i}))
        assert slow.closed and flagged == [slow]
        assert slow.slow_reason is not None and "slow_consumer_timeout" in slow.slow_reason
        assert bus.metrics.snapshot()["counters"]["slow_consumers"] == 1
        assert not fast.closed and fast.depth == 10
        # What the slow one had queued can still be drained.
        assert [m.payload["i"] for m in [await slow.receive(), await slow.receive()]] == [0, 1]


@pytest.mark.anyio
async def test_publish_nowait_flags_a_subscriber_full_for_too_long() -> None:
    async with Bus(config={"slow_consumer_timeout": 0.2}) as bus:
        slow = bus.subscribe("demo.#", buffer=1)
        bus.publish_nowait(Message("demo.a"))
        with pytest.raises(OperationTimeoutError, match="full"):
            bus.publish_nowait(Message("demo.b"))
        await anyio.sleep(0.3)
        assert bus.publish_nowait(Message("demo.c")) == 1  # flagged and dropped, no error
        assert slow.closed and slow.slow_reason


@pytest.mark.anyio
async def test_a_subscriber_that_reads_is_never_flagged() -> None:
    async with Bus(config={"slow_consumer_timeout": 0.2}) as bus:
        sub = bus.subscribe("demo.#", buffer=1)
        got: list[int] = []

        async def consume() -> None:
            async for msg in sub:
                got.append(msg.payload)
                await anyio.sleep(0.01)
                if len(got) == 30:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for i in range(30):
                await bus.publish(Message("demo.x", i))
        assert got == list(range(30)) and not sub.closed and sub.slow_reason is None


def test_slow_consumer_timeout_has_a_maximum() -> None:
    for bad in (10**9, 0):
        with pytest.raises(ConfigError, match="slow_consumer_timeout"):
            Bus(config={"slow_consumer_timeout": bad})


async def _raw_slow_subscriber(url: str, stop: anyio.Event, result: dict[str, Any]) -> None:
    """Connect, handshake, subscribe to ``demo.#`` with a buffer of 2 and policy ``wait``, then
    never read again -- but keep pinging, so the connection is not silent."""
    path = url.removeprefix("unix://")
    stream = await anyio.connect_unix(path)
    framed = FramedStream(stream)
    codec = get_codec("json")
    hello = Message.request("_bus.hello", {"protocol": 1, "codecs": ["json"], "name": "slowpoke"})
    await framed.send_frame(codec.encode(hello))
    assert codec.decode(await framed.receive_frame()).kind == "response"
    sub = Message.request("_bus.subscribe", {"sid": "s1", "pattern": "demo.#", "buffer": 2, "policy": "wait"})
    await framed.send_frame(codec.encode(sub))
    assert codec.decode(await framed.receive_frame()).payload == {"ok": True}
    result["subscribed"] = True
    try:
        while not stop.is_set():
            await framed.send_frame(codec.encode(Message("_bus.ping")))
            await anyio.sleep(0.1)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, Exception) as exc:
        result["send_failed"] = repr(exc)
    # Now read everything: the server must have closed the connection (EOF), and said why.
    frames: list[Message] = []
    try:
        with anyio.fail_after(10):
            while True:
                frames.append(codec.decode(await framed.receive_frame()))
    except Exception as exc:
        result["end"] = repr(exc)
    result["frames"] = frames
    await framed.aclose()


@pytest.mark.anyio
async def test_slow_remote_subscriber_is_disconnected_and_others_carry_on(
    sock_dir: Path, log_events: Any
) -> None:
    url = f"unix://{sock_dir}/bus.sock"
    async with Bus(config=_SLOW) as bus, BusServer(bus, url) as server:

        async def echo(msg: Message) -> Any:
            return msg.payload

        bus.handle("demo.echo", echo)
        stop = anyio.Event()
        raw: dict[str, Any] = {}
        kw: dict[str, Any] = {"reconnect": False, "heartbeat_interval": 0.2, "heartbeat_timeout": 1.5}
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_raw_slow_subscriber, server.url, stop, raw)
                while not raw.get("subscribed"):
                    await anyio.sleep(0.01)
                async with (
                    BusClient.connect(server.url, name="publisher", **kw) as publisher,
                    BusClient.connect(server.url, name="bystander", **kw) as bystander,
                ):
                    blob = "x" * 32768
                    for i in range(300):  # ~10 MB: far more than the socket buffers hold
                        await publisher.send("demo.tick", {"i": i, "blob": blob})
                    await bystander.send("demo.other", {"once": True})
                    for _ in range(5):
                        assert (await publisher.request("demo.echo", 1, timeout=5)).payload == 1
                        assert (await bystander.request("demo.echo", 2, timeout=5)).payload == 2
                        await anyio.sleep(0.3)
                    assert publisher.connections == 1 and bystander.connections == 1
                    names = sorted(peer.name.split("#")[0] for peer in server.peers.values())
                    assert names == ["bystander", "publisher"]  # the slow one is gone
                stop.set()
        assert raw.get("end") is not None  # the server closed the slow connection
        assert bus.metrics.slow_consumers == 1
        dropped = log_events.named("bus.remote.slow_consumer")
        assert dropped and dropped[0]["peer"].startswith("slowpoke")
        assert "slow consumer" in dropped[0]["reason"]
        assert not log_events.named("bus.remote.heartbeat_timeout")
