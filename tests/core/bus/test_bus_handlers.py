"""The ``bus_handlers`` registry: request handlers plugins expose on the kernel's bus."""

from __future__ import annotations

from typing import Any

import pytest

from symphony.bus import Bus, Message
from symphony.bus._registries import BusHandlerRegistry
from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony.kernel import Kernel


@pytest.mark.anyio
async def test_handlers_added_before_and_after_binding_are_routed() -> None:
    registry = BusHandlerRegistry()

    def early(msg: Message) -> str:
        return "early"

    async def late(msg: Message) -> Any:
        return msg.payload

    registry.add("demo.early", early, summary="added before the bus")
    async with Bus() as bus:
        registry.bind(bus)
        registry.bind(bus)  # binding twice to one bus is harmless
        registry.add("demo.late.*", late, name="late", priority=3)
        assert (await bus.request("demo.early", timeout=2)).payload == "early"
        assert (await bus.request("demo.late.x", 7, timeout=2)).payload == 7
        assert [h.describe() for h in registry] == [
            {
                "pattern": "demo.early",
                "priority": 0,
                "name": "demo.early",
                "target": "handler:demo.early",
                "summary": "added before the bus",
            },
            {"pattern": "demo.late.*", "priority": 3, "name": "late", "target": "handler:late", "summary": ""},
        ]
        assert bus.router.routes()[0] is registry.get("late")  # the registry's routes are the bus's
        assert registry.remove("late") and "late" not in registry
        with pytest.raises(NotFoundError, match="no route"):
            await bus.request("demo.late.x", 7, timeout=2)
        with pytest.raises(ConflictError):
            registry.bind(Bus())


def test_bad_registrations_are_clear_errors() -> None:
    registry = BusHandlerRegistry()
    registry.add("demo.a", lambda msg: None)
    with pytest.raises(ConflictError, match=r"demo\.a"):
        registry.add("demo.a", lambda msg: None)
    with pytest.raises(ValidationError):
        registry.add("demo.b", "not callable")
    with pytest.raises(ValidationError):
        registry.add("demo.c", lambda msg: None, priority="high")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        registry.add("bad pattern!", lambda msg: None)
    assert len(registry) == 1 and registry.get("demo.a") is not None


@pytest.mark.anyio
async def test_a_plugin_handler_is_answered_by_the_kernel_bus() -> None:
    """The example plugin declares `bus-handler:textstats.analyze`: building the kernel's bus
    activates it and routes its handler, with nothing else asking for the plugin."""
    async with Kernel.open() as kernel:
        record = kernel.plugin("symphony-textstats")
        reply = await kernel.bus.request("textstats.analyze", {"text": "a b a"}, timeout=5)
        assert reply.payload["words"] == 3 and record.state.value == "active"
        assert "textstats.analyze" in kernel.registry("bus_handlers")
        with pytest.raises(ValidationError) as refused:
            await kernel.bus.request("textstats.analyze", [1], timeout=5)
        assert refused.value.code == "textstats.bad_request"
    with pytest.raises(NotFoundError):
        Kernel.create(plugins=[], autoload=False).registry("bus_handlers")
