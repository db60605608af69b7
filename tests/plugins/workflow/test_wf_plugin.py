"""The workflow plugin inside a real kernel: service, node types from manifests and hooks, events, config."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.commons.errors import ValidationError
from symphony.kernel import Kernel
from symphony_sdk.testing import write_plugin_distribution
from symphony_workflow import Node, Workflow, WorkflowService
from symphony_workflow._events import EventKind
from symphony_workflow._serialization import to_document

from .conftest import EXAMPLES

PROVIDER = """
from symphony.hookspecs import hookimpl

EVENTS = []

@hookimpl
def symphony_register_node_types(registry):
    registry.add("demo.registered", kind="operator", inputs={"text": "text"}, outputs={"n": "integer"})

@hookimpl
def symphony_handle_workflow_event(event):
    EVENTS.append((event.kind.value, event.node_id))

@hookimpl
def symphony_register_workflow_templates(library):
    from symphony_workflow import Template
    library.add(Template.from_dict({
        "schema_version": "1.0", "id": "from-plugin", "name": "From a plugin", "version": "0.1.0",
        "workflow": {"nodes": [{"id": "i", "kind": "input", "type": "input", "outputs": [{"name": "v"}]}]},
    }))
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    write_plugin_distribution(
        root,
        "symphony-demo-nodes",
        manifest={
            "provides": ["node-type:demo.declared", "node-type:demo.registered"],
            "activation": "on-startup",
            "requires": ["symphony-workflow"],
        },
        module_source=PROVIDER,
    )
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("symphony_demo_nodes"):
            del sys.modules[name]


def make_kernel(site: Path, **kwargs: Any) -> Kernel:
    kwargs.setdefault("env", "test")
    return Kernel.create(search_path=[str(site)], plugins=["symphony_workflow.plugin"], **kwargs)


def demo_workflow() -> Workflow:
    wf = Workflow("demo")
    wf.add_node(Node.input_node("text", "text"))
    wf.add_node(Node.operator("count", "demo.registered", inputs={"text": "text"}, outputs={"n": "integer"}))
    wf.add_node(Node.operator("other", "demo.declared", inputs={"n": "number"}))
    wf.add_node(Node.operator("ghost", "demo.missing"))
    wf.connect("text", "value", "count", "text")
    wf.connect("count", "n", "other", "n")
    return wf


def test_service_checks_node_types_from_manifests_and_the_registry(site: Path) -> None:
    kernel = make_kernel(site)
    try:
        service = kernel.service("workflow")
        assert isinstance(service, WorkflowService) and service.kernel is kernel
        lookup = service.node_type_lookup()
        assert lookup is not None and {"demo.declared", "demo.registered"} <= set(lookup)  # type: ignore[arg-type]
        report = service.validate(demo_workflow())
        assert [(i.code, i.node) for i in report.errors] == [("workflow.unknown_node_type", "ghost")]
        assert kernel.registry("node_types").get("demo.registered").provider == "symphony-demo-nodes"
    finally:
        kernel.close()


def test_config_section_applies(site: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    kernel = make_kernel(site, overrides={"workflow": {"max_nodes": 2, "audit_path": str(audit)}})
    try:
        service = kernel.service("workflow")
        with pytest.raises(ValidationError) as info:
            service.load(EXAMPLES / "text-report.json")
        assert info.value.code == "workflow.too_large"
        ex = service.execution(Workflow("tiny"))
        ex.start()
        assert audit.read_text().count("\n") >= 2
    finally:
        kernel.close()


def test_events_reach_plugins_through_the_hook_and_templates_come_from_plugins(site: Path) -> None:
    kernel = make_kernel(site)
    try:
        service = kernel.service("workflow")
        events = sys.modules["symphony_demo_nodes.plugin"].EVENTS
        ex = service.execution(demo_workflow())
        ex.start()
        ex.node_started("text")
        ex.node_completed("text", "hi")
        assert ("started", None) in events and ("node_completed", "text") in events
        assert service.events.history(kinds=["node_completed"])[0].node_id == "text"
        assert "from-plugin" in service.templates
        assert service.instantiate("from-plugin").workflow.node("i")
    finally:
        kernel.close()


def test_standalone_service_has_no_kernel() -> None:
    service = WorkflowService()
    assert service.node_type_lookup() is None
    assert service.validate(demo_workflow()).warnings[0].code == "workflow.node_types_unchecked"
    assert WorkflowService(node_types={"demo.declared"}).node_type_lookup() == {"demo.declared"}
    wf = demo_workflow()
    assert service.loads(service.dumps(wf)) == wf
    assert service.loads(service.to_binary(wf, compress="zstd")) == wf
    assert service.render(wf, "dot").startswith("digraph")
    assert to_document(wf)["workflow"]["name"] == "demo"


@pytest.mark.anyio
async def test_events_are_published_on_the_bus(site: Path) -> None:
    pytest.importorskip("symphony.bus")
    async with Kernel.open(
        search_path=[str(site)], plugins=["symphony_workflow.plugin"], env="test"
    ) as kernel:
        service = await kernel.aservice("workflow")
        bus = kernel.bus
        sub = bus.subscribe("workflow.#")
        ex = service.execution(demo_workflow())
        ex.start()
        ex.node_started("text")
        received = []
        with anyio.fail_after(5):
            async for msg in sub:
                received.append(msg.type)
                if msg.type == "workflow.node_started":
                    break
        assert received[:3] == ["workflow.command", "workflow.state_changed", "workflow.started"]
        assert msg.payload["node_id"] == "text" and msg.payload["kind"] == EventKind.NODE_STARTED.value
