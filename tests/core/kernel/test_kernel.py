from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from symphony.commons.errors import NotFoundError, PluginError
from symphony.hookspecs import hookimpl, hookspec
from symphony.kernel import Kernel
from symphony.plugins.states import PluginState

SERVICE = """
class Greeter:
    def greet(self, name):
        return f"hello {name}"

@hookimpl
def symphony_register_services(registry):
    EVENTS.append("register")
    registry.add("greeter", Greeter())
"""


def test_service_activates_its_plugin_lazily(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel], events: list
) -> None:
    add_plugin("p-greet", manifest={"provides": ["service:greeter"]}, source=SERVICE)
    kernel = make_kernel()
    assert "p_greet.plugin" not in sys.modules
    assert kernel.plugin("p-greet").state is PluginState.DISCOVERED
    assert kernel.service("greeter").greet("ada") == "hello ada"
    assert kernel.plugin("p-greet").state is PluginState.ACTIVE
    assert kernel.service("greeter") is kernel.service("greeter")
    assert events == ["register"]
    assert set(kernel.plugin("p-greet").timings) == {"import", "activate"}


def test_unknown_service_is_not_found_with_what_exists(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-greet", manifest={"provides": ["service:greeter"]}, source=SERVICE)
    with pytest.raises(NotFoundError) as info:
        make_kernel().service("nope")
    assert info.value.context["available"] == ["greeter"]


def test_import_failure_is_isolated_and_kept(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin(
        "p-boom", manifest={"provides": ["service:boom"]}, source="raise RuntimeError('kaboom at import')\n"
    )
    add_plugin("p-greet", manifest={"provides": ["service:greeter"]}, source=SERVICE)
    kernel = make_kernel()
    with pytest.raises(PluginError) as info:
        kernel.service("boom")
    assert info.value.code == "plugin.import_failed"
    assert info.value.context["plugin"] == "p-boom"
    record = kernel.plugin("p-boom")
    assert record.state is PluginState.IMPORT_FAILED
    assert "kaboom at import" in (record.reason or "")
    assert "RuntimeError" in (record.traceback or "")
    assert kernel.service("greeter").greet("x") == "hello x"
    with pytest.raises(PluginError):  # asked again: same clear error, no second import
        kernel.service("boom")


def test_activation_failure_unregisters_the_plugin(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin(
        "p-badact",
        manifest={"provides": ["service:bad"]},
        source="@hookimpl\ndef symphony_activate(kernel):\n    raise ValueError('no config')\n",
    )
    kernel = make_kernel()
    with pytest.raises(PluginError) as info:
        kernel.service("bad")
    assert info.value.code == "plugin.activate_failed"
    record = kernel.plugin("p-badact")
    assert record.state is PluginState.ACTIVATE_FAILED
    assert "no config" in (record.reason or "")
    assert kernel.pm.get_plugin("p-badact") is None


def test_wrong_hookimpl_signature_is_an_activation_failure(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-sig", source="@hookimpl\ndef symphony_activate(kernel, surprise):\n    pass\n")
    kernel = make_kernel()
    with pytest.raises(PluginError) as info:
        kernel.activate("p-sig")
    assert info.value.code == "plugin.bad_hookimpl"


def test_requirement_is_activated_first(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel], events: list
) -> None:
    act = "@hookimpl\ndef symphony_activate(kernel):\n    EVENTS.append({name!r})\n"
    add_plugin("p-base", source=act.format(name="p-base"))
    add_plugin("p-top", manifest={"requires": ["p-base"]}, source=act.format(name="p-top"))
    make_kernel().activate("p-top")
    assert events == ["p-base", "p-top"]


def test_failed_requirement_fails_the_dependent(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-base", source="raise ImportError('missing wheel')\n")
    add_plugin("p-top", manifest={"requires": ["p-base"]})
    kernel = make_kernel()
    with pytest.raises(PluginError):
        kernel.activate("p-top")
    assert kernel.plugin("p-top").state is PluginState.ACTIVATE_FAILED
    assert "p-base" in (kernel.plugin("p-top").reason or "")


def test_on_startup_failure_does_not_stop_the_kernel(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-eager", manifest={"activation": "on-startup"}, source="raise RuntimeError('eager boom')\n")
    add_plugin("p-greet", manifest={"provides": ["service:greeter"]}, source=SERVICE)
    kernel = make_kernel()
    assert kernel.plugin("p-eager").state is PluginState.IMPORT_FAILED
    assert kernel.service("greeter").greet("y") == "hello y"


def test_slot_activation_and_providers(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-t1", manifest={"provides": ["codec:one"]})
    add_plugin("p-t2", manifest={"provides": ["codec:two"]})
    kernel = make_kernel()
    assert [r.id for r in kernel.providers("codec:")] == ["p-t1", "p-t2"]
    assert kernel.activate_slot("codec:two").state is PluginState.ACTIVE
    assert kernel.plugin("p-t1").state is PluginState.DISCOVERED
    assert {r.id for r in kernel.activate_providers("codec:")} == {"p-t1", "p-t2"}
    with pytest.raises(NotFoundError):
        kernel.activate_slot("codec:three")


class _Specs:
    @hookspec
    def symphony_collect_words(self) -> list[str]:  # type: ignore[empty-body]
        """Return words."""


def test_plugins_can_add_hookspecs_and_hooks_fan_out(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-w1", source="@hookimpl\ndef symphony_collect_words():\n    return 'alpha'\n")
    add_plugin("p-w2", source="@hookimpl\ndef symphony_collect_words():\n    return 'beta'\n")
    kernel = make_kernel()
    kernel.add_hookspecs(_Specs)
    kernel.activate("p-w1")
    kernel.activate("p-w2")
    assert sorted(kernel.hook.symphony_collect_words()) == ["alpha", "beta"]


def test_explicit_plugin_object_with_manifest(tmp_path: Path) -> None:
    from symphony.plugins.manifest import parse_manifest

    manifest = parse_manifest(
        {
            "plugin": {
                "id": "host-thing",
                "version": "1",
                "kind": "service",
                "api": ">=0.1",
                "provides": ["service:thing"],
            }
        }
    )

    class HostPlugin:
        @hookimpl
        def symphony_register_services(self, registry):
            registry.add("thing", 42)

    kernel = Kernel.create(autoload=False, plugins=[(manifest, HostPlugin())])
    assert kernel.service("thing") == 42
    assert kernel.registry("services").owner("thing") == "host-thing"


def test_a_service_factory_may_ask_for_another_lazy_service() -> None:
    from symphony.services import ServiceRegistry

    registry = ServiceRegistry()
    registry.add_factory("store", lambda: {"kind": "store"})
    registry.add_factory("manager", lambda: ("manager of", registry.get("store")))
    assert registry.get("manager") == ("manager of", {"kind": "store"})
    assert registry.get("store") is registry.get("manager")[1]


def test_a_plugin_extends_a_command_registered_later_or_earlier() -> None:
    from symphony.services import CommandRegistry

    seen: list[tuple[str, object]] = []
    registry = CommandRegistry()
    registry.extend("artifacts", lambda group: seen.append(("early", group)))
    assert seen == []
    registry.add("GROUP", name="artifacts")
    assert seen == [("early", "GROUP")]
    registry.extend("artifacts", lambda group: seen.append(("late", group)))
    assert seen == [("early", "GROUP"), ("late", "GROUP")]


def test_host_can_register_services_directly() -> None:
    kernel = Kernel.create(autoload=False)
    kernel.register_service("clock", "tick")
    assert kernel.service("clock") == "tick"
    with pytest.raises(NotFoundError):
        kernel.registry("no-such-registry")


LIFECYCLE = """
import anyio

@hookimpl
async def symphony_startup(kernel):
    await anyio.sleep(0)
    EVENTS.append(("start", {name!r}))

@hookimpl
async def symphony_shutdown(kernel):
    await anyio.sleep(0)
    EVENTS.append(("stop", {name!r}))
"""


@pytest.mark.anyio
async def test_async_lifecycle_runs_in_dependency_order(
    add_plugin: Callable[..., Path], plugin_root: Path, events: list
) -> None:
    add_plugin("p-db", manifest={"activation": "on-startup"}, source=LIFECYCLE.format(name="p-db"))
    add_plugin(
        "p-api",
        manifest={"activation": "on-startup", "requires": ["p-db"]},
        source=LIFECYCLE.format(name="p-api"),
    )
    async with Kernel.open(search_path=[str(plugin_root)]) as kernel:
        assert kernel.running
        assert events == [("start", "p-db"), ("start", "p-api")]
    assert events[2:] == [("stop", "p-api"), ("stop", "p-db")]
    assert not kernel.running


@pytest.mark.anyio
async def test_lazy_activation_in_a_running_kernel_awaits_startup(
    add_plugin: Callable[..., Path], plugin_root: Path, events: list
) -> None:
    add_plugin(
        "p-lazy",
        manifest={"provides": ["service:greeter"]},
        source=SERVICE + LIFECYCLE.format(name="p-lazy"),
    )
    async with Kernel.open(search_path=[str(plugin_root)]) as kernel:
        assert events == []
        greeter = await kernel.aservice("greeter")
        assert greeter.greet("z") == "hello z"
        assert events == ["register", ("start", "p-lazy")]
    assert events[-1] == ("stop", "p-lazy")


FAILING_STARTUP = """
@hookimpl
async def symphony_startup(kernel):
    raise RuntimeError("startup boom")
"""


@pytest.mark.anyio
async def test_startup_failure_is_isolated_by_default(
    add_plugin: Callable[..., Path], plugin_root: Path, events: list
) -> None:
    add_plugin("p-bad", manifest={"activation": "on-startup"}, source=FAILING_STARTUP)
    add_plugin("p-good", manifest={"activation": "on-startup"}, source=LIFECYCLE.format(name="p-good"))
    async with Kernel.open(search_path=[str(plugin_root)]) as kernel:
        record = kernel.plugin("p-bad")
        assert record.state is PluginState.ACTIVATE_FAILED
        assert "startup boom" in (record.reason or "")
        assert ("start", "p-good") in events
    assert ("stop", "p-good") in events


@pytest.mark.anyio
async def test_startup_failure_propagates_when_configured(
    add_plugin: Callable[..., Path], plugin_root: Path
) -> None:
    add_plugin("p-bad", manifest={"activation": "on-startup"}, source=FAILING_STARTUP)
    with pytest.raises(PluginError) as info:
        async with Kernel.open(
            search_path=[str(plugin_root)],
            overrides={"kernel": {"hook_policy": {"symphony_startup": "propagate"}}},
        ):
            pass  # pragma: no cover - never reached
    assert info.value.code == "plugin.startup_failed"


@pytest.mark.anyio
async def test_shutdown_failure_is_logged_and_others_still_stop(
    add_plugin: Callable[..., Path], plugin_root: Path, events: list
) -> None:
    add_plugin(
        "p-a",
        manifest={"activation": "on-startup"},
        source="@hookimpl\ndef symphony_shutdown(kernel):\n    raise RuntimeError('stop boom')\n",
    )
    add_plugin(
        "p-b", manifest={"activation": "on-startup", "requires": ["p-a"]}, source=LIFECYCLE.format(name="p-b")
    )
    async with Kernel.open(search_path=[str(plugin_root)]):
        pass
    assert ("stop", "p-b") in events


@pytest.mark.anyio
async def test_start_soon_runs_in_the_kernel_task_group(plugin_root: Path) -> None:
    import anyio

    done = anyio.Event()

    async def work() -> None:
        done.set()

    async with Kernel.open(search_path=[str(plugin_root)]) as kernel:
        kernel.start_soon(work)
        with anyio.fail_after(5):
            await done.wait()
    with pytest.raises(PluginError):
        kernel.start_soon(work)


@pytest.mark.anyio
async def test_host_exceptions_cross_open_unwrapped(plugin_root: Path) -> None:
    with pytest.raises(KeyError):
        async with Kernel.open(search_path=[str(plugin_root)]):
            raise KeyError("host bug")
