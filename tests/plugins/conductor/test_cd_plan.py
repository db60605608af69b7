"""Preparing a run: the request, node types against installed plugins, parameters, inputs and
the decision-policy hook -- against a real kernel with the installed plugins."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from symphony import Kernel
from symphony.commons.errors import NotFoundError, SymphonyError, ValidationError
from symphony.hookspecs import hookimpl
from symphony.plugins.manifest import parse_manifest
from symphony_conductor import Conductor, RunRequest
from symphony_conductor._plan import choose_implementations, default_choice
from symphony_conductor._request import coerce_input, coerce_parameter

from .conftest import README_REPORT, TEXT_REPORT, text_report

pytestmark = pytest.mark.anyio


async def test_a_workflow_file_is_planned_with_the_plugin_of_each_node(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    plan = conductor.prepare(RunRequest(workflow=str(README_REPORT), inputs={"readmes": '{"a.md": "# A"}'}))
    assert plan.inputs == {"readmes": {"a.md": "# A"}}
    assert plan.implementations == {
        "prose": "symphony-demo-ops",
        "sizes": "symphony-demo-ops",
        "outline": "symphony-demo-ops",
        "stats": "symphony-textstats",
        "compose": "symphony-demo-ops",
    }
    assert plan.to_dict()["workflow"] == "README report"


async def test_unknown_node_type_names_the_type_its_node_and_what_is_installed(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    doc = text_report(stats={"type": "llm.summarize"})
    with pytest.raises(NotFoundError) as info:
        conductor.prepare(RunRequest(workflow=doc, inputs={"document": "hello"}))
    err = info.value
    assert err.code == "conductor.unknown_node_type"
    assert "'llm.summarize' (node stats)" in err.message
    assert "textstats.analyze" in err.message and "docs.join" in err.message
    assert err.context["missing"] == ["llm.summarize"]


async def test_a_type_of_a_disabled_plugin_names_that_plugin(store_env: Any, templates_env: Any) -> None:
    async with Kernel.open(env="test", overrides={"plugins": {"disabled": ["symphony-textstats"]}}) as kernel:
        conductor = await kernel.aservice("conductor")
        with pytest.raises(NotFoundError) as info:
            conductor.prepare(RunRequest(workflow=str(TEXT_REPORT), inputs={"document": "x"}))
    assert "provided by symphony-textstats (disabled" in info.value.message
    assert info.value.context["blocked"]["textstats.analyze"].startswith("symphony-textstats")


async def test_a_missing_parameter_is_named(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    with pytest.raises(ValidationError) as info:
        conductor.prepare(RunRequest(template="document-stats", inputs={"document": "x"}))
    assert info.value.code == "workflow.template.missing_parameter"
    assert "'title'" in info.value.message


async def test_a_wrongly_typed_parameter_is_named(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    with pytest.raises(ValidationError) as info:
        conductor.prepare(RunRequest(template="document-stats", params={"title": "T", "top": "many"}))
    assert "'top'" in info.value.message
    template = conductor.workflows.templates.get("document-stats")
    with pytest.raises(ValidationError) as typed:
        coerce_parameter(template, "top", "many")
    assert typed.value.code == "conductor.bad_parameter"
    assert typed.value.context == {"parameter": "top", "type": "integer", "value": "many"}
    assert coerce_parameter(template, "top", " 7 ") == 7
    assert coerce_parameter(template, "title", "2024") == "2024"  # a string parameter stays text


async def test_a_template_with_parameters_is_planned(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    plan = conductor.prepare(
        RunRequest(template="document-stats", params={"title": "Notes", "top": 3}, inputs={"document": "a b"})
    )
    assert plan.template == {
        "id": "document-stats",
        "parameters": {"title": "Notes", "top": 3, "full_top": 25},
    }
    assert plan.workflow.name == "Statistics of Notes"
    assert set(plan.implementations.values()) == {"symphony-textstats"}


async def test_inputs_are_checked_against_the_input_nodes(kernel: Kernel) -> None:
    conductor: Conductor = await kernel.aservice("conductor")
    with pytest.raises(ValidationError) as unknown:
        conductor.prepare(RunRequest(workflow=str(TEXT_REPORT), inputs={"doc": "x"}))
    assert unknown.value.code == "conductor.unknown_input"
    assert "its input nodes: document" in unknown.value.message
    with pytest.raises(ValidationError) as missing:
        conductor.prepare(RunRequest(workflow=str(TEXT_REPORT)))
    assert missing.value.code == "conductor.missing_input"
    assert missing.value.hint is not None and "--input document=@FILE" in missing.value.hint
    with pytest.raises(ValidationError) as not_json:
        conductor.prepare(RunRequest(workflow=str(README_REPORT), inputs={"readmes": "{oops"}))
    assert not_json.value.code == "conductor.bad_input"


def test_input_values_follow_the_port_type() -> None:
    assert coerce_input("n", "text", b"caf\xc3\xa9") == "café"
    assert coerce_input("n", "bytes", "ab") == b"ab"
    assert coerce_input("n", "integer", "42") == 42
    assert coerce_input("n", "list[text]", '["a"]') == ["a"]
    for port, raw in (("integer", "4.5"), ("bool", "1"), ("list[text]", "{}"), ("number", "true")):
        with pytest.raises(ValidationError) as info:
            coerce_input("n", port, raw)
        assert info.value.code == "conductor.bad_input" and info.value.context["node"] == "n"
    with pytest.raises(ValidationError):
        coerce_input("n", "text", b"\xff")


def test_requests_name_exactly_one_source() -> None:
    for bad in ({}, {"workflow": "a.json", "template": "t"}, {"workflow": 3}, {"template": "t", "extra": 1}):
        with pytest.raises(ValidationError):
            RunRequest.from_dict(bad)
    with pytest.raises(ValidationError) as info:
        RunRequest(workflow="a.json", params={"x": 1})
    assert info.value.code == "conductor.request.params_without_template"
    assert RunRequest.from_dict({"resume": "abc"}).describe() == "resume abc"


# --- the decision-policy hook --------------------------------------------------------------------

_POLICY_MANIFEST = parse_manifest(
    {
        "plugin": {
            "id": "test-policy",
            "version": "0.1.0",
            "kind": "conductor",
            "api": ">=0.1,<0.2",
            "summary": "A decision policy for the tests",
            "requires": ["symphony-conductor"],
        }
    }
)


class _PreferB:
    @hookimpl
    def symphony_choose_implementation(self, node_type: str, candidates: list[str]) -> str | None:
        return "plugin-b" if node_type == "x.op" else None


class _Rogue:
    @hookimpl
    def symphony_choose_implementation(self, candidates: list[str]) -> str:
        return "plugin-z"


def _workflow(*types: str) -> Any:
    nodes = {f"n{i}": SimpleNamespace(id=f"n{i}", kind="operator", type=t) for i, t in enumerate(types)}
    return SimpleNamespace(nodes=nodes)


INSTALLED = {"x.op": ["plugin-b", "plugin-a"], "y.op": ["plugin-c", "plugin-a"], "z.op": ["plugin-q"]}


def test_the_default_policy_is_deterministic(store_env: Any) -> None:
    kernel = Kernel.create(env="test", autoload=True)
    kernel.activate("symphony-conductor")
    assert default_choice(["b", "a", "c"]) == "a"
    chosen = choose_implementations(kernel, _workflow("x.op", "y.op", "z.op"), INSTALLED)
    assert chosen == {"n0": "plugin-a", "n1": "plugin-a", "n2": "plugin-q"}


def test_a_policy_plugin_decides_where_several_plugins_provide_a_type(store_env: Any) -> None:
    kernel = Kernel.create(env="test", autoload=True, plugins=[(_POLICY_MANIFEST, _PreferB())])
    kernel.activate("test-policy")
    chosen = choose_implementations(kernel, _workflow("x.op", "y.op"), INSTALLED)
    assert chosen == {"n0": "plugin-b", "n1": "plugin-a"}  # None passes to the default


def test_a_policy_answer_outside_the_candidates_is_refused(store_env: Any) -> None:
    kernel = Kernel.create(env="test", autoload=True, plugins=[(_POLICY_MANIFEST, _Rogue())])
    kernel.activate("test-policy")
    with pytest.raises(SymphonyError) as info:
        choose_implementations(kernel, _workflow("x.op"), INSTALLED)
    assert info.value.code == "conductor.bad_choice"
    assert info.value.context["candidates"] == ["plugin-a", "plugin-b"]


def test_the_hook_is_documented_with_its_arguments() -> None:
    from symphony_conductor import hookspecs

    doc = hookspecs.symphony_choose_implementation.__doc__ or ""
    for name in ("node_type", "candidates", "node", "kernel"):
        assert f":param {name}:" in doc
