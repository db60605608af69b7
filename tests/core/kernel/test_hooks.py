"""Hooks are checked and called through pluggy; registries are added by the code that owns them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from symphony.commons.errors import ConflictError, NotFoundError, PluginError
from symphony.hookspecs import hookspec
from symphony.kernel import Kernel
from symphony.plugins.states import PluginState

TYPO = """
@hookimpl
def symphony_register_servises(registry):
    registry.add("typo", object())
"""

GREET = """
@hookimpl
def symphony_register_services(registry, kernel):
    EVENTS.append(("services", kernel is not None))
    registry.add("greeter", "hello")
"""

OTHER = """
@hookimpl
def symphony_register_services(registry):
    EVENTS.append("other")
    registry.add("other", "x")
"""


def test_a_misspelled_hook_fails_its_plugin_naming_the_hook(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-typo", manifest={"provides": ["service:typo"]}, source=TYPO)
    add_plugin("p-greet", manifest={"provides": ["service:greeter"]}, source=GREET)
    kernel = make_kernel()
    with pytest.raises(PluginError) as info:
        kernel.service("typo")
    assert info.value.code == "plugin.unknown_hook"
    record = kernel.plugin("p-typo")
    assert record.state is PluginState.ACTIVATE_FAILED
    assert "symphony_register_servises" in (record.reason or "")
    assert "did you mean symphony_register_services" in (record.reason or "")
    assert kernel.pm.get_plugin("p-typo") is None  # unregistered: none of its hooks will run
    assert kernel.service("greeter") == "hello"  # every other plugin carries on


def test_a_misspelled_hook_shows_in_plugins_list_and_inspect(tmp_path: Path) -> None:
    from symphony_sdk.testing import write_plugin_distribution

    root = tmp_path / "site"
    write_plugin_distribution(
        root,
        "p-typo",
        manifest={"provides": ["service:typo"]},
        module_source="from symphony.hookspecs import hookimpl\n" + TYPO,
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    symphony = str(Path(sys.executable).parent / "symphony")
    listed = subprocess.run(
        [symphony, "plugins", "list", "--json", "--load"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 3
    row = {r["id"]: r for r in json.loads(listed.stdout)}["p-typo"]
    assert row["state"] == "activate-failed" and "symphony_register_servises" in row["reason"]
    inspected = subprocess.run(
        [symphony, "plugins", "inspect", "p-typo", "--load"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert inspected.returncode == 3
    assert "symphony_register_servises" in inspected.stdout


def test_only_the_new_plugin_is_called_and_a_monitor_sees_it(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel], events: list[Any]
) -> None:
    add_plugin("p-greet", manifest={"provides": ["service:greeter"]}, source=GREET)
    add_plugin("p-other", manifest={"provides": ["service:other"]}, source=OTHER)
    kernel = make_kernel()
    seen: list[tuple[str, list[str], dict[str, Any]]] = []
    kernel.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, [i.plugin_name for i in impls], dict(kwargs))),
        lambda outcome, name, impls, kwargs: None,
    )
    traced: list[str] = []
    kernel.pm.trace.root.setwriter(traced.append)
    kernel.pm.enable_tracing()
    kernel.service("greeter")
    kernel.service("other")
    assert events == [("services", True), "other"]  # p-greet's implementation ran once, not again
    calls = [(name, plugins) for name, plugins, _ in seen if name == "symphony_register_services"]
    assert calls == [("symphony_register_services", ["p-greet"]), ("symphony_register_services", ["p-other"])]
    assert any("symphony_register_services" in line for line in traced)


class _OwnSpecs:
    @hookspec
    def symphony_register_widgets(self, registry: list[str], kernel: Kernel) -> None:
        """Test registry hook."""


WIDGETS = """
@hookimpl
def symphony_register_widgets(registry):
    registry.append("{name}")
"""


def test_a_registry_added_later_receives_earlier_and_later_plugins(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-early", manifest={"provides": ["widget:early"]}, source=WIDGETS.format(name="early"))
    add_plugin("p-late", manifest={"provides": ["widget:late"]}, source=WIDGETS.format(name="late"))
    kernel = make_kernel()
    kernel.add_hookspecs(_OwnSpecs)
    kernel.activate("p-early")
    with pytest.raises(NotFoundError):
        kernel.registry("widgets")
    widgets = kernel.add_registry("widgets", "symphony_register_widgets", list)
    assert widgets == ["early"]  # replayed for the plugin activated before the registry existed
    kernel.activate("p-late")
    assert widgets == ["early", "late"]
    assert kernel.add_registry("widgets", "symphony_register_widgets", list) is widgets
    assert "widgets" in kernel.registry_names()
    with pytest.raises(ConflictError):
        kernel.add_registry("widgets", "symphony_register_services", list)
    with pytest.raises(NotFoundError) as info:
        kernel.add_registry("gadgets", "symphony_register_gadgets", list)
    assert info.value.code == "kernel.no_hookspec"


TRANSPORT = """
class Fake:
    pass

@hookimpl
def symphony_register_transports(registry):
    registry.add("fake", Fake)
"""


def test_the_bus_adds_its_registries_and_gets_earlier_plugins(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-fake", manifest={"provides": ["transport:fake"]}, source=TRANSPORT)
    kernel = make_kernel()
    kernel.activate("p-fake")  # before the bus exists: no transports registry yet
    assert "transports" not in kernel.registry_names()
    assert "fake" in kernel.bus.transports
    assert {"codecs", "message_types", "transports"} <= set(kernel.registry_names())


def test_kernel_names_only_its_own_registries() -> None:
    kernel = Kernel.create(autoload=False)
    assert kernel.registry_names() == ["commands", "services"]
    with pytest.raises(NotFoundError) as info:
        kernel.registry("node_types")
    assert info.value.code == "kernel.no_registry"


OPTIONAL_WIDGET = """
@hookimpl(optionalhook=True)
def symphony_register_widgets(registry):
    registry.append("optional")
"""


def test_an_optional_hook_of_a_later_plugin_is_replayed_when_its_registry_arrives(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-opt", manifest={"provides": ["widget:opt"]}, source=OPTIONAL_WIDGET)
    add_plugin("p-plain", manifest={"provides": ["widget:plain"]}, source=WIDGETS.format(name="plain"))
    kernel = make_kernel()
    kernel.activate("p-opt")  # no hookspec yet: allowed because the implementation is optional
    with pytest.raises(PluginError):
        kernel.activate("p-plain")  # not optional and no hookspec: an unknown hook
    assert "symphony_register_widgets" in (kernel.plugin("p-plain").reason or "")
    kernel.add_hookspecs(_OwnSpecs)
    assert kernel.add_registry("widgets", "symphony_register_widgets", list) == ["optional"]
