"""Metrics (histogram readout, JSON-safe snapshot), the [bus] config section, the package's
public names, and building a bus from a kernel."""

from __future__ import annotations

import json
import math

import anyio
import pytest

import symphony.bus as bus_pkg
from symphony.bus import BUS_CONFIG_SCHEMA, Bus, BusConfig, Message
from symphony.bus._metrics import COUNTERS, LatencyHistogram
from symphony.commons.errors import ConfigError

pytestmark = pytest.mark.anyio


def test_histogram_percentiles_bracket_the_samples() -> None:
    h = LatencyHistogram()
    assert h.snapshot()["p99"] == 0.0 and h.percentile(50) == 0.0
    samples = [i * 1e-5 for i in range(1, 1001)]  # 10 us .. 10 ms, uniform
    for s in samples:
        h.record(s)
    snap = h.snapshot()
    assert snap["count"] == 1000 and math.isclose(snap["mean"], sum(samples) / 1000)
    assert snap["min"] == samples[0] and snap["max"] == samples[-1]
    for pct, exact in ((50, samples[499]), (95, samples[949]), (99, samples[989])):
        got = h.percentile(pct)
        assert exact <= got <= exact * 1.26  # bucket upper bound: never understates, <26 % over
    assert snap["p50"] <= snap["p95"] <= snap["p99"] <= snap["max"]


def test_histogram_edges() -> None:
    h = LatencyHistogram()
    h.record(-1.0)
    h.record(0.0)
    h.record(1e-9)
    h.record(1e6)  # beyond the last bucket
    assert h.count == 4 and h.percentile(100) == 1e6 and h.percentile(50) <= 1e-6
    h.reset()
    assert h.count == 0


async def test_snapshot_is_json_safe_and_complete() -> None:
    bus = Bus()
    sub = bus.subscribe("m.#", name="watcher")
    bus.handle("m.req", lambda m: 1)
    await bus.publish(Message("m.x"))
    await bus.request("m.req")
    await sub.receive(timeout=5)
    snap = json.loads(json.dumps(bus.metrics.snapshot()))
    assert set(snap) == {"counters", "subscriptions", "latency", "pending"}
    assert set(snap["counters"]) == set(COUNTERS)
    assert snap["counters"]["published"] == 1 and snap["counters"]["delivered"] == 1
    assert snap["subscriptions"][0]["name"] == "watcher"
    assert snap["latency"]["deliver"]["count"] == 1 and snap["latency"]["request"]["count"] == 1
    assert snap["latency"]["fanout"]["count"] == 1
    bus.metrics.reset()
    assert bus.metrics.snapshot()["counters"]["published"] == 0


def test_config_defaults() -> None:
    cfg = BusConfig.from_mapping(None)
    assert cfg == BusConfig()
    assert (cfg.default_timeout, cfg.codec, cfg.max_frame_size, cfg.socket) == (
        5.0,
        "msgpack",
        16 * 1024 * 1024,
        None,
    )
    for key, spec in BUS_CONFIG_SCHEMA["properties"].items():
        assert "default" in spec, key
        assert getattr(cfg, key) == spec["default"], key


def test_config_socket() -> None:
    assert BusConfig.from_mapping({"socket": "/tmp/x.sock"}).socket == "/tmp/x.sock"


@pytest.mark.parametrize(
    ("data", "code", "key", "rule"),
    [
        ({"default_timeout": 0}, "config.invalid", "bus.default_timeout", "exclusiveMinimum=0"),
        ({"default_timeout": "5"}, "config.invalid", "bus.default_timeout", "type=number"),
        ({"default_buffer": 0}, "config.invalid", "bus.default_buffer", "minimum=1"),
        ({"default_policy": "drop-newest"}, "config.invalid", "bus.default_policy", "enum=['wait', 'drop-oldest']"),
        ({"max_frame_size": 10}, "config.invalid", "bus.max_frame_size", "minimum=1024"),
        ({"colour": "blue"}, "config.unknown_key", "bus.colour", "additionalProperties=false"),
        ({"unknown_message_types": "maybe"}, "config.invalid", "bus.unknown_message_types", "enum=['allow', 'strict']"),
        ({"busy_poll": -1}, "config.invalid", "bus.busy_poll", "minimum=0"),
    ],
)
def test_bad_config_names_key_and_rule(data: dict, code: str, key: str, rule: str) -> None:
    """A standalone Bus(config=...) reports bad values exactly as the layered config does."""
    with pytest.raises(ConfigError) as info:
        BusConfig.from_mapping(data)
    assert info.value.code == code
    assert info.value.context["key"] == key and info.value.context["rule"] == rule
    assert info.value.context["file"] == "Bus(config=...)"


async def test_config_reaches_the_bus() -> None:
    bus = Bus(
        config={
            "default_buffer": 7,
            "default_policy": "drop-oldest",
            "codec": "json",
            "unknown_message_types": "strict",
        }
    )
    sub = bus.subscribe("x")
    assert (sub.buffer, sub.policy) == (7, "drop-oldest")
    assert bus.codec.name == "json"
    assert bus.message_types.unknown == "strict"
    assert "Bus 'bus' idle" in repr(bus)


def test_every_public_name_resolves() -> None:
    assert sorted(bus_pkg.__all__) == sorted(bus_pkg._LAZY)
    for name in bus_pkg.__all__:
        assert getattr(bus_pkg, name) is not None, name
    assert set(bus_pkg.__all__) <= set(dir(bus_pkg))
    with pytest.raises(AttributeError):
        bus_pkg.no_such_name  # noqa: B018


async def test_from_kernel_uses_the_kernel_registries() -> None:
    from symphony.kernel import Kernel

    kernel = Kernel.create(autoload=False)
    try:
        from symphony.bus._registries import kernel_registry

        kernel_registry(kernel, "message_types").add("k.ping", schema={"type": "object"})
        bus = Bus.from_kernel(kernel)
        assert bus.message_types is kernel.registry("message_types")
        assert bus.codecs is kernel.registry("codecs")
        assert bus.transports is kernel.registry("transports")
        assert not bus.running  # the kernel is not open: nothing was started
        bus.handle("k.ping", lambda m: "pong")
        assert (await bus.request("k.ping", {})).payload == "pong"
    finally:
        kernel.close()


async def test_kernel_bus_runs_in_an_open_kernel() -> None:
    from symphony.kernel import Kernel

    async with Kernel.open(autoload=False) as kernel:
        bus = kernel.bus
        assert bus is kernel.bus
        bus.handle("k.echo", lambda m: m.payload)
        assert (await bus.request("k.echo", 5)).payload == 5
        await anyio.wait_all_tasks_blocked()
        assert bus.running  # its background tasks run in the kernel's task group
    assert bus.closed and not bus.running
