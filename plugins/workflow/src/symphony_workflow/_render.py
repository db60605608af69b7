"""Pretty output: a text tree for terminals, Mermaid for Markdown, Graphviz DOT for images.

:func:`render` picks a format by name (``text``, ``mermaid``, ``dot``). The text tree lists the
nodes in topological order with their ports, and under each node the edges leaving it; ANSI
colours only when asked for. Labels are escaped for each target language, so any node name or
condition renders safely.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from symphony.commons.errors import ValidationError
from symphony_workflow._dag import topological_order
from symphony_workflow._model import Edge, EdgeKind, Node, NodeKind, Port, Workflow

__all__ = ["FORMATS", "render", "render_dot", "render_mermaid", "render_text"]

_RESET = "\033[0m"
_COLOURS = {
    NodeKind.INPUT: "\033[32m",
    NodeKind.OUTPUT: "\033[35m",
    NodeKind.INSTRUMENT: "\033[36m",
    NodeKind.OPERATOR: "\033[34m",
    NodeKind.CONTROL: "\033[33m",
}
_DIM = "\033[2m"
_BOLD = "\033[1m"


def _ports(ports: tuple[Port, ...]) -> str:
    parts = []
    for p in ports:
        mark = "" if p.required else "?"
        many = "*" if p.multiple else ""
        parts.append(f"{p.name}{mark}{many}: {p.type}")
    return ", ".join(parts)


def _edge_text(edge: Edge) -> str:
    if edge.carries_data:
        head = f".{edge.source_port} → {edge.target}.{edge.target_port}"
    else:
        head = edge.target
    extra = []
    if edge.kind is EdgeKind.CONTROL:
        extra.append("after" if not edge.priority else f"after, priority {edge.priority}")
    if edge.condition is not None:
        extra.append(f"if {edge.condition}")
    if edge.transform:
        extra.append(f"via {edge.transform}")
    if edge.label:
        extra.append(f"“{edge.label}”")
    return head + ("  " + "; ".join(extra) if extra else "")


def render_text(wf: Workflow, *, color: bool = False, metadata: bool = False) -> str:
    """A tree: one line per node (kind, type, inputs -> outputs), its outgoing edges below it."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    n, e = len(wf.nodes), len(wf.edges)
    header = f"{wf.name}  v{wf.version}  ({n} node{'s' * (n != 1)}, {e} edge{'s' * (e != 1)})"
    lines = [paint(header, _BOLD)]
    if wf.description:
        lines.append(wf.description)
    if metadata:
        m = wf.metadata
        for key, value in (("id", wf.id), ("author", m.author), ("category", m.category)):
            if value:
                lines.append(paint(f"{key}: {value}", _DIM))
        if m.tags:
            lines.append(paint(f"tags: {', '.join(m.tags)}", _DIM))
    order = topological_order(wf)
    for i, nid in enumerate(order):
        node = wf.node(nid)
        last = i == len(order) - 1
        branch = "└─ " if last else "├─ "
        indent = "   " if last else "│  "
        kind = (
            node.kind.value
            if node.is_builtin and node.kind is not NodeKind.CONTROL
            else f"{node.kind.value} {node.type}"
        )
        sig = _ports(node.inputs)
        outs = _ports(node.outputs)
        signature = " -> ".join(part for part in (f"({sig})" if sig else "", outs) if part)
        if outs and not sig:
            signature = f"-> {outs}"
        name = f" “{node.name}”" if node.name and node.name != node.id else ""
        disabled = paint("  [disabled]", _DIM) if not node.enabled else ""
        lines.append(
            f"{branch}{paint(node.id, _COLOURS[node.kind])}{name}  [{kind}]  {signature}".rstrip() + disabled
        )
        if metadata and node.metadata:
            lines.append(indent + paint(json.dumps(node.metadata, ensure_ascii=False, sort_keys=True), _DIM))
        outgoing = wf.outgoing(nid)
        for k, edge in enumerate(outgoing):
            edge_branch = "└─▶ " if k == len(outgoing) - 1 else "├─▶ "
            lines.append(indent + edge_branch + _edge_text(edge))
    return "\n".join(lines)


# --- Mermaid ----------------------------------------------------------------------------------------


def _mermaid_label(text: str) -> str:
    out = text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    out = out.replace("|", "#124;").replace("\n", " ")
    return f'"{out}"'


def _mermaid_node(node: Node) -> str:
    label = node.label if node.label == node.id else f"{node.label} ({node.id})"
    text = _mermaid_label(f"{label}\u2028{node.type}").replace("\u2028", "<br/>")
    nid = f"n_{node.id}"
    if node.kind is NodeKind.INPUT:
        return f"{nid}[/{text}/]"
    if node.kind is NodeKind.OUTPUT:
        return f"{nid}[\\{text}\\]"
    if node.kind is NodeKind.INSTRUMENT:
        return f"{nid}([{text}])"
    if node.kind is NodeKind.CONTROL:
        return f"{nid}{{{text}}}" if node.type == "branch" else f"{nid}{{{{{text}}}}}"
    return f"{nid}[{text}]"


def render_mermaid(wf: Workflow, *, direction: str = "TD") -> str:
    """A Mermaid ``flowchart``: data edges solid, control edges dotted, conditions as labels."""
    if direction not in ("TD", "TB", "BT", "LR", "RL"):
        raise ValidationError(
            f"unknown Mermaid direction {direction!r}",
            code="workflow.render.direction",
            context={"direction": direction, "allowed": ["TD", "TB", "BT", "LR", "RL"]},
        )
    lines = [f"flowchart {direction}"]
    for node in wf.nodes.values():
        lines.append(f"    {_mermaid_node(node)}")
    for edge in wf.edges.values():
        arrow = "-.->" if edge.kind is EdgeKind.CONTROL else "-->"
        label = _edge_label(edge)
        text = f"|{_mermaid_label(label)}|" if label else ""
        lines.append(f"    n_{edge.source} {arrow}{text} n_{edge.target}")
    for node in wf.nodes.values():
        if not node.enabled:
            lines.append(f"    style n_{node.id} stroke-dasharray: 5 5")
    return "\n".join(lines)


def _edge_label(edge: Edge) -> str:
    parts = []
    if edge.carries_data:
        parts.append(f"{edge.source_port} → {edge.target_port}")
    if edge.condition is not None:
        parts.append(f"if {edge.condition}")
    if edge.label:
        parts.append(edge.label)
    if edge.transform:
        parts.append(f"via {edge.transform}")
    return "; ".join(parts)


# --- Graphviz DOT ----------------------------------------------------------------------------------


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_SHAPES = {
    NodeKind.INPUT: "parallelogram",
    NodeKind.OUTPUT: "invhouse",
    NodeKind.INSTRUMENT: "box3d",
    NodeKind.OPERATOR: "box",
    NodeKind.CONTROL: "diamond",
}


def render_dot(wf: Workflow, *, rankdir: str = "LR") -> str:
    """A Graphviz ``digraph``: shapes by node kind, dashed control edges, conditions as labels."""
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValidationError(
            f"unknown rankdir {rankdir!r}",
            code="workflow.render.direction",
            context={"rankdir": rankdir, "allowed": ["LR", "TB", "RL", "BT"]},
        )
    lines = [f"digraph {_dot(wf.name)} {{", f"    rankdir={rankdir};", '    node [fontname="Helvetica"];']
    for node in wf.nodes.values():
        label = node.label if node.label == node.id else f"{node.label} ({node.id})"
        attrs = [f"label={_dot(label + chr(10) + node.type)}", f"shape={_SHAPES[node.kind]}"]
        if not node.enabled:
            attrs.append("style=dashed")
        lines.append(f"    {_dot(node.id)} [{', '.join(attrs)}];")
    for edge in wf.edges.values():
        attrs = []
        label = _edge_label(edge)
        if label:
            attrs.append(f"label={_dot(label)}")
        if edge.kind is EdgeKind.CONTROL:
            attrs.append("style=dashed")
        elif edge.kind is EdgeKind.CONDITIONAL:
            attrs.append("style=bold")
        tail = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {_dot(edge.source)} -> {_dot(edge.target)}{tail};")
    lines.append("}")
    return "\n".join(lines)


FORMATS: dict[str, Callable[[Workflow], str]] = {
    "text": render_text,
    "mermaid": render_mermaid,
    "dot": render_dot,
}
"""Format name -> renderer."""


def render(wf: Workflow, format: str = "text", *, color: bool = False) -> str:
    """Render ``wf`` as ``text``, ``mermaid`` or ``dot``."""
    if format == "text":
        return render_text(wf, color=color)
    fn = FORMATS.get(format)
    if fn is None:
        raise ValidationError(
            f"unknown render format {format!r}",
            code="workflow.render.format",
            context={"format": format, "allowed": sorted(FORMATS)},
        )
    return fn(wf)
