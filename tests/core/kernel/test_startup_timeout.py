"""kernel.startup_timeout bounds each plugin's startup hook; the failure names the plugin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from symphony.commons.errors import OperationTimeoutError, PluginError
from symphony.kernel import Kernel
from symphony.plugins.states import PluginState

HANGING_STARTUP = """
import anyio

@hookimpl
async def symphony_startup(kernel):
    await anyio.sleep(3600)
"""

QUICK_STARTUP = """
@hookimpl
async def symphony_startup(kernel):
    EVENTS.append("started")
"""


@pytest.mark.anyio
async def test_a_hanging_startup_is_isolated_and_named(
    add_plugin: Callable[..., Path], plugin_root: Path, events: list[str]
) -> None:
    add_plugin("p-slow", manifest={"activation": "on-startup"}, source=HANGING_STARTUP)
    add_plugin("p-quick", manifest={"activation": "on-startup"}, source=QUICK_STARTUP)
    async with Kernel.open(
        search_path=[str(plugin_root)], overrides={"kernel.startup_timeout": 0.05}
    ) as kernel:
        record = kernel.plugin("p-slow")
        assert record.state is PluginState.ACTIVATE_FAILED
        assert record.reason == "startup of p-slow did not finish within kernel.startup_timeout = 0.05 s"
        assert kernel.plugin("p-quick").state is PluginState.ACTIVE
    assert events == ["started"]


@pytest.mark.anyio
async def test_a_hanging_startup_propagates_when_configured(
    add_plugin: Callable[..., Path], plugin_root: Path
) -> None:
    add_plugin("p-slow", manifest={"activation": "on-startup"}, source=HANGING_STARTUP)
    with pytest.raises(PluginError) as info:
        async with Kernel.open(
            search_path=[str(plugin_root)],
            overrides={"kernel.startup_timeout": 0.05, "kernel.hook_policy.symphony_startup": "propagate"},
        ):
            pass  # pragma: no cover - never reached
    assert info.value.context["plugin"] == "p-slow"
    assert isinstance(info.value.__cause__, OperationTimeoutError)
    assert info.value.__cause__.code == "plugin.startup_timeout"
