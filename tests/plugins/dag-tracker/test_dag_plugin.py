"""The ``dag-tracker`` service in a real kernel: config, lazy activation of node-type plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony.commons.errors import NotFoundError
from symphony_dag_tracker import DagTracker
from symphony_sdk import PluginState
from symphony_workflow import WorkflowBuilder

PLUGINS = [
    "symphony_workflow.plugin",
    "symphony_artifact_store.plugin",
    "symphony_dag_tracker.plugin",
    "symphony_textstats.plugin",
]

pytestmark = pytest.mark.anyio


def _report_workflow():
    return (
        WorkflowBuilder("report")
        .input("text", "text")
        .operator("stats", "textstats.analyze", inputs={"text": "text"}, outputs={"stats": "json"}, config={"top": 2})
        .connect_from("text")
        .output("result", "json")
        .connect_from("stats.stats")
        .build(node_types={"textstats.analyze"})
    )


async def test_the_service_runs_textstats_and_activates_it_on_first_execution(
    symphony_kernel_factory, tmp_path: Path
) -> None:
    kernel = symphony_kernel_factory(
        plugins=PLUGINS,
        overrides={"dag_tracker": {"state_dir": str(tmp_path / "runs"), "max_concurrency": 4},
                   "artifact_store": {"root": str(tmp_path / "store")}},
    )
    tracker: DagTracker = kernel.service("dag-tracker")
    assert tracker.settings.max_concurrency == 4
    wf = _report_workflow()
    handle = tracker.prepare(wf, inputs={"text": "the cat and the hat and the bat"})
    assert kernel.plugin("symphony-textstats").state is PluginState.DISCOVERED  # checked from its manifest only
    result = await handle.run()
    assert result.ok, result.error
    assert kernel.plugin("symphony-textstats").state is PluginState.ACTIVE
    assert result.outputs["result"]["words"] == 8
    assert result.outputs["result"]["top_words"] == [["the", 3], ["and", 2]]
    again = await tracker.run(wf, inputs={"text": "the cat and the hat and the bat"})
    assert again.cached == 1 and again.nodes["stats"].cached
    assert (tmp_path / "runs" / "checkpoints.db").exists()


async def test_an_unknown_type_in_a_kernel_names_the_installed_ones(symphony_kernel_factory, tmp_path: Path) -> None:
    kernel = symphony_kernel_factory(
        plugins=PLUGINS, overrides={"dag_tracker": {"state_dir": str(tmp_path / "runs")}}
    )
    tracker: DagTracker = kernel.service("dag-tracker")
    wf = (
        WorkflowBuilder("x")
        .operator("a", "text.summarize", outputs={"text": "text"})
        .build()
    )
    with pytest.raises(NotFoundError) as info:
        tracker.prepare(wf)
    assert "text.summarize" in str(info.value) and "textstats.analyze" in str(info.value)
