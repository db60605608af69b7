"""Workflow validation: every problem collected in one pass, errors and warnings kept apart.

:func:`validate` checks a :class:`~symphony_workflow._model.Workflow`; :func:`check_parts` checks
raw lists of nodes and edges (what a document decodes to, where ids may repeat and edges may
dangle). Both run in linear time: Kahn's algorithm and iterative searches, no recursion.

Errors (``report.errors``):

========================================  ==========================================================
``workflow.duplicate_node_id``            two nodes share an id
``workflow.duplicate_edge_id``            two edges share an id
``workflow.dangling_edge``                an edge names a node that does not exist
``workflow.invalid_edge``                 an edge's fields do not fit its kind (a data edge without ports...)
``workflow.unknown_port``                 an edge names a port the node does not have
``workflow.invalid_port_type``            a port type expression is malformed or unknown
``workflow.invalid_node_shape``           an input node with inputs, an output node with outputs
``workflow.type_mismatch``                a data edge joins incompatible port types (expected vs found)
``workflow.multiple_sources``             a single-valued input port fed by several edges
``workflow.cycle``                        a cycle, given as a closed path ``[a, b, a]``
``workflow.expression.*``                 a condition does not parse (with column) or reads a missing,
                                          unknown or not-upstream output
``workflow.missing_input``                a required input port of an enabled node has no incoming edge
``workflow.unknown_node_type``            no installed plugin provides the node's type
``workflow.node_type.kind``               the node's kind differs from its type's (operator vs instrument)
``workflow.node_type.unknown_port``       the node has a port its type does not declare
``workflow.node_type.port_direction``     the node has as an input what its type has as an output, or
                                          the reverse
``workflow.node_type.port_type``          a port's type does not fit its type's: the node's input must be
                                          assignable to the type's, the type's output to the node's
``workflow.policy.unknown_fallback``      a node's ``policy.fallback`` names no node (or itself)
``workflow.policy.fallback_outputs``      the fallback node lacks one of the node's outputs, or its
                                          type is not assignable to the node's
``workflow.policy.fallback_cycle``        fallback nodes fall back to each other in a loop
``workflow.policy.fallback_value``        ``policy.fallback_value`` names a port that is not an output
========================================  ==========================================================

The ``node_type.*`` checks run when ``node_types`` knows a type's spec: a
:class:`~symphony_workflow.NodeTypeRegistry`, or a mapping of name to
:class:`~symphony_workflow.NodeTypeSpec` (``None`` for a type known by name only), as the
``workflow`` service builds from installed plugins' manifests.

Warnings (``report.warnings``): ``workflow.orphan_node`` (no edges at all), ``workflow.unreachable``
(can never run: every path to it starts at a node that cannot run or crosses a disabled node),
``workflow.control_shape`` (a branch or parallel with fewer than two ways out, a merge or join
with fewer than two ways in) and ``workflow.node_types_unchecked`` (no node-type lookup given).

*Integrity* errors (:data:`INTEGRITY_CODES`) are the ones a :class:`Workflow` object can never
contain: loading a document refuses them. A loaded workflow may still be *incomplete*
(missing inputs, node types not installed); :func:`validate` reports that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any

import attrs

from symphony.commons.errors import ValidationError
from symphony.commons.gcpause import without_gc
from symphony_workflow._checks import (
    Issue,
    Severity,
    _err,
    _warn,
    edge_problems,
    expression_problems,
    node_problems,
    node_type_problems,
)
from symphony_workflow._errors import WorkflowValidationError
from symphony_workflow._model import BUILTIN_NODE_TYPES, Edge, EdgeKind, Node, NodeKind, Workflow
from symphony_workflow._node_types import NodeTypeRegistry, NodeTypeSpec
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem

__all__ = [
    "INTEGRITY_CODES",
    "Issue",
    "NodeTypeLookup",
    "Severity",
    "ValidationOptions",
    "ValidationReport",
    "check_parts",
    "validate",
]

NodeTypeLookup = Container[str] | Callable[[str], bool]
"""Which node types are installed: a set-like of type names or a predicate; a
``NodeTypeRegistry`` or a mapping of name to ``NodeTypeSpec | None`` also checks ports."""

INTEGRITY_CODES: frozenset[str] = frozenset(
    {
        "workflow.duplicate_node_id",
        "workflow.duplicate_edge_id",
        "workflow.dangling_edge",
        "workflow.invalid_edge",
        "workflow.unknown_port",
        "workflow.invalid_port_type",
        "workflow.invalid_node_shape",
        "workflow.type_mismatch",
        "workflow.multiple_sources",
        "workflow.cycle",
        "workflow.expression.syntax",
        "workflow.expression.unknown_node",
        "workflow.expression.unknown_output",
        "workflow.expression.not_upstream",
    }
)
"""Error codes that make a graph structurally unsound (a document with them does not load)."""

_MAX_CYCLES = 20


@attrs.frozen
class ValidationReport:
    """Everything :func:`validate` found. ``valid`` is true when there are no errors."""

    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()

    @property
    def valid(self) -> bool:
        """True if there are no errors (warnings do not count)."""
        return not self.errors

    @property
    def issues(self) -> tuple[Issue, ...]:
        """Errors then warnings."""
        return self.errors + self.warnings

    def codes(self) -> set[str]:
        """The distinct codes of all issues."""
        return {i.code for i in self.issues}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``valid``, ``errors``, ``warnings``."""
        return {
            "valid": self.valid,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }

    def raise_for_errors(self, *, what: str = "workflow", codes: Container[str] | None = None) -> None:
        """Raise :class:`WorkflowValidationError` if there are errors (only those in ``codes`` if given).

        The message and context name the first error; ``context["issues"]`` lists them all.
        """
        errors = [e for e in self.errors if codes is None or e.code in codes]
        if not errors:
            return
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        context = first.to_dict()
        context.pop("message", None)
        context.pop("severity", None)
        context.pop("code", None)
        context["issues"] = [e.to_dict() for e in errors]
        raise WorkflowValidationError(
            f"invalid {what}: {first.message}{more}", code=first.code, context=context, issues=errors
        )


@attrs.frozen
class ValidationOptions:
    """Toggles: ``allow_orphans`` silences orphan warnings; ``check_reachability`` the unreachable ones."""

    allow_orphans: bool = False
    check_reachability: bool = True
    check_control_shape: bool = True


_UNCHECKED = object()


# --- the engine ---------------------------------------------------------------------------------------


def _lookup_fn(node_types: Any) -> Callable[[str], bool] | None:
    if node_types is None:
        return None
    if callable(node_types) and not hasattr(node_types, "__contains__"):
        return node_types  # type: ignore[no-any-return]
    return node_types.__contains__  # type: ignore[no-any-return]


def _spec_fn(node_types: Any) -> Callable[[str], NodeTypeSpec | None] | None:
    if isinstance(node_types, NodeTypeRegistry):
        return node_types.find
    if isinstance(node_types, Mapping):
        get = node_types.get

        def spec_of(name: str) -> NodeTypeSpec | None:
            found = get(name)
            return found if isinstance(found, NodeTypeSpec) else None

        return spec_of
    return None


def validate(
    workflow: Workflow,
    *,
    node_types: NodeTypeLookup | None = None,
    options: ValidationOptions | None = None,
) -> ValidationReport:
    """Check ``workflow`` completely and return every error and warning.

    ``node_types`` tells which instrument/operator types are installed; without it that check
    is skipped with a ``workflow.node_types_unchecked`` warning. Built-in control, input and
    output types are always known.
    """
    return check_parts(
        list(workflow.nodes.values()),
        list(workflow.edges.values()),
        types=workflow.types,
        node_types=node_types,
        options=options,
        unique_ids=True,
    )


@without_gc
def check_parts(
    nodes: Sequence[Node],
    edges: Sequence[Edge],
    *,
    types: TypeSystem = DEFAULT_TYPES,
    node_types: NodeTypeLookup | None = None,
    options: ValidationOptions | None = None,
    integrity_only: bool = False,
    prefix: str = "$.workflow",
    unique_ids: bool = False,
) -> ValidationReport:
    """Validate raw node and edge lists (ids may repeat, edges may dangle). Linear time.

    ``integrity_only`` stops after the structural checks (what loading a document needs).
    ``unique_ids`` skips the duplicate-id checks (a :class:`Workflow` cannot hold duplicates).
    JSON paths in issues are ``{prefix}.nodes[i]`` / ``{prefix}.edges[j]``.
    """
    opts = options or ValidationOptions()
    errors: list[Issue] = []
    warnings: list[Issue] = []

    # nodes ----------------------------------------------------------------------------------
    by_id: dict[str, Node] = {}
    good_types: set[str] = set()
    input_kind, output_kind = NodeKind.INPUT, NodeKind.OUTPUT
    node_pos = _Positions(nodes)
    for i, node in enumerate(nodes):
        nid = node.id
        if not unique_ids and nid in by_id:
            errors.append(
                _err(
                    "workflow.duplicate_node_id",
                    f"duplicate node id {nid!r} (first at {prefix}.nodes[{node_pos[nid]}])",
                    node=nid,
                    path=f"{prefix}.nodes[{i}].id",
                )
            )
            continue
        by_id[nid] = node
        kind = node.kind
        ptypes = node.port_types
        if (
            ptypes <= good_types
            and not (kind is input_kind and node.inputs)
            and not (kind is output_kind and node.outputs)
        ):
            continue
        found = node_problems(node, types, f"{prefix}.nodes[{i}]")
        if found:
            errors.extend(found)
        else:
            good_types.update(ptypes)

    # edges ----------------------------------------------------------------------------------
    succ: dict[str, list[str]] = {nid: [] for nid in by_id}
    indeg: dict[str, int] = dict.fromkeys(by_id, 0)
    fed: dict[tuple[str, str], int] = {}
    seen_edges: dict[str, int] = {}
    conditional: list[tuple[int, Edge]] = []
    compat: dict[tuple[str, str], bool] = {}
    assignable = types.is_assignable
    data_kind = EdgeKind.DATA
    get_node = by_id.get
    for j, edge in enumerate(edges):
        if not unique_ids:
            eid = edge.id
            if eid in seen_edges:
                errors.append(
                    _err(
                        "workflow.duplicate_edge_id",
                        f"duplicate edge id {eid!r} (first at {prefix}.edges[{seen_edges[eid]}])",
                        edge=eid,
                        path=f"{prefix}.edges[{j}].id",
                    )
                )
                continue
            seen_edges[eid] = j
        s = edge.source
        t = edge.target
        src = get_node(s)
        dst = get_node(t)
        tp = edge.target_port
        # Fast path: a well-formed data edge between existing, compatible, free ports.
        sp = edge.source_port
        if (
            edge.kind is data_kind
            and src is not None
            and dst is not None
            and sp is not None
            and tp is not None
            and edge.condition is None
        ):
            op = (src._index or src._ports_index()).outputs.get(sp)
            ip = (dst._index or dst._ports_index()).inputs.get(tp)
            if op is not None and ip is not None:
                ok: bool | None
                ot = op.type
                it = ip.type
                if ot == it and ot in good_types:
                    ok = True
                else:
                    pair = (ot, it)
                    ok = compat.get(pair)
                    if ok is None:
                        try:
                            ok = compat[pair] = assignable(ot, it)
                        except ValidationError:
                            ok = compat[pair] = True  # the bad port type itself is reported elsewhere
                key = (t, tp)
                if ok and (key not in fed or ip.multiple):
                    fed[key] = fed.get(key, 0) + 1
                    succ[s].append(t)
                    indeg[t] += 1
                    continue
        found = _slow_edge(edge, by_id, types, fed, f"{prefix}.edges[{j}]")
        if found:
            errors.extend(found)
        if src is not None and dst is not None:
            if tp is not None:
                fed[(t, tp)] = fed.get((t, tp), 0) + 1
            succ[s].append(t)
            indeg[t] += 1
        if edge.condition is not None:
            conditional.append((j, edge))

    # cycles (Kahn) --------------------------------------------------------------------------
    remaining = indeg.copy()
    order: list[str] = [nid for nid, d in remaining.items() if d == 0]
    append = order.append
    for current in order:  # the list grows while we walk it
        for nxt in succ[current]:
            left = remaining[nxt] - 1
            remaining[nxt] = left
            if not left:
                append(nxt)
    acyclic = len(order) == len(by_id)
    if not acyclic:
        stuck = {nid for nid, d in remaining.items() if d > 0}
        for cycle in find_cycles(stuck, succ):
            errors.append(
                _err(
                    "workflow.cycle",
                    f"cycle: {' -> '.join(cycle)}",
                    node=cycle[0],
                    path=f"{prefix}.nodes[{node_pos[cycle[0]]}]",
                    details={"cycle": cycle},
                )
            )

    # conditions -----------------------------------------------------------------------------
    if conditional:
        ancestry = _Ancestry(order, succ) if acyclic else None
        for j, edge in conditional:
            upstream: Callable[[str], bool] | None = None
            if ancestry is not None and edge.source in by_id:
                upstream = ancestry.upstream_of(edge.source)
            errors.extend(expression_problems(edge, by_id, upstream, f"{prefix}.edges[{j}]"))

    if integrity_only:
        return ValidationReport(tuple(errors), tuple(warnings))

    # one pass over the nodes: node types, required inputs, orphans, control shape -----------
    lookup = _lookup_fn(node_types)
    spec_of = _spec_fn(node_types)
    plain: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {}
    builtin = BUILTIN_NODE_TYPES
    control_kind = NodeKind.CONTROL
    check_orphans = len(by_id) > 1 and not opts.allow_orphans
    shape = opts.check_control_shape
    blocked: set[str] = set()
    disabled = 0
    unchecked = False
    for nid, node in by_id.items():
        kind = node.kind
        if kind is control_kind or kind is input_kind or kind is output_kind:
            is_builtin = (kind.value, node.type) in builtin
        else:
            is_builtin = False
        if not is_builtin:
            if lookup is None:
                unchecked = True
            else:
                try:
                    known = bool(lookup(node.type))
                except Exception:  # a broken lookup must not break validation
                    known = False
                if not known:
                    errors.append(
                        _err(
                            "workflow.unknown_node_type",
                            f"node {nid!r}: no installed plugin provides {kind.value} type {node.type!r}",
                            node=nid,
                            path=f"{prefix}.nodes[{node_pos[nid]}].type",
                            details={"type": node.type, "kind": kind.value},
                        )
                    )
                elif spec_of is not None:
                    spec = spec_of(node.type)
                    if spec is not None:
                        if not _fits(node, spec, plain, assignable):
                            errors.extend(
                                node_type_problems(node, spec, types, f"{prefix}.nodes[{node_pos[nid]}]")
                            )
        if node.enabled:
            for pname in node.required_inputs:
                if (nid, pname) not in fed:
                    blocked.add(nid)
                    port = node.input(pname)
                    errors.append(
                        _err(
                            "workflow.missing_input",
                            f"required input {nid}.{pname} ({port.type if port else 'any'}) "
                            "has no incoming edge",
                            node=nid,
                            port=pname,
                            path=f"{prefix}.nodes[{node_pos[nid]}]",
                        )
                    )
        else:
            disabled += 1
        if check_orphans and not indeg[nid] and not succ[nid]:
            warnings.append(
                _warn(
                    "workflow.orphan_node",
                    f"node {nid!r} is not connected to anything",
                    node=nid,
                    path=f"{prefix}.nodes[{node_pos[nid]}]",
                )
            )
        if shape and kind is control_kind:
            outs = len(succ[nid])
            ins = indeg[nid]
            if node.type in ("branch", "parallel") and outs < 2:
                warnings.append(
                    _warn(
                        "workflow.control_shape",
                        f"{node.type} node {nid!r} has {outs} outgoing edge(s); it is meant to have several",
                        node=nid,
                        path=f"{prefix}.nodes[{node_pos[nid]}]",
                    )
                )
            elif node.type in ("merge", "join") and ins < 2:
                warnings.append(
                    _warn(
                        "workflow.control_shape",
                        f"{node.type} node {nid!r} has {ins} incoming edge(s); it is meant to have several",
                        node=nid,
                        path=f"{prefix}.nodes[{node_pos[nid]}]",
                    )
                )
    if any(not node.policy.is_default for node in by_id.values()):
        errors.extend(_policy_problems(by_id, types, node_pos, prefix))
    if unchecked:
        warnings.insert(
            0,
            _warn(
                "workflow.node_types_unchecked",
                "node types were not checked against installed plugins (no node-type lookup given)",
            ),
        )

    # reachability ---------------------------------------------------------------------------
    if opts.check_reachability and acyclic and (blocked or disabled):
        # A node can run if it is enabled, has its required inputs, and is an entry or is reached
        # from a runnable entry through runnable nodes.
        runs = {nid for nid, node in by_id.items() if node.enabled and nid not in blocked}
        frontier = deque(nid for nid in order if indeg[nid] == 0 and nid in runs)
        reached: set[str] = set(frontier)
        while frontier:
            current = frontier.popleft()
            for nxt in succ[current]:
                if nxt not in reached and nxt in runs:
                    reached.add(nxt)
                    frontier.append(nxt)
        for nid in order:
            if nid in runs and nid not in reached:
                warnings.append(
                    _warn(
                        "workflow.unreachable",
                        f"node {nid!r} can never run: every path to it starts at a node that cannot run "
                        "or crosses a disabled node",
                        node=nid,
                        path=f"{prefix}.nodes[{node_pos[nid]}]",
                    )
                )
    return ValidationReport(tuple(errors), tuple(warnings))


def _fits(
    node: Node,
    spec: NodeTypeSpec,
    plain: dict[str, tuple[str, dict[str, str], dict[str, str]]],
    assignable: Callable[[str, str], bool],
) -> bool:
    """The fast yes of :func:`node_type_problems`: True when the node fits its type's spec."""
    cached = plain.get(spec.name)
    if cached is None:
        cached = plain[spec.name] = (spec.kind, dict(spec.inputs), dict(spec.outputs))
    kind, ins, outs = cached
    if node.kind.value != kind:
        return False
    try:
        for port in node.inputs:
            declared = ins.get(port.name)
            if declared is None or (declared != port.type and not assignable(port.type, declared)):
                return False
        for port in node.outputs:
            declared = outs.get(port.name)
            if declared is None or (declared != port.type and not assignable(declared, port.type)):
                return False
    except ValidationError:
        return False  # let node_type_problems sort out what is malformed
    return True


def _policy_problems(
    by_id: Mapping[str, Node], types: TypeSystem, node_pos: _Positions, prefix: str
) -> list[Issue]:
    """Policy checks that need other nodes: fallback targets and fallback values."""
    out: list[Issue] = []
    for nid, node in by_id.items():
        policy = node.policy
        path = f"{prefix}.nodes[{node_pos[nid]}].policy"
        if policy.fallback_value is not None:
            for name in policy.fallback_value:
                if node.output(name) is None:
                    out.append(
                        _err(
                            "workflow.policy.fallback_value",
                            f"node {nid!r}: fallback_value names {name!r}, which is not one of its outputs",
                            node=nid,
                            port=name,
                            path=f"{path}.fallback_value",
                        )
                    )
        fb = policy.fallback
        if fb is None:
            continue
        other = by_id.get(fb)
        if other is None or fb == nid:
            why = "the node itself" if fb == nid else "no node"
            out.append(
                _err(
                    "workflow.policy.unknown_fallback",
                    f"node {nid!r}: fallback {fb!r} is {why}",
                    node=nid,
                    path=f"{path}.fallback",
                    details={"fallback": fb},
                )
            )
            continue
        for port in node.outputs:
            alt = other.output(port.name)
            try:
                ok = alt is not None and types.is_assignable(alt.type, port.type)
            except ValidationError:
                ok = True  # a malformed port type is reported on its own
            if not ok:
                found = "no such output" if alt is None else f"type {alt.type!r}"
                out.append(
                    _err(
                        "workflow.policy.fallback_outputs",
                        f"node {nid!r}: fallback {fb!r} cannot stand in for output "
                        f"{port.name!r} ({port.type}): {found}",
                        node=nid,
                        port=port.name,
                        path=f"{path}.fallback",
                        details={
                            "fallback": fb,
                            "expected": port.type,
                            "found": None if alt is None else alt.type,
                        },
                    )
                )
    # fallback chains must end: follow each chain once (colouring keeps this linear)
    state: dict[str, int] = {}
    for start in by_id:
        chain: list[str] = []
        current: str | None = start
        while current is not None and current in by_id and current not in state:
            state[current] = 1
            chain.append(current)
            current = by_id[current].policy.fallback
            if current is not None and current == chain[-1]:
                current = None  # a self-fallback is reported above
        if current is not None and state.get(current) == 1 and current in chain:
            loop = [*chain[chain.index(current) :], current]
            out.append(
                _err(
                    "workflow.policy.fallback_cycle",
                    f"fallback nodes loop: {' -> '.join(loop)}",
                    node=current,
                    path=f"{prefix}.nodes[{node_pos[current]}].policy.fallback",
                    details={"cycle": loop},
                )
            )
        for nid in chain:
            state[nid] = 2
    return out


class _Positions:
    """Node id -> index in the node list, built only when an issue needs a path."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._nodes = nodes
        self._map: dict[str, int] | None = None

    def __getitem__(self, node_id: str) -> int:
        if self._map is None:
            m: dict[str, int] = {}
            for i, node in enumerate(self._nodes):
                m.setdefault(node.id, i)
            self._map = m
        return self._map.get(node_id, -1)


def _slow_edge(
    edge: Edge, by_id: Mapping[str, Node], types: TypeSystem, fed: Mapping[tuple[str, str], int], path: str
) -> list[Issue]:
    return edge_problems(edge, by_id, types, port_sources=fed, path=path)


class _Ancestry:
    """Answers "does ``x`` run before ``source``?" cheaply: direct edges first, then a backward
    search pruned by topological position (indexes built on first need)."""

    def __init__(self, order: list[str], succ: Mapping[str, list[str]]) -> None:
        self._order = order
        self._succ = succ
        self._pos: dict[str, int] | None = None
        self._preds: dict[str, list[str]] | None = None

    def _build(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        if self._pos is None or self._preds is None:
            self._pos = {nid: k for k, nid in enumerate(self._order)}
            preds: dict[str, list[str]] = {nid: [] for nid in self._order}
            for s_id, targets in self._succ.items():
                for t_id in targets:
                    preds[t_id].append(s_id)
            self._preds = preds
        return self._pos, self._preds

    def upstream_of(self, source: str) -> Callable[[str], bool]:
        """A predicate: is ``x`` the source or one of its ancestors?"""
        cache: dict[str, bool] = {source: True}
        succ = self._succ

        def test(x: str) -> bool:
            hit = cache.get(x)
            if hit is not None:
                return hit
            if source in succ.get(x, ()):
                cache[x] = True
                return True
            pos, preds = self._build()
            x_pos = pos.get(x)
            found = False
            if x_pos is not None and x_pos < pos[source]:
                seen = {source}
                todo = [source]
                while todo and not found:
                    for p in preds[todo.pop()]:
                        if p == x:
                            found = True
                            break
                        if p not in seen and pos[p] > x_pos:
                            seen.add(p)
                            todo.append(p)
            cache[x] = found
            return found

        return test


def find_cycles(stuck: set[str], succ: Mapping[str, list[str]]) -> list[list[str]]:
    """Closed paths for the cycles among ``stuck`` nodes (iterative three-colour DFS, capped)."""
    colour: dict[str, int] = {}  # 1 = on stack, 2 = done
    cycles: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()
    for start in sorted(stuck):
        if start in colour:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(succ[start]))]
        on_path: list[str] = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            advanced = False
            for nxt in it:
                if nxt not in stuck:
                    continue
                state = colour.get(nxt)
                if state is None:
                    colour[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
                    on_path.append(nxt)
                    advanced = True
                    break
                if state == 1:
                    cycle = [*on_path[on_path.index(nxt) :], nxt]
                    key = frozenset(cycle)
                    if key not in seen_sets and len(cycles) < _MAX_CYCLES:
                        seen_sets.add(key)
                        cycles.append(cycle)
            if not advanced:
                colour[node] = 2
                stack.pop()
                on_path.pop()
    return cycles
