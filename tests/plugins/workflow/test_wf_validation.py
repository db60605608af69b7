"""Validation: every error collected, warnings apart, locations, node types, properties."""

from __future__ import annotations

import graphlib
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import ValidationError
from symphony_workflow import (
    Edge,
    EdgeKind,
    Node,
    NodeTypeRegistry,
    Port,
    ValidationOptions,
    Workflow,
    WorkflowValidationError,
    validate,
)
from symphony_workflow._validation import INTEGRITY_CODES as INTEGRITY
from symphony_workflow._validation import check_parts

from .workflow_strategies import workflows


def _op(
    node_id: str, ins: dict[str, str] | None = None, outs: dict[str, str] | None = None, **kw: object
) -> Node:
    return Node.operator(node_id, "op.x", inputs=ins or {}, outputs=outs or {}, **kw)  # type: ignore[arg-type]


def test_collects_every_error_at_once_with_locations() -> None:
    nodes = [
        _op("a", outs={"o": "text"}),
        _op("b", ins={"i": "number"}, outs={"o": "any"}),
        _op("a", outs={"z": "any"}),  # duplicate id
        _op("c", ins={"need": "text"}),
        _op("d", ins={"x": "list[wat]"}),
    ]
    edges = [
        Edge.data("a", "o", "b", "i"),  # type mismatch
        Edge.data("a", "o", "ghost", "i"),  # dangling
        Edge.control("b", "c"),
        Edge.control("c", "b", id="back"),  # cycle b -> c -> b
        Edge.control("b", "c"),  # duplicate edge id
        Edge.conditional("a", "c", "a.o ==", id="cond"),  # syntax error
    ]
    report = check_parts(nodes, edges, node_types={"op.x"})
    codes = [i.code for i in report.errors]
    for code in (
        "workflow.duplicate_node_id",
        "workflow.type_mismatch",
        "workflow.dangling_edge",
        "workflow.cycle",
        "workflow.duplicate_edge_id",
        "workflow.expression.syntax",
        "workflow.missing_input",
        "workflow.invalid_port_type",
    ):
        assert code in codes, code
    by_code = {i.code: i for i in report.errors}
    assert by_code["workflow.duplicate_node_id"].path == "$.workflow.nodes[2].id"
    assert by_code["workflow.type_mismatch"].details == {"expected": "number", "found": "text"}
    assert by_code["workflow.type_mismatch"].path == "$.workflow.edges[0]"
    assert by_code["workflow.dangling_edge"].path == "$.workflow.edges[1].target"
    assert by_code["workflow.cycle"].details["cycle"] in (["b", "c", "b"], ["c", "b", "c"])
    assert by_code["workflow.duplicate_edge_id"].path == "$.workflow.edges[4].id"
    assert by_code["workflow.expression.syntax"].column == 7
    assert by_code["workflow.invalid_port_type"].path == "$.workflow.nodes[4].inputs[0].type"
    missing = [i for i in report.errors if i.code == "workflow.missing_input"]
    assert {(i.node, i.port) for i in missing} == {("c", "need"), ("d", "x")}
    assert not report.valid
    with pytest.raises(WorkflowValidationError) as info:
        report.raise_for_errors()
    assert len(info.value.context["issues"]) == len(report.errors)
    assert info.value.code == report.errors[0].code


def test_every_cycle_is_reported_as_a_closed_path() -> None:
    nodes = [_op(n) for n in "abcdef"]
    edges = [Edge.control(s, t) for s, t in ["ab", "bc", "ca", "de", "ed", "ef"]]
    report = check_parts(nodes, edges)
    cycles = [i.details["cycle"] for i in report.errors if i.code == "workflow.cycle"]
    assert sorted(sorted(set(c)) for c in cycles) == [["a", "b", "c"], ["d", "e"]]
    for cycle in cycles:
        assert cycle[0] == cycle[-1]
        pairs = {(e.source, e.target) for e in edges}
        assert all((x, y) in pairs for x, y in itertools.pairwise(cycle))


def test_warnings_are_kept_apart() -> None:
    wf = Workflow("w")
    wf.add_node(Node.input_node("inp", "text"))
    wf.add_node(_op("lonely"))
    wf.add_node(_op("off", ins={"i": "text"}, outs={"o": "text"}, enabled=False))
    wf.add_node(_op("after", ins={"i": "text"}))
    wf.add_node(Node.control("br", "branch"))
    wf.add_node(Node.control("j", "join"))
    wf.connect("inp", "value", "off", "i")
    wf.connect("off", "o", "after", "i")
    wf.connect("inp", "value", "br", "in")
    wf.connect("br", "out", "j", "in")
    report = validate(wf, node_types={"op.x"})
    assert report.valid
    codes = sorted(i.code for i in report.warnings)
    assert codes == [
        "workflow.control_shape",
        "workflow.control_shape",
        "workflow.orphan_node",
        "workflow.unreachable",
    ]
    unreachable = [i for i in report.warnings if i.code == "workflow.unreachable"]
    assert unreachable[0].node == "after"
    quiet = validate(
        wf,
        node_types={"op.x"},
        options=ValidationOptions(allow_orphans=True, check_reachability=False, check_control_shape=False),
    )
    assert quiet.warnings == ()


def test_node_types_are_checked_against_a_lookup() -> None:
    wf = Workflow("t")
    wf.add_node(Node.input_node("i", "text"))
    wf.add_node(Node.operator("a", "textstats.analyze", inputs={"text": "text"}))
    wf.add_node(Node.instrument("b", "llm.generate", inputs={"p": "text"}))
    wf.add_node(Node.control("m", "merge"))
    wf.add_node(Node("c", "control", "loop"))
    wf.connect("i", "value", "a", "text")
    wf.connect("i", "value", "b", "p")
    unchecked = validate(wf)
    assert unchecked.valid and unchecked.warnings[0].code == "workflow.node_types_unchecked"
    registry = NodeTypeRegistry()
    registry.add("textstats.analyze", kind="operator", inputs={"text": "text"}, provider="symphony-textstats")
    report = validate(wf, node_types=registry)
    unknown = {i.node: i for i in report.errors if i.code == "workflow.unknown_node_type"}
    assert set(unknown) == {"b", "c"}
    assert unknown["b"].path == "$.workflow.nodes[2].type" and unknown["b"].details["type"] == "llm.generate"
    by_callable = validate(wf, node_types=lambda name: name in ("llm.generate", "loop", "textstats.analyze"))
    assert not [i for i in by_callable.errors if i.code == "workflow.unknown_node_type"]

    def broken(name: str) -> bool:
        raise RuntimeError("lookup failed")

    assert {i.node for i in validate(wf, node_types=broken).errors} == {"a", "b", "c"}


def test_multiple_sources_only_into_multiple_ports() -> None:
    nodes = [
        _op("a", outs={"o": "any"}),
        _op("b", outs={"o": "any"}),
        Node.control("m", "merge"),
        _op("c", ins={"i": "any"}),
    ]
    edges = [
        Edge.data("a", "o", "m", "in"),
        Edge.data("b", "o", "m", "in"),
        Edge.data("a", "o", "c", "i"),
        Edge.data("b", "o", "c", "i"),
    ]
    report = check_parts(nodes, edges)
    assert [i.code for i in report.errors] == ["workflow.multiple_sources"]
    assert report.errors[0].edge == "b.o->c.i"


def test_condition_references_are_checked_against_upstream_outputs() -> None:
    nodes = [_op("a", outs={"o": "any"}), _op("b", ins={"i": "any"}, outs={"o": "any"}), _op("c"), _op("d")]
    edges = [
        Edge.data("a", "o", "b", "i"),
        Edge.conditional("b", "c", "a.o == 1 and b.o == 2"),
        Edge.conditional("c", "d", "d.o == 1", id="self"),
        Edge.conditional("a", "d", "b.o == 1", id="later"),
        Edge.conditional("a", "c", "a.nope == 1", id="noport"),
    ]
    report = check_parts(nodes, edges)
    found = {(i.edge, i.code) for i in report.errors}
    assert found == {
        ("self", "workflow.expression.unknown_output"),
        ("later", "workflow.expression.not_upstream"),
        ("noport", "workflow.expression.unknown_output"),
    }
    later = next(i for i in report.errors if i.edge == "later")
    assert later.column == 1 and later.path == "$.workflow.edges[3].condition"


def test_disabled_nodes_need_no_inputs() -> None:
    wf = Workflow("d")
    wf.add_node(_op("x", ins={"i": "text"}, enabled=False))
    assert validate(wf, node_types={"op.x"}).valid


def test_examples_validate(triage: Workflow, embed: Workflow, report: Workflow) -> None:
    known = {
        "llm.classify",
        "tracker.create_issue",
        "review.queue",
        "text.normalize",
        "embed.text",
        "vector.index",
        "log.write",
        "textstats.analyze",
    }
    for wf in (triage, embed, report):
        result = validate(wf, node_types=known)
        assert result.valid, result.to_dict()
    assert validate(triage, node_types=known).warnings == ()


def test_issue_to_error_and_dict() -> None:
    report = check_parts([_op("a")], [Edge.control("a", "a")])
    issue = report.errors[0]
    err = issue.to_error()
    assert err.code == "workflow.cycle" and err.context["cycle"] == ["a", "a"]  # type: ignore[attr-defined]
    assert issue.to_dict()["cycle"] == ["a", "a"]
    assert "node=a" in issue.location()
    assert report.codes() == {"workflow.cycle", "workflow.node_types_unchecked"}


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflows(max_nodes=10))
def test_generated_workflows_have_no_integrity_errors(wf: Workflow) -> None:
    report = validate(wf)
    assert not [i for i in report.errors if i.code in INTEGRITY], report.to_dict()
    allowed = {"workflow.missing_input", "workflow.unknown_node_type"}
    assert {i.code for i in report.errors} <= allowed


@st.composite
def cyclic(draw: st.DrawFn) -> tuple[list[Node], list[Edge], list[str]]:
    n = draw(st.integers(2, 12))
    nodes = [_op(f"n{i}") for i in range(n)]
    path = [f"n{i}" for i in draw(st.permutations(range(n)))][: draw(st.integers(2, n))]
    edges = [Edge.control(a, b) for a, b in itertools.pairwise(path)]
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n))
    for i, j in extra:
        edge = Edge.control(f"n{min(i, j)}", f"n{max(i, j)}", id=f"x{i}-{j}-{len(edges)}")
        edges.append(edge)
    edges.append(Edge.control(path[-1], path[0], id="back"))
    return nodes, edges, path


@settings(max_examples=300, deadline=None)
@given(cyclic())
def test_generated_cyclic_graphs_are_always_flagged(case: tuple[list[Node], list[Edge], list[str]]) -> None:
    nodes, edges, _ = case
    report = check_parts(nodes, edges)
    cycles = [i.details["cycle"] for i in report.errors if i.code == "workflow.cycle"]
    assert cycles
    pairs = {(e.source, e.target) for e in edges}
    for cycle in cycles:
        assert cycle[0] == cycle[-1] and len(cycle) >= 2
        assert all((a, b) in pairs for a, b in itertools.pairwise(cycle))
    graph: dict[str, set[str]] = {n.id: set() for n in nodes}
    for e in edges:
        graph[e.target].add(e.source)
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(graph).static_order())
    wf = Workflow("c")
    for node in nodes:
        wf.add_node(node)
    with pytest.raises(ValidationError):
        for edge in edges:
            wf.add_edge(edge)


def test_kind_of_edge_counts_for_cycles() -> None:
    nodes = [_op("a", ins={"i": "any"}, outs={"o": "any"}), _op("b", ins={"i": "any"}, outs={"o": "any"})]
    edges = [Edge.data("a", "o", "b", "i"), Edge(EdgeKind.CONDITIONAL, "b", "a", condition="b.o == 1")]
    assert "workflow.cycle" in check_parts(nodes, edges).codes()
    assert Port("x").type == "any"
