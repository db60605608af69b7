"""Heartbeats and health: statuses from a controlled clock, events, the background monitor."""

from __future__ import annotations

import anyio
import pytest

from symphony.bus import Bus, LocalEndpoint, Message
from symphony.bus._health import HealthMonitor, HealthStatus
from symphony.commons.errors import NotFoundError, OperationTimeoutError, TransportError

pytestmark = pytest.mark.anyio


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_statuses_follow_the_clock() -> None:
    clock = Clock()
    changes: list[tuple[str, str | None, str]] = []
    mon = HealthMonitor(
        interval=1.0,
        timeout=4.0,
        clock=clock,
        on_change=lambda name, old, new: changes.append((name, old and old.state, new.state)),
    )
    mon.track("peer")
    assert mon.status("peer").state == "healthy" and mon.healthy() == ["peer"]
    clock.now += 1.9
    assert mon.check() == []
    clock.now += 0.2  # 2.1 s of silence: late
    assert mon.check() == ["peer"]
    status = mon.status("peer")
    assert (status.state, status.reason) == ("degraded", "heartbeat late") and mon.degraded() == ["peer"]
    clock.now += 2.0  # 4.1 s: unhealthy
    assert mon.check() == ["peer"]
    status = mon.status("peer")
    assert status.state == "unhealthy" and isinstance(status.error, OperationTimeoutError)
    assert status.error.code == "bus.heartbeat_timeout" and status.error.context["endpoint"] == "peer"
    assert mon.unhealthy() == ["peer"] and not mon.is_available("peer")
    clock.now += 10
    assert mon.check() == []  # stays unhealthy, no repeated events
    mon.beat("peer")
    assert mon.status("peer").state == "healthy" and mon.status("peer").last_beat == clock.now
    assert changes == [
        ("peer", None, "healthy"),
        ("peer", "healthy", "degraded"),
        ("peer", "degraded", "unhealthy"),
        ("peer", "unhealthy", "healthy"),
    ]


def test_self_reported_and_manual_statuses() -> None:
    clock = Clock()
    mon = HealthMonitor(timeout=4.0, clock=clock)
    mon.beat("svc", degraded="warming up")
    status = mon.status("svc")
    assert (status.state, status.reason) == ("degraded", "warming up") and mon.is_available("svc")
    mon.beat("svc", degraded="warming up")
    assert mon.status("svc").since == status.since  # same status, not a change
    mon.beat("svc")
    assert mon.status("svc").state == "healthy"
    mon.mark_degraded("svc", "disk almost full")
    assert mon.status("svc").reason == "disk almost full"
    err = TransportError("connection reset", code="transport.reset")
    mon.mark_unhealthy("svc", err)
    status = mon.status("svc")
    assert status.state == "unhealthy" and status.error is err and status.reason == "connection reset"
    snap = mon.snapshot()["svc"]
    assert snap["state"] == "unhealthy" and snap["error"]["code"] == "transport.reset"
    assert HealthStatus("healthy").to_dict()["state"] == "healthy"
    mon.forget("svc")
    assert "svc" not in mon and len(mon) == 0
    with pytest.raises(NotFoundError):
        mon.status("svc")
    assert not mon.is_available("svc")


async def test_health_changes_are_published_on_the_bus() -> None:
    clock = Clock()
    bus = Bus(config={"heartbeat_timeout": 2.0}, clock=clock)
    events = bus.subscribe("bus.endpoint.health")
    await bus.endpoints.register(LocalEndpoint("peer"))
    clock.now += 3
    bus.health.check()
    msg = await events.receive(timeout=5)
    assert msg.payload["name"] == "peer" and msg.payload["state"] == "unhealthy"
    assert msg.payload["previous"] == "healthy" and msg.payload["error"]["code"] == "bus.heartbeat_timeout"
    assert bus.health.unhealthy() == ["peer"]
    # any message from the peer counts as a heartbeat
    await bus.ingest(Message("peer.hello"), origin="peer")
    assert (await events.receive(timeout=5)).payload["state"] == "healthy"
    await bus.endpoints.unregister("peer")
    assert "peer" not in bus.health


async def test_background_monitor_marks_silent_endpoints_unhealthy() -> None:
    bus = Bus(config={"heartbeat_interval": 0.01, "heartbeat_timeout": 0.05})
    events = bus.subscribe("bus.endpoint.health")
    async with bus:
        assert bus.running
        await bus.endpoints.register(LocalEndpoint("quiet"))
        with anyio.fail_after(10):
            while True:
                msg = await events.receive()
                if msg.payload["state"] == "unhealthy":
                    break
        assert bus.health.unhealthy() == ["quiet"]
    assert not bus.running


class Pingable(LocalEndpoint):
    def __init__(self, name: str, mode: str) -> None:
        super().__init__(name)
        self.mode = mode
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.mode == "fail":
            raise TransportError("ping refused", code="peer.refused")
        if self.mode == "crash":
            raise RuntimeError("ping bug")


async def test_monitor_pings_endpoints_that_can_be_pinged() -> None:
    bus = Bus(config={"heartbeat_interval": 0.01, "heartbeat_timeout": 0.05})
    good = Pingable("good", "ok")
    bad = Pingable("bad", "fail")
    buggy = Pingable("buggy", "crash")
    async with bus:
        for ep in (good, bad, buggy):
            await bus.endpoints.register(ep)
        with anyio.fail_after(10):
            while good.pings < 10 or bus.health.unhealthy() != ["bad", "buggy"]:
                await anyio.sleep(0.01)
        # answered pings are heartbeats: 'good' stays available well past the timeout
        assert bus.health.is_available("good")
    assert bus.health.status("bad").error.code == "peer.refused"  # type: ignore[union-attr]
    assert bus.health.status("buggy").error.code == "bus.ping_failed"  # type: ignore[union-attr]


async def test_start_in_a_task_group_and_refuse_a_second_run() -> None:
    from symphony.commons.errors import SymphonyError

    bus = Bus()
    async with anyio.create_task_group() as tg:
        await bus.start(tg)
        assert bus.running
        with pytest.raises(SymphonyError) as info:
            await bus.run()
        assert info.value.code == "bus.already_running"
        await bus.aclose()
    assert not bus.running and bus.closed
