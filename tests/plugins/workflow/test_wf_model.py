"""The workflow model: nodes, ports, edges, lookups, checked and atomic mutations, the builder."""

from __future__ import annotations

import attrs
import pytest

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_workflow import (
    CycleError,
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    Port,
    Workflow,
    WorkflowBuilder,
    WorkflowValidationError,
)


def chain(n: int) -> Workflow:
    wf = Workflow("chain")
    for i in range(n):
        wf.add_node(Node.operator(f"n{i}", "op.pass", inputs={"i": "any"}, outputs={"o": "any"}))
    for i in range(n - 1):
        wf.connect(f"n{i}", "o", f"n{i + 1}", "i")
    return wf


def test_new_workflow_is_empty_with_identity_and_timestamps() -> None:
    a, b = Workflow("a"), Workflow("a")
    assert a.id != b.id and len(a.id) == 36
    assert len(a) == 0 and not a.edges
    assert a.created is not None and a.created.tzinfo is not None
    assert a.version == "0.1.0"


def test_lookups_are_by_id_and_adjacency_is_indexed() -> None:
    wf = chain(4)
    assert wf.node("n2").type == "op.pass"
    assert wf.edge("n1.o->n2.i").source == "n1"
    assert [e.id for e in wf.incoming("n2")] == ["n1.o->n2.i"]
    assert wf.successors("n2") == ["n3"] and wf.predecessors("n2") == ["n1"]
    assert "n3" in wf and "zz" not in wf and 3 not in wf  # type: ignore[operator]
    assert wf.get_node("zz") is None and wf.get_edge("zz") is None
    with pytest.raises(NotFoundError) as info:
        wf.node("zz")
    assert info.value.context["node"] == "'zz'"
    with pytest.raises(NotFoundError):
        wf.edge("nope")
    with pytest.raises(NotFoundError):
        wf.outgoing("nope")


def test_edge_that_closes_a_cycle_is_refused_with_the_closed_path() -> None:
    wf = Workflow("abc")
    for name in "ABCD":
        wf.add_node(Node.operator(name, "op", inputs={"i": "any", "j": "any"}, outputs={"o": "any"}))
    wf.connect("A", "o", "B", "i")
    wf.connect("B", "o", "C", "i")
    wf.connect("C", "o", "D", "i")
    before = (dict(wf.edges), wf.revision)
    with pytest.raises(CycleError) as info:
        wf.connect("C", "o", "A", "i")
    assert info.value.path == ["A", "B", "C", "A"]
    assert info.value.context["cycle"] == ["A", "B", "C", "A"]
    assert info.value.code == "workflow.cycle"
    assert (dict(wf.edges), wf.revision) == before
    with pytest.raises(CycleError) as info:
        wf.add_edge(Edge.control("D", "B"))
    assert info.value.path == ["B", "C", "D", "B"]
    with pytest.raises(CycleError) as info:
        wf.add_edge(Edge.control("A", "A"))
    assert info.value.path == ["A", "A"]
    assert wf.would_create_cycle("D", "A") and not wf.would_create_cycle("A", "D")


def test_add_edge_checks_endpoints_ports_types_and_sources() -> None:
    wf = Workflow("t")
    wf.add_node(Node.operator("a", "op", outputs={"text": "text", "n": "integer"}))
    wf.add_node(Node.operator("b", "op", inputs={"num": "number", "s": "text"}))
    cases = [
        (Edge.data("a", "text", "zz", "s"), "workflow.dangling_edge"),
        (Edge.data("a", "nope", "b", "s"), "workflow.unknown_port"),
        (Edge.data("a", "text", "b", "nope"), "workflow.unknown_port"),
        (Edge.data("a", "text", "b", "num"), "workflow.type_mismatch"),
        (Edge(EdgeKind.DATA, "a", "b"), "workflow.invalid_edge"),
        (Edge(EdgeKind.CONTROL, "a", "b", source_port="text"), "workflow.invalid_edge"),
        (Edge(EdgeKind.CONDITIONAL, "a", "b"), "workflow.invalid_edge"),
        (
            Edge(EdgeKind.CONDITIONAL, "a", "b", condition="a.n > 1", source_port="text"),
            "workflow.invalid_edge",
        ),
    ]
    for edge, code in cases:
        with pytest.raises(ValidationError) as info:
            wf.add_edge(edge)
        assert info.value.code == code, edge
        assert info.value.context["edge"] == edge.id
    mismatch = pytest.raises(ValidationError)
    with mismatch as info:
        wf.connect("a", "text", "b", "num")
    assert info.value.context["expected"] == "number" and info.value.context["found"] == "text"
    wf.connect("a", "n", "b", "num")  # integer widens to number
    with pytest.raises(ValidationError) as info:
        wf.add_edge(Edge.data("a", "n", "b", "num", id="second"))
    assert info.value.code == "workflow.multiple_sources"
    with pytest.raises(ValidationError) as info:
        wf.add_edge(Edge.control("a", "b", id="a.n->b.num"))
    assert info.value.code == "workflow.duplicate_edge_id"
    assert len(wf.edges) == 1


def test_conditions_are_parsed_and_must_read_upstream_outputs() -> None:
    wf = Workflow("c")
    wf.add_node(Node.operator("a", "op", outputs={"score": "number"}))
    wf.add_node(Node.operator("b", "op", inputs={"x": "any"}, outputs={"y": "any"}))
    wf.add_node(Node.operator("c", "op", inputs={"x": "any"}))
    wf.connect("a", "score", "b", "x")
    wf.add_edge(Edge.conditional("b", "c", "a.score > 0.5 and b.y != null"))
    with pytest.raises(ValidationError) as info:
        wf.add_edge(Edge.conditional("a", "c", "a.score >", id="bad"))
    assert info.value.code == "workflow.expression.syntax" and info.value.context["column"] == 10
    with pytest.raises(ValidationError) as info:
        wf.add_edge(Edge.conditional("a", "c", "a.missing == 1", id="bad"))
    assert info.value.code == "workflow.expression.unknown_output"
    assert info.value.context["column"] == 1 and info.value.context["port"] == "missing"
    with pytest.raises(ValidationError) as info:
        wf.add_edge(Edge.conditional("a", "c", "1 == 1 and b.y == 2", id="bad"))
    assert info.value.code == "workflow.expression.not_upstream" and info.value.context["column"] == 12
    with pytest.raises(ValidationError) as info:
        wf.add_edge(Edge.conditional("a", "c", "ghost.y == 2", id="bad"))
    assert info.value.code == "workflow.expression.unknown_node"
    assert "bad" not in wf.edges


def test_remove_node_cascades_edges_but_not_when_a_condition_reads_it() -> None:
    wf = Workflow("r")
    wf.add_node(Node.operator("a", "op", outputs={"o": "number"}))
    wf.add_node(Node.operator("b", "op", inputs={"i": "any"}, outputs={"o": "any"}))
    wf.add_node(Node.operator("c", "op", inputs={"i": "any"}))
    wf.connect("a", "o", "b", "i")
    wf.add_edge(Edge.conditional("b", "c", "a.o > 1"))
    with pytest.raises(ValidationError) as info:
        wf.remove_node("a")
    assert info.value.code == "workflow.node_in_use" and info.value.context["edge"] == "b->c?"
    assert "a" in wf
    removed = wf.remove_node("c")
    assert [e.id for e in removed] == ["b->c?"]
    removed = wf.remove_node("a")
    assert [e.id for e in removed] == ["a.o->b.i"]
    assert list(wf.nodes) == ["b"] and not wf.edges and wf.incoming("b") == []
    wf.add_node(Node.operator("a", "op", outputs={"o": "number"}))
    wf.connect("a", "o", "b", "i")  # the port's source slot was freed


def test_replace_node_keeps_edges_or_refuses_atomically() -> None:
    wf = chain(3)
    node = wf.node("n1")
    wf.replace_node(attrs.evolve(node, name="middle", position=(10, 20)))
    assert wf.node("n1").name == "middle" and wf.node("n1").position == (10.0, 20.0)
    assert len(wf.incoming("n1")) == 1
    with pytest.raises(ValidationError) as info:
        wf.replace_node(attrs.evolve(node, inputs=(Port("other", "any"),)))
    assert info.value.code == "workflow.unknown_port"
    assert wf.node("n1").name == "middle"
    with pytest.raises(ValidationError):
        wf.replace_node(attrs.evolve(node, outputs=(Port("o", "text"),), inputs=(Port("i", "bogus"),)))


def test_remove_edge_and_duplicate_node() -> None:
    wf = chain(2)
    with pytest.raises(ValidationError) as info:
        wf.add_node(Node.operator("n0", "op"))
    assert info.value.code == "workflow.duplicate_node_id"
    edge = wf.remove_edge("n0.o->n1.i")
    assert edge.source == "n0" and not wf.edges
    with pytest.raises(NotFoundError):
        wf.remove_edge("n0.o->n1.i")


def test_add_nodes_is_all_or_nothing() -> None:
    wf = Workflow("x")
    with pytest.raises(ValidationError):
        wf.add_nodes([Node.operator("a", "op"), Node.operator("b", "op", inputs={"x": "nonsense"})])
    assert len(wf) == 0


@pytest.mark.parametrize(
    ("factory", "code"),
    [
        (lambda: Node("1abc", NodeKind.OPERATOR, "op"), "workflow.invalid_identifier"),
        (lambda: Node("and", NodeKind.OPERATOR, "op"), "workflow.invalid_identifier"),
        (lambda: Node("a", "gizmo", "op"), "workflow.unknown_node_kind"),
        (lambda: Node("a", NodeKind.OPERATOR, "bad type!"), "workflow.invalid_node_type"),
        (
            lambda: Node("a", NodeKind.OPERATOR, "op", inputs=(Port("x"), Port("x"))),
            "workflow.duplicate_port",
        ),
        (lambda: Node("a", NodeKind.OPERATOR, "op", position=(float("nan"), 0)), "workflow.invalid_field"),
        (lambda: Node("a", NodeKind.OPERATOR, "op", config=[]), "workflow.invalid_field"),  # type: ignore[arg-type]
        (lambda: Port("bad-name"), "workflow.invalid_identifier"),
        (lambda: Edge("teleport", "a", "b"), "workflow.unknown_edge_kind"),
        (lambda: Edge.control("a", "b", priority=2**70), "workflow.invalid_field"),
        (lambda: Node.control("c", "loop"), "workflow.unknown_control_type"),
        (lambda: Workflow("w", version="1.0"), "workflow.invalid_version"),
        (lambda: Workflow("w", id="not-a-uuid"), "workflow.invalid_id"),
    ],
)
def test_constructors_reject_bad_values(factory: object, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        factory()  # type: ignore[operator]
    assert info.value.code == code


def test_input_and_output_nodes_have_the_right_shape() -> None:
    wf = Workflow("s")
    with pytest.raises(ValidationError) as info:
        wf.add_node(Node("i", NodeKind.INPUT, "input", inputs=(Port("x"),)))
    assert info.value.code == "workflow.invalid_node_shape"
    with pytest.raises(ValidationError):
        wf.add_node(Node("o", NodeKind.OUTPUT, "output", outputs=(Port("x"),)))


def test_control_nodes_get_default_ports() -> None:
    join = Node.control("j", "join")
    assert join.input("in") is not None and join.input("in").multiple  # type: ignore[union-attr]
    assert join.output("out").type == "list[any]"  # type: ignore[union-attr]
    assert Node.control("b", "branch").is_builtin
    assert not Node.operator("x", "op").is_builtin


def test_copy_is_equal_and_independent() -> None:
    wf = chain(3)
    dup = wf.copy()
    assert dup == wf
    dup.remove_node("n2")
    assert dup != wf and "n2" in wf


def test_builder_builds_a_validated_workflow() -> None:
    wf = (
        WorkflowBuilder("triage", version="1.2.0", description="d")
        .author("me")
        .tags("a", "b")
        .category("support")
        .custom(team="x")
        .input("ticket", "text")
        .instrument(
            "classify", "llm.classify", inputs={"text": "text"}, outputs={"label": "text", "p": "number"}
        )
        .at(100, 50)
        .meta(cost=3)
        .config(model="m")
        .connect_from("ticket")
        .branch("route")
        .connect("ticket", "route")
        .after("classify")
        .operator("bug", "tracker.file", inputs={"text": "text"}, outputs={"url": "text"})
        .operator("other", "review.queue", inputs={"text": "text"}, outputs={"url": "text"})
        .when("route.out", "bug.text", "classify.label == 'bug' and classify.p > 0.5", label="bug")
        .when("route.out", "other.text", "classify.label != 'bug'")
        .merge("done")
        .connect("bug.url", "done")
        .connect("other.url", "done")
        .output("link", "text")
        .connect_from("done")
        .build(node_types={"llm.classify", "tracker.file", "review.queue"})
    )
    assert wf.version == "1.2.0" and wf.metadata.author == "me" and wf.metadata.tags == ("a", "b")
    assert wf.metadata.custom == {"team": "x"}
    node = wf.node("classify")
    assert node.position == (100.0, 50.0) and node.metadata == {"cost": 3} and node.config == {"model": "m"}
    assert wf.edge("route.out->bug.text?").label == "bug"
    assert wf.edge("classify->route").kind is EdgeKind.CONTROL


def test_builder_refuses_invalid_workflows_and_ambiguous_ports() -> None:
    b = WorkflowBuilder("x").operator("a", "op", inputs={"x": "text"}, outputs={"o": "text", "p": "text"})
    with pytest.raises(WorkflowValidationError) as info:
        b.build()
    assert info.value.code == "workflow.missing_input"
    b.output("out", "text")
    with pytest.raises(ValidationError) as info2:
        b.connect("a", "out")
    assert info2.value.code == "workflow.builder.ambiguous_port"
    assert b.build(check=False).node("a").id == "a"
    with pytest.raises(ValidationError):
        WorkflowBuilder("y").at(1, 2)
    with pytest.raises(NotFoundError):
        WorkflowBuilder("y").select("ghost")


def test_holds_ten_thousand_nodes_with_constant_time_lookup() -> None:
    wf = chain(10_000)
    assert len(wf) == 10_000 and len(wf.edges) == 9_999
    assert wf.node("n9999").id == "n9999"
    assert wf.incoming("n5000")[0].source == "n4999"
