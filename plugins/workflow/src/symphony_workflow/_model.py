"""The workflow model: typed nodes and ports, three kinds of edges, and the workflow graph.

A :class:`Workflow` holds :class:`Node` objects keyed by id and :class:`Edge` objects keyed by
id, plus adjacency indexes so that looking up a node, an edge, or a node's incoming and outgoing
edges is O(1). Nodes, ports and edges are immutable (frozen attrs classes); change one with
:func:`attrs.evolve` and :meth:`Workflow.replace_node`.

Every mutation is checked and atomic: :meth:`Workflow.add_edge` refuses a dangling edge, an
unknown port, a type mismatch, a second source for a single-valued input, a condition that
does not parse or reads something that is not upstream, and an edge that would close a cycle
(:class:`~symphony_workflow._errors.CycleError` with the closed path). A refused mutation leaves
the workflow exactly as it was.

Identifiers (node ids and port names) are ASCII identifiers ``[A-Za-z_][A-Za-z0-9_]*`` of at
most 128 characters, so conditions can name them (``classify.label == "spam"``); node ids may
not be one of the expression keywords (``and or not in true false null``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import attrs

from symphony.commons.errors import NotFoundError, ValidationError
from symphony.commons.validation import WORKFLOW_NAME, validate
from symphony_workflow._checks import edge_problems, expression_problems, node_problems
from symphony_workflow._errors import CycleError
from symphony_workflow._expr import KEYWORDS, Expression
from symphony_workflow._kinds import EdgeKind, NodeKind
from symphony_workflow._policy import DEFAULT_POLICY, NodePolicy
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem

__all__ = [
    "BUILTIN_NODE_TYPES",
    "CONTROL_TYPES",
    "Edge",
    "EdgeKind",
    "Node",
    "NodeKind",
    "Port",
    "Workflow",
    "WorkflowMetadata",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_TYPE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,127}")


CONTROL_TYPES: frozenset[str] = frozenset({"branch", "merge", "parallel", "join"})
"""The built-in control node types."""

BUILTIN_NODE_TYPES: frozenset[tuple[str, str]] = frozenset(
    {("control", t) for t in CONTROL_TYPES} | {("input", "input"), ("output", "output")}
)
"""``(kind, type)`` pairs that are always known, whatever plugins are installed."""


def check_identifier(value: object, what: str, *, keyword_ok: bool = True) -> str:
    """Return ``value`` if it is a valid identifier, else raise :class:`ValidationError`."""
    if not isinstance(value, str) or _IDENT.fullmatch(value) is None:
        raise ValidationError(
            f"invalid {what} {value!r}",
            code="workflow.invalid_identifier",
            context={what.replace(" ", "_"): repr(value)},
            hint="use an ASCII identifier: letters, digits and '_', no leading digit, at most 128 chars",
        )
    if not keyword_ok and value in KEYWORDS:
        raise ValidationError(
            f"{what} {value!r} is an expression keyword",
            code="workflow.invalid_identifier",
            context={what.replace(" ", "_"): value},
            hint=f"keywords ({', '.join(sorted(KEYWORDS))}) cannot be node ids",
        )
    return value


def is_semver(value: object) -> bool:
    """True if ``value`` is a semantic version string such as ``1.2.3`` or ``1.0.0-rc.1``."""
    return isinstance(value, str) and _SEMVER.fullmatch(value) is not None


def is_type_name(value: object) -> bool:
    """True if ``value`` is a valid node type name (``text.split``, ``llm:generate``)."""
    return isinstance(value, str) and _TYPE_NAME.fullmatch(value) is not None


def _port_name(instance: Any, attribute: Any, value: Any) -> None:
    check_identifier(value, "port name")


def _str(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise ValidationError(
            f"{attribute.name} must be a string, not {type(value).__name__}",
            code="workflow.invalid_field",
            context={"field": attribute.name},
        )


def _opt_str(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _str(instance, attribute, value)


def _bool(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"{attribute.name} must be true or false",
            code="workflow.invalid_field",
            context={"field": attribute.name},
        )


def _dict(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(
            f"{attribute.name} must be an object with string keys",
            code="workflow.invalid_field",
            context={"field": attribute.name},
        )


@attrs.frozen(slots=True)
class Port:
    """A typed input or output of a node.

    ``type`` is a port type expression (see :mod:`symphony_workflow._types`). An input that is
    ``required`` must be fed by an edge; an optional one may carry a ``default``. ``multiple``
    lets an input accept several incoming edges (a join collects them, a merge takes the first).
    """

    name: str = attrs.field(validator=_port_name)
    type: str = attrs.field(default="any", validator=_str)
    required: bool = attrs.field(default=True, validator=_bool)
    default: Any = None
    multiple: bool = attrs.field(default=False, validator=_bool)
    description: str = attrs.field(default="", validator=_str)


def _ports(value: Iterable[Port]) -> tuple[Port, ...]:
    ports = tuple(value)
    seen: set[str] = set()
    for port in ports:
        if not isinstance(port, Port):
            raise ValidationError(
                f"ports must be Port objects, not {type(port).__name__}",
                code="workflow.invalid_field",
                context={"field": "ports"},
            )
        if port.name in seen:
            raise ValidationError(
                f"port {port.name!r} is declared twice",
                code="workflow.duplicate_port",
                context={"port": port.name},
            )
        seen.add(port.name)
    return ports


def _position(value: Iterable[float]) -> tuple[float, float]:
    try:
        x, y = value
    except (TypeError, ValueError):
        raise ValidationError(
            "position must be a pair of numbers [x, y]",
            code="workflow.invalid_field",
            context={"field": "position"},
        ) from None
    if (
        isinstance(x, bool)
        or isinstance(y, bool)
        or not isinstance(x, int | float)
        or not isinstance(y, int | float)
    ):
        raise ValidationError(
            "position must be a pair of numbers [x, y]",
            code="workflow.invalid_field",
            context={"field": "position"},
        )
    fx, fy = float(x), float(y)
    if not (math.isfinite(fx) and math.isfinite(fy)):
        raise ValidationError(
            "position must be finite", code="workflow.invalid_field", context={"field": "position"}
        )
    return (fx, fy)


def _node_kind(value: Any) -> NodeKind:
    try:
        return NodeKind(value)
    except ValueError:
        raise ValidationError(
            f"unknown node kind {value!r}",
            code="workflow.unknown_node_kind",
            context={"kind": repr(value), "allowed": [k.value for k in NodeKind]},
        ) from None


def _policy(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, NodePolicy):
        raise ValidationError(
            f"policy must be a NodePolicy, not {type(value).__name__}",
            code="workflow.invalid_field",
            context={"field": "policy"},
        )


def _node_id(instance: Any, attribute: Any, value: Any) -> None:
    check_identifier(value, "node id", keyword_ok=False)


def _type_name(instance: Any, attribute: Any, value: Any) -> None:
    if not is_type_name(value):
        raise ValidationError(
            f"invalid node type {value!r}",
            code="workflow.invalid_node_type",
            context={"type": repr(value)},
            hint="use letters, digits and . _ : / - (at most 128 characters), e.g. 'text.split'",
        )


@attrs.frozen(slots=True)
class _PortIndex:
    inputs: dict[str, Port]
    outputs: dict[str, Port]
    required: tuple[str, ...]
    types: frozenset[str]


@attrs.frozen(slots=True)
class Node:
    """A workflow step.

    ``kind`` says what it is and ``type`` which implementation: for instruments and operators
    a node type registered by a plugin (``llm.generate``, ``text.split``); for control nodes one
    of ``branch``, ``merge``, ``parallel``, ``join``; ``input`` / ``output`` for workflow inputs
    and outputs. ``config`` and ``metadata`` are JSON objects; a numeric ``metadata["cost"]`` is
    the node's cost estimate for :func:`~symphony_workflow._dag.critical_path`. ``policy``
    (:class:`~symphony_workflow._policy.NodePolicy`) says how a runner executes the node:
    retries, timeout, fallback, optional, caching.
    """

    id: str = attrs.field(validator=_node_id)
    kind: NodeKind = attrs.field(converter=_node_kind)
    type: str = attrs.field(validator=_type_name)
    name: str = attrs.field(default="", validator=_str)
    description: str = attrs.field(default="", validator=_str)
    inputs: tuple[Port, ...] = attrs.field(default=(), converter=_ports)
    outputs: tuple[Port, ...] = attrs.field(default=(), converter=_ports)
    config: dict[str, Any] = attrs.field(factory=dict, validator=_dict)
    position: tuple[float, float] = attrs.field(default=(0.0, 0.0), converter=_position)
    enabled: bool = attrs.field(default=True, validator=_bool)
    metadata: dict[str, Any] = attrs.field(factory=dict, validator=_dict)
    version: str | None = attrs.field(default=None, validator=_opt_str)
    policy: NodePolicy = attrs.field(default=DEFAULT_POLICY, validator=_policy)
    _index: _PortIndex | None = attrs.field(default=None, init=False, eq=False, repr=False, alias="_index")

    # -- ports ----------------------------------------------------------------------------------

    def _ports_index(self) -> _PortIndex:
        index = self._index
        if index is None:
            index = _PortIndex(
                {p.name: p for p in self.inputs},
                {p.name: p for p in self.outputs},
                tuple(p.name for p in self.inputs if p.required),
                frozenset(p.type for p in self.inputs) | frozenset(p.type for p in self.outputs),
            )
            object.__setattr__(self, "_index", index)
        return index

    def input(self, name: str) -> Port | None:
        """The input port called ``name``, or ``None``. O(1)."""
        return (self._index or self._ports_index()).inputs.get(name)

    def output(self, name: str) -> Port | None:
        """The output port called ``name``, or ``None``. O(1)."""
        return (self._index or self._ports_index()).outputs.get(name)

    @property
    def required_inputs(self) -> tuple[str, ...]:
        """Names of the input ports that must be fed by an edge."""
        return (self._index or self._ports_index()).required

    @property
    def port_types(self) -> frozenset[str]:
        """Every port type expression this node uses."""
        return (self._index or self._ports_index()).types

    @property
    def label(self) -> str:
        """The display name: ``name`` if set, else the id."""
        return self.name or self.id

    @property
    def is_builtin(self) -> bool:
        """True for the control/input/output node types every installation knows."""
        return (self.kind.value, self.type) in BUILTIN_NODE_TYPES

    # -- factories ------------------------------------------------------------------------------

    @classmethod
    def operator(
        cls,
        id: str,
        type: str,
        *,
        inputs: Mapping[str, str] | Iterable[Port] = (),
        outputs: Mapping[str, str] | Iterable[Port] = (),
        **kwargs: Any,
    ) -> Node:
        """An operator node; ports may be given as ``{"name": "type"}`` mappings."""
        return cls(
            id, NodeKind.OPERATOR, type, inputs=_as_ports(inputs), outputs=_as_ports(outputs), **kwargs
        )

    @classmethod
    def instrument(
        cls,
        id: str,
        type: str,
        *,
        inputs: Mapping[str, str] | Iterable[Port] = (),
        outputs: Mapping[str, str] | Iterable[Port] = (),
        **kwargs: Any,
    ) -> Node:
        """An instrument (AI model) node; ports may be given as ``{"name": "type"}`` mappings."""
        return cls(
            id, NodeKind.INSTRUMENT, type, inputs=_as_ports(inputs), outputs=_as_ports(outputs), **kwargs
        )

    @classmethod
    def input_node(cls, id: str, type: str = "any", **kwargs: Any) -> Node:
        """A workflow input: one output port ``value`` of ``type``."""
        return cls(id, NodeKind.INPUT, "input", outputs=(Port("value", type),), **kwargs)

    @classmethod
    def output_node(cls, id: str, type: str = "any", **kwargs: Any) -> Node:
        """A workflow output: one required input port ``value`` of ``type``."""
        return cls(id, NodeKind.OUTPUT, "output", inputs=(Port("value", type),), **kwargs)

    @classmethod
    def control(cls, id: str, type: str, **kwargs: Any) -> Node:
        """A control node with the default ports of its type.

        ``branch`` and ``parallel``: optional input ``in`` and output ``out`` (both ``any``);
        ``merge``: input ``in`` accepting several edges, output ``out``; ``join``: the same with
        output ``out`` of type ``list[any]``. Conditions live on the branch's outgoing edges.
        """
        if type not in CONTROL_TYPES:
            raise ValidationError(
                f"unknown control type {type!r}",
                code="workflow.unknown_control_type",
                context={"node": id, "type": type, "allowed": sorted(CONTROL_TYPES)},
            )
        multiple = type in ("merge", "join")
        out_type = "list[any]" if type == "join" else "any"
        kwargs.setdefault("inputs", (Port("in", "any", required=False, multiple=multiple),))
        kwargs.setdefault("outputs", (Port("out", out_type),))
        return cls(id, NodeKind.CONTROL, type, **kwargs)


def _as_ports(value: Mapping[str, str] | Iterable[Port]) -> tuple[Port, ...]:
    if isinstance(value, Mapping):
        return tuple(Port(name, t) for name, t in value.items())
    return tuple(value)


def _edge_kind(value: Any) -> EdgeKind:
    try:
        return EdgeKind(value)
    except ValueError:
        raise ValidationError(
            f"unknown edge kind {value!r}",
            code="workflow.unknown_edge_kind",
            context={"kind": repr(value), "allowed": [k.value for k in EdgeKind]},
        ) from None


def _int(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ValidationError(
            f"{attribute.name} must be a 64-bit integer",
            code="workflow.invalid_field",
            context={"field": attribute.name},
        )


def auto_edge_id(
    kind: EdgeKind | str, source: str, target: str, source_port: str | None, target_port: str | None
) -> str:
    """The id an edge gets when none is given: ``a.out->b.in``, ``a->b`` or ``a->b?`` (conditional)."""
    src = f"{source}.{source_port}" if source_port else source
    dst = f"{target}.{target_port}" if target_port else target
    suffix = "?" if kind == EdgeKind.CONDITIONAL else ""
    return f"{src}->{dst}{suffix}"


@attrs.frozen(slots=True)
class Edge:
    """A connection between two nodes.

    ``data`` edges carry the value of ``source.source_port`` to ``target.target_port`` (the types
    must be compatible) and may name a ``transform`` the executor applies on the way.
    ``control`` edges only order: the target starts after the source finished; ``priority``
    orders siblings. ``conditional`` edges order too, and the target runs only if ``condition``
    (see :mod:`symphony_workflow._expr`) is true over the upstream outputs; they may also carry
    data between two ports. ``id`` defaults to :func:`auto_edge_id`.
    """

    kind: EdgeKind = attrs.field(converter=_edge_kind)
    source: str = attrs.field(validator=_str)
    target: str = attrs.field(validator=_str)
    source_port: str | None = attrs.field(default=None, validator=_opt_str)
    target_port: str | None = attrs.field(default=None, validator=_opt_str)
    condition: str | None = attrs.field(default=None, validator=_opt_str)
    label: str = attrs.field(default="", validator=_str)
    priority: int = attrs.field(default=0, validator=_int)
    transform: str | None = attrs.field(default=None, validator=_opt_str)
    metadata: dict[str, Any] = attrs.field(factory=dict, validator=_dict)
    id: str = attrs.field(
        default=attrs.Factory(
            lambda self: auto_edge_id(
                self.kind, self.source, self.target, self.source_port, self.target_port
            ),
            takes_self=True,
        ),
        validator=_str,
    )
    _expr: Expression | None = attrs.field(default=None, init=False, eq=False, repr=False, alias="_expr")

    def __attrs_post_init__(self) -> None:
        if not self.id:
            raise ValidationError(
                "edge id must not be empty", code="workflow.invalid_field", context={"field": "id"}
            )

    @property
    def auto_id(self) -> str:
        """The id this edge would get by default."""
        return auto_edge_id(self.kind, self.source, self.target, self.source_port, self.target_port)

    @property
    def carries_data(self) -> bool:
        """True if the edge moves a value between two ports."""
        return self.source_port is not None and self.target_port is not None

    @property
    def expression(self) -> Expression | None:
        """The parsed condition (cached); :class:`ValidationError` with the column if it does not parse."""
        if self.condition is None:
            return None
        cached = self._expr
        if cached is None:
            try:
                cached = Expression.parse(self.condition)
            except ValidationError as err:
                err.context["edge"] = self.id
                raise
            object.__setattr__(self, "_expr", cached)
        return cached

    @classmethod
    def data(cls, source: str, source_port: str, target: str, target_port: str, **kwargs: Any) -> Edge:
        """A data edge ``source.source_port -> target.target_port``."""
        return cls(EdgeKind.DATA, source, target, source_port=source_port, target_port=target_port, **kwargs)

    @classmethod
    def control(cls, source: str, target: str, *, priority: int = 0, **kwargs: Any) -> Edge:
        """An ordering-only edge."""
        return cls(EdgeKind.CONTROL, source, target, priority=priority, **kwargs)

    @classmethod
    def conditional(cls, source: str, target: str, condition: str, **kwargs: Any) -> Edge:
        """An edge taken only when ``condition`` holds (optionally with ``source_port``/``target_port``)."""
        return cls(EdgeKind.CONDITIONAL, source, target, condition=condition, **kwargs)


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValidationError(
            "tags must be a list of strings", code="workflow.invalid_field", context={"field": "tags"}
        )
    tags = tuple(value)
    if not all(isinstance(t, str) for t in tags):
        raise ValidationError(
            "tags must be a list of strings", code="workflow.invalid_field", context={"field": "tags"}
        )
    return tags


@attrs.frozen(slots=True)
class WorkflowMetadata:
    """Descriptive metadata of a workflow; ``custom`` holds any other JSON keys."""

    author: str | None = attrs.field(default=None, validator=_opt_str)
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)
    category: str | None = attrs.field(default=None, validator=_opt_str)
    icon: str | None = attrs.field(default=None, validator=_opt_str)
    color: str | None = attrs.field(default=None, validator=_opt_str)
    custom: dict[str, Any] = attrs.field(factory=dict, validator=_dict)


# --- trusted construction (loaders that already checked every field) --------------------------------
#
# A loader that has checked a document field by field (the fast path of ``_serialization``)
# builds nodes and edges without running the attrs validators a second time. Each field is set
# through its slot descriptor; frozen classes allow nothing else. Only for values that passed
# the same checks the validators make.

_N = {a.name: getattr(Node, a.name).__set__ for a in attrs.fields(Node)}
_E = {a.name: getattr(Edge, a.name).__set__ for a in attrs.fields(Edge)}
_set_nid, _set_nkind, _set_ntype, _set_nname, _set_ndesc = (
    _N["id"],
    _N["kind"],
    _N["type"],
    _N["name"],
    _N["description"],
)
_set_nin, _set_nout, _set_ncfg, _set_npos, _set_nen = (
    _N["inputs"],
    _N["outputs"],
    _N["config"],
    _N["position"],
    _N["enabled"],
)
_set_nmeta, _set_nver, _set_npol, _set_nidx = _N["metadata"], _N["version"], _N["policy"], _N["_index"]
_set_ekind, _set_esrc, _set_edst, _set_esp, _set_etp = (
    _E["kind"],
    _E["source"],
    _E["target"],
    _E["source_port"],
    _E["target_port"],
)
_set_econd, _set_elabel, _set_eprio, _set_etrans, _set_emeta, _set_eid, _set_eexpr = (
    _E["condition"],
    _E["label"],
    _E["priority"],
    _E["transform"],
    _E["metadata"],
    _E["id"],
    _E["_expr"],
)
if len(_N) != 14 or len(_E) != 12:  # pragma: no cover - a field was added: update the setters
    raise ImportError("trusted constructors are out of date with Node/Edge fields")


_SHARED_INDEXES: dict[tuple[int, ...], tuple[tuple[Port, ...], tuple[Port, ...], _PortIndex]] = {}


def _shared_index(inputs: tuple[Port, ...], outputs: tuple[Port, ...]) -> _PortIndex | None:
    """One port index for every node with the very same port objects (loaders share ports)."""
    key = (*map(id, inputs), -1, *map(id, outputs))
    hit = _SHARED_INDEXES.get(key)
    if hit is not None:
        ins, outs, index = hit
        if all(a is b for a, b in zip(ins, inputs, strict=True)) and all(
            a is b for a, b in zip(outs, outputs, strict=True)
        ):
            return index
        return None
    if len(_SHARED_INDEXES) >= 4096:
        return None
    index = _PortIndex(
        {p.name: p for p in inputs},
        {p.name: p for p in outputs},
        tuple(p.name for p in inputs if p.required),
        frozenset(p.type for p in inputs) | frozenset(p.type for p in outputs),
    )
    _SHARED_INDEXES[key] = (inputs, outputs, index)  # holding the ports keeps their ids unique
    return index


def trusted_node(
    id: str,
    kind: NodeKind,
    type: str,
    name: str,
    description: str,
    inputs: tuple[Port, ...],
    outputs: tuple[Port, ...],
    config: dict[str, Any],
    position: tuple[float, float],
    enabled: bool,
    metadata: dict[str, Any],
    version: str | None,
    policy: NodePolicy,
) -> Node:
    """A :class:`Node` from field values that were already checked (no validators run)."""
    n: Node = object.__new__(Node)
    _set_nid(n, id)
    _set_nkind(n, kind)
    _set_ntype(n, type)
    _set_nname(n, name)
    _set_ndesc(n, description)
    _set_nin(n, inputs)
    _set_nout(n, outputs)
    _set_ncfg(n, config)
    _set_npos(n, position)
    _set_nen(n, enabled)
    _set_nmeta(n, metadata)
    _set_nver(n, version)
    _set_npol(n, policy)
    _set_nidx(n, _shared_index(inputs, outputs))
    return n


def trusted_edge(
    kind: EdgeKind,
    source: str,
    target: str,
    source_port: str | None,
    target_port: str | None,
    condition: str | None,
    label: str,
    priority: int,
    transform: str | None,
    metadata: dict[str, Any],
    id: str,
) -> Edge:
    """An :class:`Edge` from field values that were already checked (no validators run)."""
    e: Edge = object.__new__(Edge)
    _set_ekind(e, kind)
    _set_esrc(e, source)
    _set_edst(e, target)
    _set_esp(e, source_port)
    _set_etp(e, target_port)
    _set_econd(e, condition)
    _set_elabel(e, label)
    _set_eprio(e, priority)
    _set_etrans(e, transform)
    _set_emeta(e, metadata)
    _set_eid(e, id)
    _set_eexpr(e, None)
    return e


def utc_now() -> datetime:
    """The current time in UTC (microsecond precision)."""
    return datetime.now(UTC)


NOW: Any = type("_Now", (), {"__repr__": lambda self: "NOW"})()
"""Default for ``created`` / ``updated``: the time the workflow object is made."""


def _utc(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(
            "timestamps must be datetimes", code="workflow.invalid_field", context={"field": "created"}
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _canonical_uuid(value: str | uuid.UUID) -> str:
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(
            f"workflow id {value!r} is not a UUID", code="workflow.invalid_id", context={"id": repr(value)}
        ) from None


class Workflow:
    """A directed acyclic graph of typed nodes and edges, with metadata.

    >>> wf = Workflow("demo")
    >>> _ = wf.add_node(Node.input_node("question", "text"))
    >>> answer = Node.instrument("answer", "llm.gen", inputs={"prompt": "text"}, outputs={"text": "text"})
    >>> _ = wf.add_node(answer)
    >>> _ = wf.connect("question", "value", "answer", "prompt")
    >>> [e.id for e in wf.outgoing("question")]
    ['question.value->answer.prompt']
    """

    __slots__ = (
        "_cache",
        "_created",
        "_edges",
        "_in",
        "_nodes",
        "_out",
        "_port_sources",
        "_revision",
        "_version",
        "description",
        "id",
        "metadata",
        "name",
        "types",
        "updated",
    )

    def __init__(
        self,
        name: str = "untitled",
        *,
        id: str | uuid.UUID | None = None,
        version: str = "0.1.0",
        description: str = "",
        metadata: WorkflowMetadata | None = None,
        created: datetime | object | None = NOW,
        updated: datetime | object | None = NOW,
        nodes: Iterable[Node] = (),
        edges: Iterable[Edge] = (),
        types: TypeSystem = DEFAULT_TYPES,
    ) -> None:
        if not isinstance(name, str):
            raise ValidationError(
                "workflow name must be a string", code="workflow.invalid_field", context={"field": "name"}
            )
        validate(name, WORKFLOW_NAME, field="name")
        if not isinstance(description, str):
            raise ValidationError(
                "workflow description must be a string",
                code="workflow.invalid_field",
                context={"field": "description"},
            )
        self.id: str = _canonical_uuid(id) if id is not None else str(uuid.uuid4())
        self.name: str = name
        self.version = version
        self.description: str = description
        self.metadata: WorkflowMetadata = metadata if metadata is not None else WorkflowMetadata()
        now = utc_now()
        self._created: datetime | None = now if created is NOW else _utc(created)
        self.updated: datetime | None = now if updated is NOW else _utc(updated)
        self.types: TypeSystem = types
        self._nodes: dict[str, Node] = {}
        self._edges: dict[str, Edge] = {}
        self._out: dict[str, dict[str, Edge]] = {}
        self._in: dict[str, dict[str, Edge]] = {}
        self._port_sources: dict[tuple[str, str], int] = {}
        self._revision = 0
        self._cache: dict[str, Any] = {}
        for node in nodes:
            self.add_node(node)
        for edge in edges:
            self.add_edge(edge)

    # -- plain attributes with checks --------------------------------------------------------------

    @property
    def version(self) -> str:
        """The workflow's own semantic version (``1.2.0``)."""
        return self._version

    @version.setter
    def version(self, value: str) -> None:
        if not is_semver(value):
            raise ValidationError(
                f"workflow version {value!r} is not a semantic version",
                code="workflow.invalid_version",
                context={"version": repr(value)},
                hint="use MAJOR.MINOR.PATCH, e.g. 1.0.0",
            )
        self._version = value

    @property
    def created(self) -> datetime | None:
        """When the workflow was created (UTC), if known."""
        return self._created

    @property
    def revision(self) -> int:
        """A counter bumped by every mutation (caches key on it)."""
        return self._revision

    # -- lookup -----------------------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, Node]:
        """Read-only view of the nodes by id, in insertion order."""
        return MappingProxyType(self._nodes)

    @property
    def edges(self) -> Mapping[str, Edge]:
        """Read-only view of the edges by id, in insertion order."""
        return MappingProxyType(self._edges)

    def node(self, node_id: str) -> Node:
        """The node ``node_id``; :class:`NotFoundError` if absent. O(1)."""
        try:
            return self._nodes[node_id]
        except (KeyError, TypeError):
            raise NotFoundError(
                f"workflow has no node {node_id!r}",
                code="workflow.node_not_found",
                context={"node": repr(node_id)},
            ) from None

    def edge(self, edge_id: str) -> Edge:
        """The edge ``edge_id``; :class:`NotFoundError` if absent. O(1)."""
        try:
            return self._edges[edge_id]
        except (KeyError, TypeError):
            raise NotFoundError(
                f"workflow has no edge {edge_id!r}",
                code="workflow.edge_not_found",
                context={"edge": repr(edge_id)},
            ) from None

    def get_node(self, node_id: str) -> Node | None:
        """The node ``node_id`` or ``None``."""
        return self._nodes.get(node_id)

    def get_edge(self, edge_id: str) -> Edge | None:
        """The edge ``edge_id`` or ``None``."""
        return self._edges.get(edge_id)

    def incoming(self, node_id: str) -> list[Edge]:
        """Edges ending at ``node_id``, in insertion order."""
        self.node(node_id)
        return list(self._in[node_id].values())

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges starting at ``node_id``, in insertion order."""
        self.node(node_id)
        return list(self._out[node_id].values())

    def predecessors(self, node_id: str) -> list[str]:
        """Distinct direct upstream node ids, in edge order."""
        self.node(node_id)
        return list(dict.fromkeys(e.source for e in self._in[node_id].values()))

    def successors(self, node_id: str) -> list[str]:
        """Distinct direct downstream node ids, in edge order."""
        self.node(node_id)
        return list(dict.fromkeys(e.target for e in self._out[node_id].values()))

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, str) and node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __repr__(self) -> str:
        size = f"nodes={len(self._nodes)}, edges={len(self._edges)}"
        return f"Workflow(name={self.name!r}, id={self.id!r}, {size})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workflow):
            return NotImplemented
        return (
            self.id == other.id
            and self.name == other.name
            and self._version == other._version
            and self.description == other.description
            and self.metadata == other.metadata
            and self._created == other._created
            and self.updated == other.updated
            and self._nodes == other._nodes
            and self._edges == other._edges
        )

    __hash__ = None  # type: ignore[assignment]

    # -- mutation ---------------------------------------------------------------------------------

    def _touch(self) -> None:
        self._revision += 1
        self._cache.clear()
        self.updated = utc_now()

    def add_node(self, node: Node) -> Node:
        """Add ``node``; :class:`ValidationError` if its id is taken or a port type is unknown."""
        if not isinstance(node, Node):
            raise ValidationError(
                f"expected a Node, got {type(node).__name__}",
                code="workflow.invalid_field",
                context={"field": "node"},
            )
        if node.id in self._nodes:
            raise ValidationError(
                f"duplicate node id {node.id!r}", code="workflow.duplicate_node_id", context={"node": node.id}
            )
        problems = node_problems(node, self.types)
        if problems:
            raise problems[0].to_error()
        self._nodes[node.id] = node
        self._in[node.id] = {}
        self._out[node.id] = {}
        self._touch()
        return node

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        """Add several nodes; all or nothing."""
        batch = list(nodes)
        added: list[str] = []
        try:
            for node in batch:
                self.add_node(node)
                added.append(node.id)
        except Exception:
            for node_id in added:
                self.remove_node(node_id)
            raise

    def replace_node(self, node: Node) -> Node:
        """Swap the node with ``node.id`` for ``node``, keeping its edges.

        Refused (and nothing changed) if an attached edge would name a port the new node lacks,
        mismatch a type, or a condition would read an output that disappeared.
        """
        old = self.node(node.id)
        problems = node_problems(node, self.types)
        if problems:
            raise problems[0].to_error()
        self._nodes[node.id] = node
        try:
            attached = [*self._in[node.id].values(), *self._out[node.id].values()]
            for edge in attached:
                found = edge_problems(edge, self._nodes, self.types, port_sources=None)
                if found:
                    raise found[0].to_error()
            for edge in self._edges.values():
                expr = edge.expression
                if expr is None:
                    continue
                for ref in expr.refs():
                    if ref.node == node.id and node.output(ref.port) is None:
                        raise ValidationError(
                            f"condition of edge {edge.id!r} reads {ref.node}.{ref.port}, "
                            "which the new node lacks",
                            code="workflow.expression.unknown_output",
                            context={"edge": edge.id, "node": node.id, "port": ref.port, "column": ref.col},
                        )
        except Exception:
            self._nodes[node.id] = old
            raise
        self._touch()
        return node

    def remove_node(self, node_id: str) -> list[Edge]:
        """Remove a node and every edge attached to it (returned).

        Refused if the condition of an edge elsewhere reads this node's outputs.
        """
        self.node(node_id)
        attached = {**self._in[node_id], **self._out[node_id]}
        for edge in self._edges.values():
            if edge.id in attached or edge.condition is None:
                continue
            expr = edge.expression
            if expr is not None and any(ref.node == node_id for ref in expr.refs()):
                raise ValidationError(
                    f"node {node_id!r} is read by the condition of edge {edge.id!r}",
                    code="workflow.node_in_use",
                    context={"node": node_id, "edge": edge.id},
                    hint="remove or change that edge first",
                )
        removed = [self._detach(edge_id) for edge_id in attached]
        del self._nodes[node_id]
        del self._in[node_id]
        del self._out[node_id]
        self._touch()
        return removed

    def _detach(self, edge_id: str) -> Edge:
        edge = self._edges.pop(edge_id)
        self._out[edge.source].pop(edge_id, None)
        self._in[edge.target].pop(edge_id, None)
        if edge.target_port is not None:
            key = (edge.target, edge.target_port)
            left = self._port_sources.get(key, 0) - 1
            if left > 0:
                self._port_sources[key] = left
            else:
                self._port_sources.pop(key, None)
        return edge

    def add_edge(self, edge: Edge) -> Edge:
        """Add ``edge`` after checking it (see the module docstring); atomic."""
        if not isinstance(edge, Edge):
            raise ValidationError(
                f"expected an Edge, got {type(edge).__name__}",
                code="workflow.invalid_field",
                context={"field": "edge"},
            )
        if edge.id in self._edges:
            raise ValidationError(
                f"duplicate edge id {edge.id!r}", code="workflow.duplicate_edge_id", context={"edge": edge.id}
            )
        problems = edge_problems(edge, self._nodes, self.types, port_sources=self._port_sources)
        if problems:
            raise problems[0].to_error()
        cycle = self.cycle_through(edge.source, edge.target)
        if cycle is not None:
            raise CycleError(
                f"edge {edge.id!r} would close the cycle {' -> '.join(cycle)}",
                path=cycle,
                context={"edge": edge.id},
            )
        if edge.condition is not None:
            upstream = self._upstream_of(edge.source)
            problems = expression_problems(edge, self._nodes, upstream)
            if problems:
                raise problems[0].to_error()
        self._attach(edge)
        self._touch()
        return edge

    def _attach(self, edge: Edge) -> None:
        self._edges[edge.id] = edge
        self._out[edge.source][edge.id] = edge
        self._in[edge.target][edge.id] = edge
        if edge.target_port is not None:
            key = (edge.target, edge.target_port)
            self._port_sources[key] = self._port_sources.get(key, 0) + 1

    def connect(self, source: str, source_port: str, target: str, target_port: str, **kwargs: Any) -> Edge:
        """Add a data edge ``source.source_port -> target.target_port``."""
        return self.add_edge(Edge.data(source, source_port, target, target_port, **kwargs))

    def remove_edge(self, edge_id: str) -> Edge:
        """Remove and return the edge ``edge_id``."""
        self.edge(edge_id)
        edge = self._detach(edge_id)
        self._touch()
        return edge

    # -- graph queries used by the mutation checks -------------------------------------------------

    def _upstream_of(self, node_id: str) -> set[str]:
        seen = {node_id}
        todo = [node_id]
        ins = self._in
        while todo:
            for edge in ins[todo.pop()].values():
                if edge.source not in seen:
                    seen.add(edge.source)
                    todo.append(edge.source)
        return seen

    def cycle_through(self, source: str, target: str) -> list[str] | None:
        """The closed path an edge ``source -> target`` would create, or ``None``.

        For ``A -> B -> C`` and a new edge ``C -> A`` this is ``["A", "B", "C", "A"]``.
        """
        if source == target:
            return [source, source]
        if source not in self._nodes or target not in self._nodes:
            return None
        parent: dict[str, str] = {target: target}
        todo = deque([target])
        out = self._out
        while todo:
            current = todo.popleft()
            for edge in out[current].values():
                nxt = edge.target
                if nxt in parent:
                    continue
                parent[nxt] = current
                if nxt == source:
                    path = [source]
                    while path[-1] != target:
                        path.append(parent[path[-1]])
                    path.reverse()
                    return [*path, target]
                todo.append(nxt)
        return None

    def would_create_cycle(self, source: str, target: str) -> bool:
        """True if an edge ``source -> target`` would close a cycle."""
        return self.cycle_through(source, target) is not None

    # -- bulk construction (trusted paths: the loader validated the parts) -------------------------

    @classmethod
    def _from_checked(
        cls,
        *,
        nodes: Iterable[Node],
        edges: Iterable[Edge],
        types: TypeSystem = DEFAULT_TYPES,
        **fields: Any,
    ) -> Workflow:
        wf = cls(types=types, **fields)
        created, updated = wf._created, wf.updated
        wf._revision = 0
        for node in nodes:
            wf._nodes[node.id] = node
            wf._in[node.id] = {}
            wf._out[node.id] = {}
        for edge in edges:
            wf._attach(edge)
        wf._created, wf.updated = created, updated
        return wf

    def copy(self) -> Workflow:
        """A copy sharing the (immutable) nodes and edges."""
        return Workflow._from_checked(
            nodes=self._nodes.values(),
            edges=self._edges.values(),
            types=self.types,
            name=self.name,
            id=self.id,
            version=self._version,
            description=self.description,
            metadata=self.metadata,
            created=self._created,
            updated=self.updated,
        )
