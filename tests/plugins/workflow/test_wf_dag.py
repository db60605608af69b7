"""DAG operations: topological order, levels, critical path, ancestry, subgraphs, diffs."""

from __future__ import annotations

import graphlib

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_workflow import CycleError, Edge, Node, Workflow, critical_path, diff, levels, topological_order
from symphony_workflow._dag import all_paths, ancestors, descendants, subgraph

from .workflow_strategies import workflows


def diamond() -> Workflow:
    wf = Workflow("diamond")
    for name, cost in (("a", 1), ("b", 5), ("c", 2), ("d", 1), ("z", 0)):
        wf.add_node(
            Node.operator(
                name, "op", inputs={"i": "any", "j": "any"}, outputs={"o": "any"}, metadata={"cost": cost}
            )
        )
    wf.connect("a", "o", "b", "i")
    wf.connect("a", "o", "c", "i")
    wf.connect("b", "o", "d", "i")
    wf.connect("c", "o", "d", "j")
    return wf


def test_topological_order_is_deterministic_and_follows_insertion_order() -> None:
    wf = diamond()
    assert topological_order(wf) == ["a", "b", "c", "d", "z"]
    assert topological_order(wf) == topological_order(wf.copy())


def test_levels_group_independent_nodes() -> None:
    assert levels(diamond()) == [["a", "z"], ["b", "c"], ["d"]]
    assert levels(Workflow("empty")) == []


def test_critical_path_uses_cost_estimates() -> None:
    wf = diamond()
    cp = critical_path(wf)
    assert cp.nodes == ("a", "b", "d") and cp.cost == 7.0
    assert critical_path(wf, {"c": 10}).nodes == ("a", "c", "d")
    assert critical_path(wf, lambda n: 1.0).cost == 3.0
    assert critical_path(Workflow("e")).nodes == ()
    with pytest.raises(ValidationError):
        critical_path(wf, {"a": -1})


def test_ancestors_descendants_paths() -> None:
    wf = diamond()
    assert ancestors(wf, "d") == {"a", "b", "c"}
    assert descendants(wf, "a") == {"b", "c", "d"}
    assert ancestors(wf, "z") == set() == descendants(wf, "z")
    assert sorted(all_paths(wf, "a", "d")) == [["a", "b", "d"], ["a", "c", "d"]]
    assert all_paths(wf, "a", "d", limit=1) and len(all_paths(wf, "a", "d", limit=1)) == 1
    with pytest.raises(NotFoundError):
        ancestors(wf, "ghost")


def test_subgraph_keeps_inner_edges_and_refuses_dangling_conditions() -> None:
    wf = diamond()
    sub = subgraph(wf, ["b", "d", "a"])
    assert list(sub.nodes) == ["a", "b", "d"]
    assert sorted(sub.edges) == ["a.o->b.i", "b.o->d.i"]
    assert sub.id != wf.id
    wf.add_edge(Edge.conditional("b", "z", "a.o == 1"))
    with pytest.raises(ValidationError) as info:
        subgraph(wf, ["b", "z"])
    assert info.value.code == "workflow.subgraph_incomplete" and info.value.context["node"] == "a"
    with pytest.raises(NotFoundError):
        subgraph(wf, ["nope"])


def test_diff_reports_added_removed_and_changed() -> None:
    old = diamond()
    new = old.copy()
    new.name = "renamed"
    new.remove_node("z")
    new.replace_node(attrs.evolve(new.node("b"), config={"t": 1}))
    new.add_node(Node.operator("e", "op", inputs={"i": "any"}))
    new.connect("d", "o", "e", "i")
    d = diff(old, new)
    assert d.fields == {"name": ("diamond", "renamed")}
    assert d.added_nodes == ("e",) and d.removed_nodes == ("z",)
    assert d.changed_nodes == {"b": {"config": ({}, {"t": 1})}}
    assert d.added_edges == ("d.o->e.i",) and d.removed_edges == ()
    assert "+ node e" in d.summary() and "~ node b: config" in d.summary()
    assert d.to_dict()["changed_nodes"]["b"]["config"] == [{}, {"t": 1}]
    assert diff(old, old.copy()).is_empty and diff(old, old).summary() == "no differences"


def test_caches_are_invalidated_by_mutation() -> None:
    wf = diamond()
    assert topological_order(wf)[-1] == "z"
    wf.add_node(Node.operator("y", "op", inputs={"i": "any"}))
    wf.connect("d", "o", "y", "i")
    assert topological_order(wf)[-1] == "y"
    assert levels(wf)[-1] == ["y"]


def test_cycle_in_a_trusted_build_is_a_cycle_error() -> None:
    nodes = [Node.operator(n, "op") for n in "ab"]
    wf = Workflow._from_checked(nodes=nodes, edges=[Edge.control("a", "b"), Edge.control("b", "a")])
    with pytest.raises(CycleError) as info:
        topological_order(wf)
    assert info.value.path[0] == info.value.path[-1]


def test_deep_chains_need_no_recursion() -> None:
    n = 20_000
    nodes = [Node.operator(f"n{i}", "op") for i in range(n)]
    edges = [Edge.control(f"n{i}", f"n{i + 1}") for i in range(n - 1)]
    wf = Workflow._from_checked(nodes=nodes, edges=edges)
    assert topological_order(wf)[-1] == f"n{n - 1}"
    assert len(levels(wf)) == n
    assert len(critical_path(wf).nodes) == n
    assert len(ancestors(wf, f"n{n - 1}")) == n - 1


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflows(max_nodes=10))
def test_topological_order_keeps_every_edge_in_order(wf: Workflow) -> None:
    order = topological_order(wf)
    position = {nid: i for i, nid in enumerate(order)}
    assert sorted(order) == sorted(wf.nodes)
    for edge in wf.edges.values():
        assert position[edge.source] < position[edge.target]
    graph = {nid: set(wf.predecessors(nid)) for nid in wf.nodes}
    assert sorted(graphlib.TopologicalSorter(graph).static_order()) == sorted(order)
    depth = {nid: k for k, level in enumerate(levels(wf)) for nid in level}
    for edge in wf.edges.values():
        assert depth[edge.source] < depth[edge.target]
    for nid in wf.nodes:
        assert all(nid in descendants(wf, a) for a in ancestors(wf, nid))
