"""Instrument nodes through arbitration and the model pool: a real instrument that loads a tiny
word-frequency model from a file, run by a real kernel with the installed pool-manager and
arbitration plugins (configured through the kernel's config)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony import Kernel
from symphony.commons.errors import ValidationError
from symphony.hookspecs import hookimpl
from symphony.plugins.manifest import parse_manifest
from symphony_conductor import Conductor, RunRequest
from symphony_pool_manager import ResourceEstimate
from symphony_sdk import Instrument
from symphony_sdk.testing import connect_test_client

pytestmark = pytest.mark.anyio

WORDS = {"sport": "goal match team win score", "food": "bread soup cheese salt bake"}


class WordModel:
    """label -> word counts, read from a JSON file."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text("utf-8"))
        self.counts = {label: Counter(text.split()) for label, text in data.items()}

    def classify(self, text: str) -> str:
        words = text.lower().split()
        return str(max(sorted(self.counts), key=lambda label: sum(self.counts[label][w] for w in words)))


class WordLoader:
    """A pool loader for :class:`WordModel` (counts its loads and unloads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loads = 0
        self.unloads = 0

    def estimate(self) -> ResourceEstimate:
        return ResourceEstimate(memory=4096)

    def load(self) -> WordModel:
        self.loads += 1
        return WordModel(self.path)

    def unload(self, instance: Any) -> None:
        self.unloads += 1

    def health(self, instance: Any) -> bool:
        return True


class Classify(Instrument):
    """Labels ``text`` with the word model; waits on ``gate`` first when one is set."""

    model_key = "test.words"

    def __init__(self, loader: WordLoader) -> None:
        self.loader = loader
        self.gate: anyio.Event | None = None
        self.fail = False
        self.started: list[str] = []
        self.models: list[Any] = []

    def model_loader(self) -> WordLoader:
        return self.loader

    async def execute(self, inputs: Any, context: Any) -> dict[str, Any]:
        self.started.append(context.run_id)
        self.models.append(context.model)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("the classifier broke")
        model = context.model if context.model is not None else WordModel(self.loader.path)  # no pool: its own
        return {"label": model.classify(inputs["text"])}


class ClassifyOther(Classify):
    """The same instrument on another model key (so two runs compete for the pool's one slot)."""

    model_key = "test.words-other"


class ClassifySync(Instrument):
    """A blocking-free but synchronous instrument on the pool's model (it is never run inline)."""

    model_key = "test.words"

    def __init__(self, loader: WordLoader) -> None:
        self.loader = loader

    def model_loader(self) -> WordLoader:
        return self.loader

    def execute(self, inputs: Any, context: Any) -> dict[str, Any]:  # type: ignore[override]
        return {"label": context.model.classify(inputs["text"])}


class _Plugin:
    def __init__(self, main: Classify, other: Classify) -> None:
        self.main, self.other = main, other
        self.sync = ClassifySync(main.loader)

    @hookimpl
    def symphony_register_node_types(self, registry: Any) -> None:
        types = (("test.classify", self.main), ("test.classify-other", self.other), ("test.classify-sync", self.sync))
        for name, impl in types:
            registry.add(name, kind="instrument", inputs={"text": "text"}, outputs={"label": "text"}, implementation=impl)


_MANIFEST = parse_manifest(
    {
        "plugin": {
            "id": "test-classify",
            "version": "0.1.0",
            "kind": "instrument",
            "api": ">=0.1,<0.2",
            "summary": "a word-frequency classifier",
            "provides": ["node-type:test.classify", "node-type:test.classify-other", "node-type:test.classify-sync"],
            "requires": ["symphony-workflow"],
        }
    }
)


def _workflow(node_type: str = "test.classify") -> dict[str, Any]:
    nodes = [
        {"id": "document", "kind": "input", "type": "input", "outputs": [{"name": "value", "type": "text"}]},
        {
            "id": "classify",
            "kind": "instrument",
            "type": node_type,
            "inputs": [{"name": "text", "type": "text"}],
            "outputs": [{"name": "label", "type": "text"}],
        },
        {"id": "result", "kind": "output", "type": "output", "inputs": [{"name": "value", "type": "text"}]},
    ]
    edges = [
        {"source": "document", "source_port": "value", "target": "classify", "target_port": "text"},
        {"source": "classify", "source_port": "label", "target": "result", "target_port": "value"},
    ]
    workflow = {"id": "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b", "name": "Classify", "nodes": nodes, "edges": edges}
    return {"schema_version": "1.0", "workflow": workflow}


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "words.json"
    path.write_text(json.dumps(WORDS), "utf-8")
    return path


OVERRIDES = {
    "pool_manager": {"count_budget": 1, "keep_alive": "10m"},
    "arbitration": {"capacity": {"model_instances": 1}, "preemption": True},
}


async def _until(predicate: Any) -> None:
    with anyio.fail_after(20):
        while not predicate():
            await anyio.sleep(0.01)


def _decisions(engine: Any) -> list[dict[str, Any]]:
    assert engine.audit is not None
    return [r for r in engine.audit.records if r["kind"] == "decision"]


async def test_an_instrument_node_runs_through_arbitration_and_the_pool(
    store_env: Any, templates_env: Any, model_file: Path
) -> None:
    plugin = _Plugin(Classify(WordLoader(model_file)), ClassifyOther(WordLoader(model_file)))
    async with Kernel.open(env="test", plugins=[(_MANIFEST, plugin)], overrides=OVERRIDES) as kernel:
        conductor: Conductor = await kernel.aservice("conductor")
        run = await conductor.run(
            RunRequest(workflow=_workflow(), inputs={"document": "the team scored a goal"}, priority="high")
        )
        assert run.state == "completed", run.error
        assert run.outputs["result"]["value"] == "sport"
        pool = await kernel.aservice("pool-manager")
        engine = await kernel.aservice("arbitration")
        assert isinstance(plugin.main.models[0], WordModel)
        assert pool.metrics["misses"] == 1 and plugin.main.loader.loads == 1
        assert pool.refs("test.words") == 0 and pool.leases_of(run.id) == []
        assert engine.grants() == [] and engine.pending() == []
        granted = [d for d in _decisions(engine) if d["decision"]["owner"] == run.id]
        assert granted and granted[0]["decision"]["outcome"] == "granted"
        assert run.plan.priority == "high"
        # the model stays warm: a second run leases it hot
        again = await conductor.run(RunRequest(workflow=_workflow(), inputs={"document": "salt and bread"}))
        assert again.outputs["result"]["value"] == "food"
        assert pool.metrics["hits"] == 1 and plugin.main.loader.loads == 1
        # a synchronous instrument naming a model is leased too (it runs through an executor, not inline)
        sync = await conductor.run(RunRequest(workflow=_workflow("test.classify-sync"), inputs={"document": "win"}))
        assert sync.state == "completed" and sync.outputs["result"]["value"] == "sport", sync.error
        assert pool.metrics["hits"] == 2 and pool.refs("test.words") == 0


async def test_grant_and_lease_are_released_after_failure_and_cancellation(
    store_env: Any, templates_env: Any, model_file: Path
) -> None:
    plugin = _Plugin(Classify(WordLoader(model_file)), ClassifyOther(WordLoader(model_file)))
    async with Kernel.open(env="test", plugins=[(_MANIFEST, plugin)], overrides=OVERRIDES) as kernel:
        conductor: Conductor = await kernel.aservice("conductor")
        pool = await kernel.aservice("pool-manager")
        engine = await kernel.aservice("arbitration")
        plugin.main.fail = True
        failed = await conductor.run(RunRequest(workflow=_workflow(), inputs={"document": "goal"}))
        assert failed.state == "failed" and "the classifier broke" in str(failed.error or failed.status())
        assert pool.refs("test.words") == 0 and engine.grants() == [] and engine.pending() == []
        plugin.main.fail = False
        plugin.main.gate = anyio.Event()
        run = await conductor.submit(conductor.prepare(RunRequest(workflow=_workflow(), inputs={"document": "goal"})))
        await _until(lambda: run.id in plugin.main.started)
        assert pool.refs("test.words") == 1 and len(engine.grants()) == 1
        await conductor.control(run.id, "cancel")
        with anyio.fail_after(20):
            await run.done.wait()
        assert run.state == "cancelled"
        assert pool.refs("test.words") == 0 and engine.grants() == [] and engine.pending() == []


async def test_an_interactive_run_gets_its_model_within_one_eviction(
    store_env: Any, templates_env: Any, model_file: Path
) -> None:
    plugin = _Plugin(Classify(WordLoader(model_file)), ClassifyOther(WordLoader(model_file)))
    plugin.main.gate = anyio.Event()  # the background run holds its model until told
    async with Kernel.open(env="test", plugins=[(_MANIFEST, plugin)], overrides=OVERRIDES) as kernel:
        conductor: Conductor = await kernel.aservice("conductor")
        pool = await kernel.aservice("pool-manager")
        engine = await kernel.aservice("arbitration")
        batch = await conductor.submit(
            conductor.prepare(RunRequest(workflow=_workflow(), inputs={"document": "goal"}, priority="background"))
        )
        await _until(lambda: batch.id in plugin.main.started)
        assert pool.refs("test.words") == 1
        interactive = await conductor.submit(
            conductor.prepare(
                RunRequest(workflow=_workflow("test.classify-other"), inputs={"document": "soup"}, priority="high")
            )
        )
        with anyio.fail_after(20):
            await interactive.done.wait()
        assert interactive.state == "completed", interactive.error
        assert interactive.outputs["result"]["value"] == "food"
        assert sum(pool.evictions.values()) == 1
        assert plugin.main.loader.unloads == 1 and plugin.other.loader.loads == 1
        decisions = [d["decision"] for d in _decisions(engine)]
        taken = [d for d in decisions if d["owner"] == batch.id and d["reason"] == "preempted"]
        assert len(taken) == 1 and interactive.id in taken[0]["rationale"], json.dumps(decisions)
        assert [d["outcome"] for d in decisions if d["owner"] == interactive.id][-1] == "granted"
        with anyio.fail_after(20):
            await batch.done.wait()
        assert batch.state == "failed" and "PreemptedError" in str(batch.status())
        assert engine.grants() == [] and pool.refs("test.words") == 0


async def test_without_the_pool_an_instrument_runs_as_before(
    store_env: Any, templates_env: Any, model_file: Path
) -> None:
    plugin = _Plugin(Classify(WordLoader(model_file)), ClassifyOther(WordLoader(model_file)))
    overrides = {**OVERRIDES, "plugins": {"disabled": ["symphony-pool-manager"]}}
    async with Kernel.open(env="test", plugins=[(_MANIFEST, plugin)], overrides=overrides) as kernel:
        conductor: Conductor = await kernel.aservice("conductor")
        run = await conductor.run(RunRequest(workflow=_workflow(), inputs={"document": "bread soup"}))
        assert run.state == "completed", run.error
        assert run.outputs["result"]["value"] == "food"
        assert plugin.main.models == [None] and plugin.main.loader.loads == 0
        assert "pool-manager" not in kernel.registry("services")


async def test_the_priority_comes_from_the_run_request_over_the_bus(
    store_env: Any, templates_env: Any, model_file: Path
) -> None:
    plugin = _Plugin(Classify(WordLoader(model_file)), ClassifyOther(WordLoader(model_file)))
    async with (
        Kernel.open(env="test", plugins=[(_MANIFEST, plugin)], overrides=OVERRIDES) as kernel,
        connect_test_client(kernel) as client,
    ):
        reply = await client.request(
            "run.submit",
            {"workflow": _workflow(), "inputs": {"document": "goal"}, "priority": "low"},
            timeout=30,
        )
        conductor: Conductor = await kernel.aservice("conductor")
        run = conductor.get(reply.payload["run_id"])
        with anyio.fail_after(20):
            await run.done.wait()
        assert run.state == "completed" and run.status()["plan"]["priority"] == "low"
        engine = await kernel.aservice("arbitration")
        granted = [d["decision"] for d in _decisions(engine) if d["decision"]["owner"] == run.id]
        assert granted and "class low" in granted[0]["rationale"]
        with pytest.raises(ValidationError, match="priority must be one of"):
            await client.request("run.submit", {"workflow": _workflow(), "priority": "urgent"}, timeout=30)


def test_a_run_request_refuses_an_unknown_priority() -> None:
    with pytest.raises(ValidationError) as caught:
        RunRequest(workflow="x.json", priority="urgent")
    assert caught.value.code == "conductor.request.priority"
    assert RunRequest(workflow="x.json").priority == "normal"
