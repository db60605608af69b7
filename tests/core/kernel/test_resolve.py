from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from symphony._version import PLUGIN_API_VERSION
from symphony.commons.errors import ConfigError, PluginError
from symphony.kernel import Kernel
from symphony.plugins.manifest import parse_manifest
from symphony.plugins.resolve import resolve
from symphony.plugins.states import PluginRecord, PluginState


def test_incompatible_api_is_reported_before_import(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-future", manifest={"api": ">=2.0"}, source="raise RuntimeError('must not import')\n")
    kernel = make_kernel()
    record = kernel.plugin("p-future")
    assert record.state is PluginState.INCOMPATIBLE
    assert ">=2.0" in (record.reason or "") and "0.1.0" in (record.reason or "")
    with pytest.raises(PluginError) as info:
        kernel.activate("p-future")
    assert info.value.code == "plugin.incompatible_api"


def test_slot_conflict_names_both_plugins(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-a", manifest={"provides": ["transport:carrier-pigeon"]})
    add_plugin("p-b", manifest={"provides": ["transport:carrier-pigeon"]})
    add_plugin("p-c", manifest={"provides": ["transport:other"]})
    kernel = make_kernel()
    for plugin_id in ("p-a", "p-b"):
        record = kernel.plugin(plugin_id)
        assert record.state is PluginState.CONFLICTING
        assert "p-a" in (record.reason or "") and "p-b" in (record.reason or "")
        assert "transport:carrier-pigeon" in (record.reason or "")
    assert kernel.plugin("p-c").state is PluginState.DISCOVERED
    with pytest.raises(PluginError) as info:
        kernel.activate_slot("transport:carrier-pigeon")
    assert info.value.code == "plugin.slot_conflict"


def test_requires_cycle_is_spelled_out(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-a", manifest={"requires": ["p-b"]})
    add_plugin("p-b", manifest={"requires": ["p-c"]})
    add_plugin("p-c", manifest={"requires": ["p-a"]})
    add_plugin("p-d", manifest={"requires": ["p-a"]})
    add_plugin("p-free")
    kernel = make_kernel()
    for plugin_id in ("p-a", "p-b", "p-c"):
        record = kernel.plugin(plugin_id)
        assert record.state is PluginState.INCOMPATIBLE
        assert record.error_code == "plugin.dependency_cycle"
        reason = record.reason or ""
        assert reason.startswith("dependency cycle: ")
        path = reason.removeprefix("dependency cycle: ").split(" -> ")
        assert path[0] == path[-1] and set(path) == {"p-a", "p-b", "p-c"}
        for a, b in itertools.pairwise(path):  # each arrow reads "requires"
            assert kernel.plugin(a).manifest.requires == (b,)  # type: ignore[union-attr]
    assert kernel.plugin("p-d").state is PluginState.INCOMPATIBLE
    assert kernel.plugin("p-free").state is PluginState.DISCOVERED


def test_a_cycle_fails_what_requires_it_at_any_distance(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-a", manifest={"requires": ["p-b"]})
    add_plugin("p-b", manifest={"requires": ["p-a"]})
    add_plugin("p-near", manifest={"requires": ["p-a"]})
    add_plugin("p-far", manifest={"requires": ["p-near"]})
    add_plugin("p-after", manifest={"after": ["p-far"]})
    kernel = make_kernel()
    for plugin_id in ("p-near", "p-far"):
        record = kernel.plugin(plugin_id)
        assert record.state is PluginState.INCOMPATIBLE
        assert record.error_code == "plugin.missing_requirement"
    assert "p-near" in (kernel.plugin("p-far").reason or "")
    assert kernel.plugin("p-after").state is PluginState.DISCOVERED


def test_missing_requirement(add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]) -> None:
    add_plugin("p-needy", manifest={"requires": ["p-absent"]})
    record = make_kernel().plugin("p-needy")
    assert record.state is PluginState.INCOMPATIBLE
    assert "p-absent" in (record.reason or "") and "not installed" in (record.reason or "")


def test_duplicate_plugin_id_conflicts(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel], plugin_root: Path
) -> None:
    add_plugin("p-dup")
    from symphony.plugins.manifest import load_manifest

    manifest = load_manifest(plugin_root / "p_dup" / "symphony.toml")
    kernel = make_kernel(plugins=[(manifest, object())])
    assert all(r.state is PluginState.CONFLICTING for r in kernel.plugins if r.id == "p-dup")
    assert len([r for r in kernel.plugins if r.id == "p-dup"]) == 2


def test_disabled_by_config(add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]) -> None:
    add_plugin("p-off", manifest={"provides": ["service:off"]})
    add_plugin("p-on")
    kernel = make_kernel(overrides={"plugins": {"disabled": ["p-off"]}})
    assert kernel.plugin("p-off").state is PluginState.DISABLED
    assert kernel.plugin("p-on").state is PluginState.DISCOVERED
    assert kernel.failures() == []
    with pytest.raises(PluginError):
        kernel.service("off")


def test_enabled_allow_list(add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]) -> None:
    add_plugin("p-one")
    add_plugin("p-two")
    kernel = make_kernel(overrides={"plugins": {"enabled": ["p-two"]}})
    assert kernel.plugin("p-one").state is PluginState.DISABLED
    assert kernel.plugin("p-two").state is PluginState.DISCOVERED


def test_dependency_order_follows_requires_and_after(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel], events: list
) -> None:
    startup = "@hookimpl\ndef symphony_activate(kernel):\n    EVENTS.append({name!r})\n"
    add_plugin(
        "p-c", manifest={"activation": "on-startup", "after": ["p-b"]}, source=startup.format(name="p-c")
    )
    add_plugin(
        "p-b", manifest={"activation": "on-startup", "requires": ["p-a"]}, source=startup.format(name="p-b")
    )
    add_plugin("p-a", manifest={"activation": "on-startup"}, source=startup.format(name="p-a"))
    make_kernel()
    assert events == ["p-a", "p-b", "p-c"]


def test_strict_mode_turns_problems_into_errors(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_plugin("p-future", manifest={"api": ">=9"})
    monkeypatch.setenv("SYMPHONY_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as info:
        make_kernel()
    assert info.value.code == "plugin.strict"
    assert "p-future" in info.value.message


def test_plugin_config_section_is_validated(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"level": {"type": "integer", "default": 3}},
    }
    add_plugin("p-conf", manifest={"config_section": "pconf", "config_schema": schema})
    assert make_kernel().config.section("pconf")["level"] == 3
    assert make_kernel(overrides={"pconf": {"level": 7}}).config.section("pconf")["level"] == 7
    kernel = make_kernel(overrides={"pconf": {"level": "high"}})  # only the plugin fails
    record = kernel.plugin("p-conf")
    assert record.state is PluginState.MISCONFIGURED
    assert record.error_code == "plugin.config_invalid"
    assert record.reason is not None
    assert "override" in record.reason and "pconf.level" in record.reason and "type=integer" in record.reason
    with pytest.raises(ConfigError):  # a core section stays strict
        make_kernel(overrides={"logging": {"level": "loud"}})


def test_plugin_may_not_claim_a_core_config_section(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    add_plugin("p-greedy", manifest={"config_section": "logging", "config_schema": {"type": "object"}})
    record = make_kernel().plugin("p-greedy")
    assert record.state is PluginState.CONFLICTING
    assert record.error_code == "plugin.config_section_conflict"


def _record(plugin_id: str, distribution: str, **manifest: object) -> PluginRecord:
    table = {"id": plugin_id, "version": "1.0", "kind": "service", "api": ">=0.1,<0.2", **manifest}
    return PluginRecord(
        id=plugin_id,
        entry_point=f"{plugin_id}.plugin",
        manifest=parse_manifest({"plugin": table}),
        distribution=distribution,
    )


@pytest.mark.parametrize(
    "claim",
    [
        {"provides": ["transport:unix"]},
        {"commands": [{"name": "workflow"}]},
        {"config_section": "workflow"},
    ],
)
def test_a_part_of_symphony_keeps_its_claim_against_a_newcomer(claim: dict[str, object]) -> None:
    own = _record("symphony-workflow", "symphony_workflow", **claim)  # metadata spells it either way
    newcomer = _record("evil", "evil", **claim)
    usable = resolve([newcomer, own], kernel_api=PLUGIN_API_VERSION)
    assert usable == [own] and own.state is PluginState.DISCOVERED
    assert newcomer.state is PluginState.CONFLICTING
    assert "symphony-workflow" in (newcomer.reason or "") and "evil" in (newcomer.reason or "")
    # the user hands it over by disabling Symphony's own plugin
    own2, newcomer2 = (
        _record("symphony-workflow", "symphony-workflow", **claim),
        _record("evil", "evil", **claim),
    )
    usable = resolve([newcomer2, own2], kernel_api=PLUGIN_API_VERSION, disabled=["symphony-workflow"])
    assert usable == [newcomer2]


def test_a_duplicate_id_keeps_the_copy_from_symphony() -> None:
    own = _record("symphony-transport-unix", "symphony-transport-unix")
    fake = _record("symphony-transport-unix", "fake-unix")
    resolve([fake, own], kernel_api=PLUGIN_API_VERSION)
    assert own.state is PluginState.DISCOVERED and fake.state is PluginState.CONFLICTING


def test_explicit_plugins_are_never_taken_for_symphony_s_own() -> None:
    first = _record("a", "symphony-workflow", commands=[{"name": "x"}])
    first.origin = "explicit"
    second = _record("b", "b", commands=[{"name": "x"}])
    resolve([first, second], kernel_api=PLUGIN_API_VERSION)
    assert first.state is second.state is PluginState.CONFLICTING


def test_reserved_commands_and_sections() -> None:
    cmd = _record("p-cmd", "p-cmd", commands=[{"name": "config"}])
    sec = _record("p-sec", "p-sec", config_section="bus")
    resolve(
        [cmd, sec], kernel_api=PLUGIN_API_VERSION, reserved_commands={"config"}, reserved_sections={"bus"}
    )
    assert cmd.state is sec.state is PluginState.CONFLICTING
    assert cmd.error_code == "plugin.command_conflict" and sec.error_code == "plugin.config_section_conflict"


def test_unclaimed_section_warns_and_a_bad_one_fails_its_plugin_only(
    add_plugin: Callable[..., Path], make_kernel: Callable[..., Kernel]
) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"n": {"type": "integer", "maximum": 5}},
    }
    add_plugin("p-five", manifest={"config_section": "five", "config_schema": schema})
    add_plugin("p-needs", manifest={"requires": ["p-five"]})
    add_plugin("p-free")
    kernel = make_kernel(overrides={"five": {"n": 6}, "gone": {"x": 1}})
    assert kernel.plugin("p-five").state is PluginState.MISCONFIGURED
    assert "maximum=5" in (kernel.plugin("p-five").reason or "")
    assert kernel.plugin("p-needs").state is PluginState.INCOMPATIBLE  # its requirement failed
    assert kernel.plugin("p-free").state is PluginState.DISCOVERED
    assert [w.context["section"] for w in kernel.config.warnings] == ["gone"]
    kernel = make_kernel(overrides={"five": {"m": 1}})
    assert kernel.plugin("p-five").state is PluginState.MISCONFIGURED
    assert "five.m" in (kernel.plugin("p-five").reason or "")
