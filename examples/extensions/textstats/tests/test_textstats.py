"""The example plugin tested against the real kernel through the SDK's pytest fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from symphony_sdk import PermissionDeniedError, PluginState, ValidationError
from symphony_textstats import TextStats, TextStatsOperator

PLUGIN = "symphony_textstats.plugin"
PLUGINS = ["symphony_workflow.plugin", PLUGIN]  # it requires the workflow plugin (node types)


def test_statistics_of_a_text() -> None:
    stats = TextStats().analyze_text("The cat and the hat.\nThe end\n", top=2)
    assert stats.lines == 2
    assert stats.words == 7
    assert stats.top_words == (("the", 3), ("cat", 1))
    assert stats.characters == len("The cat and the hat.\nThe end\n")


def test_empty_text() -> None:
    stats = TextStats().analyze_text("")
    assert (stats.lines, stats.words, stats.average_word_length, stats.top_words) == (0, 0, 0.0, ())


def test_service_is_provided_lazily_and_configured(symphony_kernel_factory) -> None:
    kernel = symphony_kernel_factory(
        plugins=PLUGINS, overrides={"textstats": {"top": 1, "words_per_minute": 1}}
    )
    assert kernel.plugin("symphony-textstats").state is PluginState.DISCOVERED
    service = kernel.service("text-stats")
    assert kernel.plugin("symphony-textstats").state is PluginState.ACTIVE
    stats = service.analyze_text("a a b")
    assert stats.top_words == (("a", 2),)
    assert stats.reading_minutes == 3


def test_node_type_is_registered(symphony_kernel_factory) -> None:
    kernel = symphony_kernel_factory(plugins=PLUGINS)
    assert [r.id for r in kernel.providers("node-type:textstats.")] == ["symphony-textstats"]
    kernel.activate_slot("node-type:textstats.analyze")
    assert kernel.plugin("symphony-workflow").state is PluginState.ACTIVE  # activated first: required
    assert kernel.registry("node_types").get("textstats.analyze").provider == "symphony-textstats"


@pytest.mark.symphony_plugins(*PLUGINS)
def test_marker_loads_the_plugin(symphony_kernel) -> None:
    assert symphony_kernel.service("text-stats").analyze_text("x y").words == 2


def test_file_size_limit_and_root_confinement(symphony_kernel_factory, tmp_path: Path) -> None:
    kernel = symphony_kernel_factory(plugins=PLUGINS, overrides={"textstats": {"max_bytes": 10}})
    service = kernel.service("text-stats")
    big = tmp_path / "big.txt"
    big.write_text("word " * 10)
    with pytest.raises(ValidationError) as info:
        service.analyze_file(big)
    assert info.value.code == "fs.too_large"
    outside = tmp_path.parent / "outside.txt"
    outside.write_text("x")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(PermissionDeniedError):
        service.analyze_file(outside, root=root)


def test_operator_checks_inputs() -> None:
    op = TextStatsOperator()
    assert op.run({"text": "one two"})["stats"]["words"] == 2
    with pytest.raises(ValidationError) as info:
        op.run({"txt": "typo"})
    assert info.value.code == "operator.invalid_input"


def test_bad_config_value_fails_this_plugin_naming_the_key(symphony_kernel_factory) -> None:
    from symphony_sdk import PluginError

    kernel = symphony_kernel_factory(plugins=PLUGINS, overrides={"textstats": {"top": -1}})
    record = kernel.plugin("symphony-textstats")
    assert record.state.value == "misconfigured"
    assert "textstats.top" in record.reason and "minimum=0" in record.reason
    with pytest.raises(PluginError) as info:
        kernel.service("text-stats")
    assert "textstats.top" in str(info.value)


def test_cli_command_runs_through_the_real_symphony_entry_point(tmp_path: Path) -> None:
    text = tmp_path / "poem.txt"
    text.write_text("so much depends upon a red wheel barrow\n")
    symphony = Path(sys.executable).parent / "symphony"
    proc = subprocess.run(
        [str(symphony), "textstats", str(text), "--json", "--top", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["words"] == 8
    assert data["top_words"] == [["so", 1]]
