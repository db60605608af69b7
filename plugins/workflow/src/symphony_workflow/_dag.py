"""DAG operations: topological order, parallel levels, critical path, ancestry, subgraphs, diffs.

All algorithms are iterative and linear in the size of the graph (no recursion limit at any
size). Results that depend only on the graph are cached on the workflow until its next
mutation.

Determinism: when several nodes are ready at once, the one added to the workflow first comes
first (serialization keeps that order), so the same workflow always yields the same order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_workflow._errors import CycleError
from symphony_workflow._model import Edge, Node, Workflow

__all__ = [
    "CriticalPath",
    "WorkflowDiff",
    "all_paths",
    "ancestors",
    "critical_path",
    "descendants",
    "diff",
    "levels",
    "subgraph",
    "topological_order",
]

CostEstimate = Callable[[Node], float] | Mapping[str, float] | None
"""How long a node takes: a function of the node, a mapping by node id, or ``None``
(then ``node.metadata["cost"]`` if it is a number, else 1)."""


def _successor_ids(wf: Workflow) -> dict[str, list[str]]:
    cached: dict[str, list[str]] | None = wf._cache.get("succ")
    if cached is None:
        cached = {nid: [] for nid in wf.nodes}
        for edge in wf.edges.values():
            cached[edge.source].append(edge.target)
        wf._cache["succ"] = cached
    return cached


def topological_order(wf: Workflow) -> list[str]:
    """Node ids so that every edge goes from an earlier to a later node.

    Ties go to the node added first. Raises :class:`CycleError` (with the closed path) if the
    graph has a cycle, which a :class:`Workflow` built through its API never has.
    """
    cached = wf._cache.get("topo")
    if cached is not None:
        return list(cached)
    succ = _successor_ids(wf)
    pos = {nid: i for i, nid in enumerate(wf.nodes)}
    indeg = dict.fromkeys(pos, 0)
    for targets in succ.values():
        for t in targets:
            indeg[t] += 1
    ready = [pos[nid] for nid, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    ids = list(pos)
    order: list[str] = []
    while ready:
        current = ids[heapq.heappop(ready)]
        order.append(current)
        for t in succ[current]:
            indeg[t] -= 1
            if indeg[t] == 0:
                heapq.heappush(ready, pos[t])
    if len(order) != len(ids):
        from symphony_workflow._validation import find_cycles

        stuck = {nid for nid, d in indeg.items() if d > 0}
        cycle = find_cycles(stuck, succ)[0]
        raise CycleError(f"workflow has a cycle: {' -> '.join(cycle)}", path=cycle)
    wf._cache["topo"] = tuple(order)
    return order


def levels(wf: Workflow) -> list[list[str]]:
    """Parallel levels: level 0 has no dependencies; every node depends only on earlier levels.

    A node's level is the length of the longest path reaching it, so everything in one level
    can run at the same time. Within a level, nodes keep insertion order.
    """
    cached = wf._cache.get("levels")
    if cached is not None:
        return [list(level) for level in cached]
    succ = _successor_ids(wf)
    depth: dict[str, int] = dict.fromkeys(wf.nodes, 0)
    for nid in topological_order(wf):
        d = depth[nid] + 1
        for t in succ[nid]:
            if depth[t] < d:
                depth[t] = d
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for nid in wf.nodes:
        out[depth[nid]].append(nid)
    wf._cache["levels"] = tuple(tuple(level) for level in out)
    return out


def _cost_fn(cost: CostEstimate) -> Callable[[Node], float]:
    if cost is None:

        def default(node: Node) -> float:
            value = node.metadata.get("cost")
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
            return 1.0

        return default
    if callable(cost):
        return cost
    mapping = cost
    return lambda node: float(mapping.get(node.id, 1.0))


@attrs.frozen
class CriticalPath:
    """The most expensive chain through the workflow: its ``nodes`` and total ``cost``."""

    nodes: tuple[str, ...]
    cost: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"nodes": list(self.nodes), "cost": self.cost}


def critical_path(wf: Workflow, cost: CostEstimate = None) -> CriticalPath:
    """The path whose summed node cost is largest (ties: the path found first in topological order).

    With no estimates every node costs 1, so this is the longest chain. Costs must be ``>= 0``.
    """
    fn = _cost_fn(cost)
    nodes = wf.nodes
    succ = _successor_ids(wf)
    best: dict[str, float] = {}
    parent: dict[str, str | None] = {}
    for nid in topological_order(wf):
        c = fn(nodes[nid])
        if c < 0:
            raise ValidationError(
                f"cost estimate of node {nid!r} is negative",
                code="workflow.negative_cost",
                context={"node": nid},
            )
        if nid not in best:
            best[nid] = c
            parent[nid] = None
        here = best[nid]
        for t in succ[nid]:
            candidate = here + fn(nodes[t])
            if t not in best or candidate > best[t]:
                best[t] = candidate
                parent[t] = nid
    if not best:
        return CriticalPath((), 0.0)
    end = max(best, key=lambda k: best[k])
    path = [end]
    while (p := parent[path[-1]]) is not None:
        path.append(p)
    path.reverse()
    return CriticalPath(tuple(path), best[end])


def _walk(wf: Workflow, start: str, forward: bool) -> set[str]:
    wf.node(start)
    seen: set[str] = set()
    todo = [start]
    get = wf.successors if forward else wf.predecessors
    while todo:
        for nxt in get(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def ancestors(wf: Workflow, node_id: str) -> set[str]:
    """Every node ``node_id`` depends on, directly or transitively (not itself)."""
    return _walk(wf, node_id, forward=False)


def descendants(wf: Workflow, node_id: str) -> set[str]:
    """Every node that depends on ``node_id``, directly or transitively (not itself)."""
    return _walk(wf, node_id, forward=True)


def all_paths(wf: Workflow, source: str, target: str, *, limit: int = 1000) -> list[list[str]]:
    """Every path from ``source`` to ``target`` (at most ``limit``; the number can grow exponentially)."""
    wf.node(source)
    wf.node(target)
    paths: list[list[str]] = []
    stack: list[tuple[str, list[str]]] = [(source, [source])]
    while stack and len(paths) < limit:
        current, path = stack.pop()
        if current == target:
            paths.append(path)
            continue
        for nxt in reversed(wf.successors(current)):
            stack.append((nxt, [*path, nxt]))
    return paths


def subgraph(wf: Workflow, node_ids: Iterable[str], *, name: str | None = None) -> Workflow:
    """A new workflow with the given nodes and the edges between them (new id, same metadata).

    Raises :class:`ValidationError` if a kept condition reads a node that is left out.
    """
    keep = list(dict.fromkeys(node_ids))
    for nid in keep:
        if nid not in wf:
            raise NotFoundError(
                f"workflow has no node {nid!r}", code="workflow.node_not_found", context={"node": nid}
            )
    keep_set = set(keep)
    edges: list[Edge] = []
    for edge in wf.edges.values():
        if edge.source in keep_set and edge.target in keep_set:
            expr = edge.expression
            if expr is not None:
                for ref in expr.refs():
                    if ref.node not in keep_set:
                        raise ValidationError(
                            f"edge {edge.id!r} reads {ref.node}.{ref.port}, which is not in the subgraph",
                            code="workflow.subgraph_incomplete",
                            context={"edge": edge.id, "node": ref.node, "column": ref.col},
                            hint=f"include {ref.node!r} in the selection",
                        )
            edges.append(edge)
    ordered = [wf.node(nid) for nid in wf.nodes if nid in keep_set]
    return Workflow._from_checked(
        nodes=ordered,
        edges=edges,
        types=wf.types,
        name=name if name is not None else f"{wf.name} (subgraph)",
        version=wf.version,
        description=wf.description,
        metadata=wf.metadata,
    )


@attrs.frozen
class WorkflowDiff:
    """What changed from workflow ``a`` to workflow ``b``.

    ``changed_nodes`` / ``changed_edges`` map an id to ``{field: [old, new]}``; ``fields`` does
    the same for the workflow's own fields (name, version, metadata...).
    """

    added_nodes: tuple[str, ...] = ()
    removed_nodes: tuple[str, ...] = ()
    changed_nodes: Mapping[str, Mapping[str, tuple[Any, Any]]] = attrs.field(factory=dict)
    added_edges: tuple[str, ...] = ()
    removed_edges: tuple[str, ...] = ()
    changed_edges: Mapping[str, Mapping[str, tuple[Any, Any]]] = attrs.field(factory=dict)
    fields: Mapping[str, tuple[Any, Any]] = attrs.field(factory=dict)

    @property
    def is_empty(self) -> bool:
        """True if the two workflows are the same (ignoring the ``updated`` timestamp)."""
        return not (
            self.added_nodes
            or self.removed_nodes
            or self.changed_nodes
            or self.added_edges
            or self.removed_edges
            or self.changed_edges
            or self.fields
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        from symphony_workflow._serialization import to_jsonable

        def pairs(m: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
            return {k: [to_jsonable(v[0]), to_jsonable(v[1])] for k, v in m.items()}

        return {
            "added_nodes": list(self.added_nodes),
            "removed_nodes": list(self.removed_nodes),
            "changed_nodes": {k: pairs(v) for k, v in self.changed_nodes.items()},
            "added_edges": list(self.added_edges),
            "removed_edges": list(self.removed_edges),
            "changed_edges": {k: pairs(v) for k, v in self.changed_edges.items()},
            "fields": pairs(self.fields),
        }

    def summary(self) -> str:
        """One line per change, ``+`` added, ``-`` removed, ``~`` changed."""
        lines = [f"~ {k}: {v[0]!r} -> {v[1]!r}" for k, v in self.fields.items()]
        lines += [f"+ node {n}" for n in self.added_nodes]
        lines += [f"- node {n}" for n in self.removed_nodes]
        lines += [f"~ node {n}: {', '.join(sorted(f))}" for n, f in self.changed_nodes.items()]
        lines += [f"+ edge {e}" for e in self.added_edges]
        lines += [f"- edge {e}" for e in self.removed_edges]
        lines += [f"~ edge {e}: {', '.join(sorted(f))}" for e, f in self.changed_edges.items()]
        return "\n".join(lines) if lines else "no differences"


def _field_changes(old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for field in attrs.fields(type(old)):
        if not field.init or not field.eq:
            continue
        a = getattr(old, field.name)
        b = getattr(new, field.name)
        if a != b:
            changes[field.name] = (a, b)
    return changes


def diff(a: Workflow, b: Workflow) -> WorkflowDiff:
    """The changes that turn workflow ``a`` into workflow ``b`` (by node and edge id)."""
    fields: dict[str, tuple[Any, Any]] = {}
    for name in ("id", "name", "version", "description", "metadata", "created"):
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            fields[name] = (va, vb)
    na, nb = a.nodes, b.nodes
    ea, eb = a.edges, b.edges
    changed_nodes = {nid: ch for nid in na if nid in nb and (ch := _field_changes(na[nid], nb[nid]))}
    changed_edges = {eid: ch for eid in ea if eid in eb and (ch := _field_changes(ea[eid], eb[eid]))}
    return WorkflowDiff(
        added_nodes=tuple(n for n in nb if n not in na),
        removed_nodes=tuple(n for n in na if n not in nb),
        changed_nodes=changed_nodes,
        added_edges=tuple(e for e in eb if e not in ea),
        removed_edges=tuple(e for e in ea if e not in eb),
        changed_edges=changed_edges,
        fields=fields,
    )
