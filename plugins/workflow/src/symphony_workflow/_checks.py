"""Checks of one node or one edge, shared by :func:`validate` and the ``Workflow`` mutation API.

A leaf of the package's import graph: it needs the node and edge kinds (``_kinds``) but not
the model, so ``_model`` and ``_validation`` both import it and neither imports the other's
dependents at run time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from symphony.commons.errors import ValidationError
from symphony_workflow._errors import CycleError
from symphony_workflow._kinds import EdgeKind, NodeKind

if TYPE_CHECKING:
    from symphony_workflow._model import Edge, Node
    from symphony_workflow._node_types import NodeTypeSpec
    from symphony_workflow._types import TypeSystem

__all__ = [
    "Issue",
    "Severity",
    "edge_problems",
    "expression_problems",
    "node_problems",
    "node_type_problems",
]


class Severity(enum.StrEnum):
    """Whether an issue makes the workflow invalid."""

    ERROR = "error"
    WARNING = "warning"


@attrs.frozen(slots=True)
class Issue:
    """One validation finding, with where it is: ``node``, ``edge``, ``port``, JSON ``path``, ``column``."""

    code: str
    message: str
    severity: Severity = Severity.ERROR
    node: str | None = None
    edge: str | None = None
    port: str | None = None
    path: str | None = None
    column: int | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (only the location fields that are set)."""
        out: dict[str, Any] = {"code": self.code, "severity": self.severity.value, "message": self.message}
        for key in ("node", "edge", "port", "path", "column"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.details:
            out.update({k: v for k, v in self.details.items() if k not in out})
        return out

    def location(self) -> str:
        """``node=x edge=y ...`` for messages."""
        parts = [
            f"{k}={getattr(self, k)}" for k in ("path", "node", "edge", "port", "column") if getattr(self, k)
        ]
        return " ".join(parts)

    def to_error(self) -> ValidationError:
        """This issue as a raisable :class:`ValidationError` (a :class:`CycleError` for cycles)."""
        context = self.to_dict()
        context.pop("message", None)
        context.pop("severity", None)
        code = context.pop("code")
        if self.code == "workflow.cycle":
            return CycleError(
                self.message, path=list(self.details.get("cycle", [])), code=code, context=context
            )
        return ValidationError(self.message, code=code, context=context)


def _err(code: str, message: str, **where: Any) -> Issue:
    details = where.pop("details", None) or {}
    return Issue(code, message, Severity.ERROR, details=details, **where)


def _warn(code: str, message: str, **where: Any) -> Issue:
    details = where.pop("details", None) or {}
    return Issue(code, message, Severity.WARNING, details=details, **where)


# --- per-object checks (shared with the Workflow mutation API) ----------------------------------------


def node_problems(node: Node, types: TypeSystem, path: str | None = None) -> list[Issue]:
    """Problems of one node on its own: port types and input/output shape."""
    issues: list[Issue] = []
    for which, ports in (("inputs", node.inputs), ("outputs", node.outputs)):
        for i, port in enumerate(ports):
            if not types.is_valid(port.type):
                issues.append(
                    _err(
                        "workflow.invalid_port_type",
                        f"port {node.id}.{port.name} has unknown type {port.type!r}",
                        node=node.id,
                        port=port.name,
                        path=f"{path}.{which}[{i}].type" if path else None,
                        details={"type": port.type, "known": types.scalars},
                    )
                )
    if node.kind is NodeKind.INPUT and node.inputs:
        issues.append(
            _err(
                "workflow.invalid_node_shape",
                f"input node {node.id!r} cannot have input ports",
                node=node.id,
                path=path,
            )
        )
    if node.kind is NodeKind.OUTPUT and node.outputs:
        issues.append(
            _err(
                "workflow.invalid_node_shape",
                f"output node {node.id!r} cannot have output ports",
                node=node.id,
                path=path,
            )
        )
    return issues


def node_type_problems(
    node: Node, spec: NodeTypeSpec, types: TypeSystem, path: str | None = None
) -> list[Issue]:
    """Problems of a node against its type's spec: kind, port names, directions and types.

    Each port the node declares must exist on the type on the same side; data flows from the
    node's input into the type's (the node's type must be assignable to the type's) and from
    the type's output into the node's (the type's must be assignable to the node's).
    """
    issues: list[Issue] = []
    if node.kind.value != spec.kind:
        issues.append(
            _err(
                "workflow.node_type.kind",
                f"node {node.id!r} is an {node.kind.value} node, but type {spec.name!r} is an {spec.kind}",
                node=node.id,
                path=f"{path}.kind" if path else None,
                details={"type": spec.name, "expected": spec.kind, "found": node.kind.value},
            )
        )
    sides = (
        ("inputs", "input", "output", node.inputs, spec.inputs, spec.outputs),
        ("outputs", "output", "input", node.outputs, spec.outputs, spec.inputs),
    )
    for which, side, other_side, ports, own, other in sides:
        for i, port in enumerate(ports):
            where = f"{path}.{which}[{i}]" if path else None
            declared = own.get(port.name)
            if declared is None:
                if port.name in other:
                    issues.append(
                        _err(
                            "workflow.node_type.port_direction",
                            f"node {node.id!r} has {port.name!r} as an {side}, but type {spec.name!r} "
                            f"has it as an {other_side}",
                            node=node.id,
                            port=port.name,
                            path=where,
                            details={"type": spec.name, "expected": other_side, "found": side},
                        )
                    )
                else:
                    issues.append(
                        _err(
                            "workflow.node_type.unknown_port",
                            f"node {node.id!r} has {side} {port.name!r}, which type {spec.name!r} does not "
                            f"declare (its {which}: {', '.join(own) or 'none'})",
                            node=node.id,
                            port=port.name,
                            path=where,
                            details={"type": spec.name, "available": list(own)},
                        )
                    )
                continue
            source, target = (port.type, declared) if which == "inputs" else (declared, port.type)
            try:
                compatible = types.is_assignable(source, target)
            except ValidationError:
                continue  # a malformed node port type is reported by node_problems
            if not compatible:
                issues.append(
                    _err(
                        "workflow.node_type.port_type",
                        f"{side} {node.id}.{port.name} is {port.type!r}, but type {spec.name!r} declares it "
                        f"as {declared!r}",
                        node=node.id,
                        port=port.name,
                        path=f"{where}.type" if where else None,
                        details={"type": spec.name, "expected": declared, "found": port.type},
                    )
                )
    return issues


def _edge_shape(edge: Edge, path: str | None) -> Issue | None:
    kind = edge.kind
    reason = None
    if kind is EdgeKind.DATA:
        if edge.source_port is None or edge.target_port is None:
            reason = "a data edge needs source_port and target_port"
        elif edge.condition is not None:
            reason = "a data edge cannot have a condition (use a conditional edge)"
    elif kind is EdgeKind.CONTROL:
        if edge.source_port is not None or edge.target_port is not None:
            reason = "a control edge has no ports (use a data edge to move values)"
        elif edge.condition is not None:
            reason = "a control edge cannot have a condition (use a conditional edge)"
        elif edge.transform is not None:
            reason = "a control edge cannot have a transform"
    else:
        if edge.condition is None:
            reason = "a conditional edge needs a condition"
        elif (edge.source_port is None) != (edge.target_port is None):
            reason = "a conditional edge carries data only with both source_port and target_port"
        elif edge.transform is not None and edge.source_port is None:
            reason = "a transform needs ports to act on"
    if reason is None:
        return None
    return _err("workflow.invalid_edge", f"edge {edge.id!r}: {reason}", edge=edge.id, path=path)


def edge_problems(
    edge: Edge,
    nodes: Mapping[str, Node],
    types: TypeSystem,
    *,
    port_sources: Mapping[tuple[str, str], int] | None,
    path: str | None = None,
) -> list[Issue]:
    """Problems of one edge against the nodes: shape, endpoints, ports, types, several sources."""
    shape = _edge_shape(edge, path)
    if shape is not None:
        return [shape]
    issues: list[Issue] = []
    src = nodes.get(edge.source)
    dst = nodes.get(edge.target)
    if src is None:
        issues.append(
            _err(
                "workflow.dangling_edge",
                f"edge {edge.id!r} starts at unknown node {edge.source!r}",
                edge=edge.id,
                node=edge.source,
                path=f"{path}.source" if path else None,
            )
        )
    if dst is None:
        issues.append(
            _err(
                "workflow.dangling_edge",
                f"edge {edge.id!r} ends at unknown node {edge.target!r}",
                edge=edge.id,
                node=edge.target,
                path=f"{path}.target" if path else None,
            )
        )
    if src is None or dst is None or edge.source_port is None or edge.target_port is None:
        return issues
    out_port = src.output(edge.source_port)
    in_port = dst.input(edge.target_port)
    if out_port is None:
        issues.append(
            _err(
                "workflow.unknown_port",
                f"edge {edge.id!r}: node {src.id!r} has no output {edge.source_port!r}",
                edge=edge.id,
                node=src.id,
                port=edge.source_port,
                path=f"{path}.source_port" if path else None,
                details={"available": [p.name for p in src.outputs]},
            )
        )
    if in_port is None:
        issues.append(
            _err(
                "workflow.unknown_port",
                f"edge {edge.id!r}: node {dst.id!r} has no input {edge.target_port!r}",
                edge=edge.id,
                node=dst.id,
                port=edge.target_port,
                path=f"{path}.target_port" if path else None,
                details={"available": [p.name for p in dst.inputs]},
            )
        )
    if out_port is None or in_port is None:
        return issues
    try:
        compatible = types.is_assignable(out_port.type, in_port.type)
    except ValidationError:
        compatible = True  # the bad port type itself is reported by node_problems
    if not compatible:
        issues.append(_mismatch(edge, out_port.type, in_port.type, path))
    if port_sources is not None and not in_port.multiple and port_sources.get((dst.id, in_port.name), 0) > 0:
        issues.append(
            _err(
                "workflow.multiple_sources",
                f"edge {edge.id!r}: input {dst.id}.{in_port.name} already has a source and accepts only one",
                edge=edge.id,
                node=dst.id,
                port=in_port.name,
                path=path,
            )
        )
    return issues


def _mismatch(edge: Edge, found: str, expected: str, path: str | None) -> Issue:
    return _err(
        "workflow.type_mismatch",
        f"edge {edge.id!r}: output {edge.source}.{edge.source_port} is {found!r} "
        f"but input {edge.target}.{edge.target_port} expects {expected!r}",
        edge=edge.id,
        node=edge.target,
        port=edge.target_port,
        path=path,
        details={"expected": expected, "found": found},
    )


def expression_problems(
    edge: Edge,
    nodes: Mapping[str, Node],
    upstream: Container[str] | Callable[[str], bool] | None,
    path: str | None = None,
) -> list[Issue]:
    """Problems of an edge's condition: syntax (with column) and what it reads.

    ``upstream`` says which nodes run before the edge's source (the source included); ``None``
    skips that check (when the graph has a cycle, "upstream" means nothing).
    """
    if edge.condition is None:
        return []
    where = f"{path}.condition" if path else None
    try:
        expr = edge.expression
    except ValidationError as err:
        return [
            _err(
                "workflow.expression.syntax",
                f"condition of edge {edge.id!r} does not parse: {err.message}",
                edge=edge.id,
                path=where,
                column=err.context.get("column"),
                details={"expression": edge.condition},
            )
        ]
    assert expr is not None
    issues: list[Issue] = []
    is_upstream: Callable[[str], bool] | None
    if upstream is None:
        is_upstream = None
    elif callable(upstream):
        is_upstream = upstream
    else:
        is_upstream = upstream.__contains__
    for ref in expr.refs():
        node = nodes.get(ref.node)
        if node is None:
            issues.append(
                _err(
                    "workflow.expression.unknown_node",
                    f"condition of edge {edge.id!r} reads unknown node {ref.node!r} (column {ref.col})",
                    edge=edge.id,
                    node=ref.node,
                    path=where,
                    column=ref.col,
                    details={"expression": edge.condition},
                )
            )
            continue
        if node.output(ref.port) is None:
            issues.append(
                _err(
                    "workflow.expression.unknown_output",
                    f"condition of edge {edge.id!r} reads {ref.node}.{ref.port}, but {ref.node!r} has no "
                    f"output {ref.port!r} (column {ref.col})",
                    edge=edge.id,
                    node=ref.node,
                    port=ref.port,
                    path=where,
                    column=ref.col,
                    details={"expression": edge.condition, "available": [p.name for p in node.outputs]},
                )
            )
            continue
        if is_upstream is not None and not is_upstream(ref.node):
            issues.append(
                _err(
                    "workflow.expression.not_upstream",
                    f"condition of edge {edge.id!r} reads {ref.node}.{ref.port}, "
                    f"but {ref.node!r} does not run "
                    f"before {edge.source!r} (column {ref.col})",
                    edge=edge.id,
                    node=ref.node,
                    port=ref.port,
                    path=where,
                    column=ref.col,
                    details={"expression": edge.condition},
                )
            )
    return issues
