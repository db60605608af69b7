"""Hypothesis strategies: valid workflows (DAGs with typed ports and conditions), JSON values."""

from __future__ import annotations

import json
import random
import string
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
from hypothesis import strategies as st

from symphony_workflow import Edge, EdgeKind, Node, NodeKind, NodePolicy, Port, Workflow
from symphony_workflow._expr import KEYWORDS
from symphony_workflow._model import CONTROL_TYPES, WorkflowMetadata
from symphony_workflow._types import DEFAULT_TYPES

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | INT64 | FLOATS | st.text(max_size=12)

json_values = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=5,
)
json_objects = st.just({}) | st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=3)

_FIRST = string.ascii_letters + "_"
_REST = string.ascii_letters + string.digits + "_"
identifiers = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST), st.text(alphabet=_REST, max_size=10))
node_ids = identifiers.map(lambda s: s + "_" if s in KEYWORDS else s)
_type_word = st.builds(
    lambda a, b: a + b,
    st.sampled_from(string.ascii_lowercase),
    st.text(alphabet=string.ascii_lowercase + string.digits + "_", max_size=6),
)
type_names = st.lists(_type_word, min_size=1, max_size=3).map(".".join)
SCALAR_TYPES = ["any", "text", "number", "integer", "bool", "bytes", "json", "file"]
port_types = st.sampled_from(SCALAR_TYPES) | st.sampled_from(SCALAR_TYPES).map(lambda t: f"list[{t}]")
timestamps = st.none() | st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@st.composite
def ports(draw: st.DrawFn, *, max_size: int = 3) -> tuple[Port, ...]:
    names = draw(st.lists(identifiers, max_size=max_size, unique=True))
    out = []
    for name in names:
        required = draw(st.booleans())
        out.append(
            Port(
                name,
                draw(port_types),
                required=required,
                default=None if required else draw(json_values),
                multiple=draw(st.booleans()),
                description=draw(st.text(max_size=8)),
            )
        )
    return tuple(out)


_SELECTORS = st.sampled_from(["timeout", "transport", "llm", "llm.rate_limited", "io", "not-found"])
_SECONDS = st.floats(min_value=0, max_value=3600, allow_nan=False) | st.integers(0, 3600)


@st.composite
def policies(draw: st.DrawFn, node_id: str) -> NodePolicy:
    """An execution policy: the default half of the time, else random fields (any fallback id)."""
    if draw(st.booleans()):
        return NodePolicy()
    delay = draw(_SECONDS)
    use = draw(st.sampled_from(["none", "node", "value"]))
    return NodePolicy(
        retries=draw(st.integers(0, 100)),
        backoff=draw(st.sampled_from(["constant", "linear", "exponential"])),
        retry_delay=delay,
        retry_max_delay=delay + draw(_SECONDS),
        retry_jitter=draw(st.floats(0, 1)),
        retry_on=tuple(draw(st.lists(_SELECTORS, max_size=3, unique=True))),
        timeout=draw(st.none() | st.floats(min_value=0.001, max_value=3600)),
        fallback=draw(node_ids) if use == "node" else None,
        fallback_value=draw(json_objects) if use == "value" else None,
        optional=draw(st.booleans()),
        cache=draw(st.booleans()),
        cache_salt=draw(st.text(max_size=8)),
    )


def random_policy(rnd: random.Random) -> NodePolicy:
    """A random execution policy (the default 60% of the time)."""
    if rnd.random() < 0.6:
        return NodePolicy()
    delay = rnd.choice([0, 0.5, 1.0, rnd.random() * 30])
    use = rnd.choice(["none", "node", "value"])
    return NodePolicy(
        retries=rnd.randint(0, 100),
        backoff=rnd.choice(["constant", "linear", "exponential"]),
        retry_delay=delay,
        retry_max_delay=delay + rnd.choice([0, 60.0, rnd.random() * 600]),
        retry_jitter=rnd.choice([0.0, 1.0, rnd.random()]),
        retry_on=tuple(rnd.sample(["timeout", "transport", "llm", "io.read"], rnd.randint(0, 3))),
        timeout=rnd.choice([None, 0.25, rnd.random() * 100 + 0.01]),
        fallback=_rident(rnd) if use == "node" else None,
        fallback_value=_robject(rnd) if use == "value" else None,
        optional=rnd.random() < 0.5,
        cache=rnd.random() < 0.7,
        cache_salt=rnd.choice(["", "v2", _rtext(rnd, 6)]),
    )


def settle_policy(node: Node, earlier: list[Node], rnd: random.Random) -> Node:
    """Make a drawn policy valid in its workflow: the fallback (if any) becomes an earlier node
    with the same outputs, or is dropped (earlier-only keeps chains loop-free); a fallback value
    names only the node's outputs."""
    policy = node.policy
    if policy.fallback is not None:
        shape = {(p.name, p.type) for p in node.outputs}
        fits = [n.id for n in earlier if shape <= {(p.name, p.type) for p in n.outputs}]
        policy = attrs.evolve(policy, fallback=rnd.choice(fits) if fits else None)
    if policy.fallback_value is not None:
        names = [p.name for p in node.outputs]
        values = list(policy.fallback_value.values()) or [None]
        policy = attrs.evolve(
            policy, fallback_value={n: rnd.choice(values) for n in names if rnd.random() < 0.7}
        )
    return attrs.evolve(node, policy=policy) if policy is not node.policy else node


@st.composite
def nodes(draw: st.DrawFn, node_id: str) -> Node:
    kind = draw(st.sampled_from(list(NodeKind)))
    if kind is NodeKind.CONTROL:
        node_type = draw(st.sampled_from(sorted(CONTROL_TYPES)) | type_names)
    elif kind is NodeKind.INPUT:
        node_type = draw(st.just("input") | type_names)
    elif kind is NodeKind.OUTPUT:
        node_type = draw(st.just("output") | type_names)
    else:
        node_type = draw(type_names)
    return Node(
        node_id,
        kind,
        node_type,
        name=draw(st.text(max_size=10)),
        description=draw(st.text(max_size=10)),
        inputs=() if kind is NodeKind.INPUT else draw(ports()),
        outputs=() if kind is NodeKind.OUTPUT else draw(ports()),
        config=draw(json_objects),
        position=draw(st.just((0.0, 0.0)) | st.tuples(FLOATS, FLOATS)),
        enabled=draw(st.booleans()),
        metadata=draw(json_objects),
        version=draw(st.none() | st.text(max_size=6)),
        policy=draw(policies(node_id)),
    )


def _literal(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return str(draw(st.integers(-1000, 1000)))
    if choice == 1:
        return repr(draw(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)))
    if choice == 2:
        text = draw(st.text(alphabet=string.ascii_letters + " éü✓", max_size=6))
        return json.dumps(text, ensure_ascii=False)
    return draw(st.sampled_from(["true", "false", "null"]))


@st.composite
def conditions(draw: st.DrawFn, refs: list[tuple[str, str]]) -> str:
    """A condition over the given ``(node, port)`` references."""
    parts = []
    for _ in range(draw(st.integers(1, 2))):
        node, port = draw(st.sampled_from(refs))
        op = draw(st.sampled_from(["==", "!=", "<", ">=", "in"]))
        rhs = _literal(draw) if op != "in" else "[" + ", ".join(_literal(draw) for _ in range(2)) + "]"
        parts.append(f"{node}.{port} {op} {rhs}")
    joiner = draw(st.sampled_from([" and ", " or "]))
    text = joiner.join(parts)
    return f"not ({text})" if draw(st.booleans()) else text


@st.composite
def workflows(draw: st.DrawFn, *, max_nodes: int = 8, min_nodes: int = 0) -> Workflow:
    """A valid workflow: a DAG whose edges follow the node order, typed and conditioned correctly."""
    ids = draw(st.lists(node_ids, min_size=min_nodes, max_size=max_nodes, unique=True))
    meta = WorkflowMetadata(
        author=draw(st.none() | st.text(max_size=8)),
        tags=tuple(draw(st.lists(st.text(max_size=5), max_size=3))),
        category=draw(st.none() | st.text(max_size=5)),
        icon=draw(st.none() | st.text(max_size=5)),
        color=draw(st.none() | st.text(max_size=7)),
        custom=draw(json_objects),
    )
    wf = Workflow(
        draw(st.text(max_size=15)),
        id=str(draw(st.uuids())),
        version=".".join(str(draw(st.integers(0, 999))) for _ in range(3)),
        description=draw(st.text(max_size=20)),
        metadata=meta,
        created=draw(timestamps),
        updated=draw(timestamps),
    )
    created, updated = wf.created, wf.updated
    for nid in ids:
        wf.add_node(settle_policy(draw(nodes(nid)), list(wf.nodes.values()), draw(st.randoms())))
    order = list(wf.nodes)
    edge_ids: set[str] = set()
    n_edges = draw(st.integers(0, max(0, len(order) * 2)))
    for _ in range(n_edges):
        if len(order) < 2:
            break
        i = draw(st.integers(0, len(order) - 2))
        j = draw(st.integers(i + 1, len(order) - 1))
        src, dst = wf.node(order[i]), wf.node(order[j])
        kind = draw(st.sampled_from(list(EdgeKind)))
        custom_id = draw(st.none() | st.text(min_size=1, max_size=8))
        kwargs: dict[str, Any] = {
            "label": draw(st.text(max_size=6)),
            "priority": draw(st.integers(-5, 5)),
            "metadata": draw(json_objects) if draw(st.booleans()) else {},
        }
        if custom_id is not None and custom_id not in edge_ids and custom_id not in wf.edges:
            kwargs["id"] = custom_id
        pair = _free_pair(wf, src, dst)
        if kind is EdgeKind.DATA:
            if pair is None:
                continue
            edge = Edge.data(
                src.id, pair[0], dst.id, pair[1], transform=draw(st.none() | type_names), **kwargs
            )
        elif kind is EdgeKind.CONTROL:
            edge = Edge.control(src.id, dst.id, **kwargs)
        else:
            upstream = [
                order[k] for k in range(i + 1) if order[k] == src.id or _reaches(wf, order[k], src.id)
            ]
            refs = [(nid, p.name) for nid in upstream for p in wf.node(nid).outputs]
            if not refs:
                continue
            cond = draw(conditions(refs))
            if pair is not None and draw(st.booleans()):
                edge = Edge.conditional(
                    src.id, dst.id, cond, source_port=pair[0], target_port=pair[1], **kwargs
                )
            else:
                edge = Edge.conditional(src.id, dst.id, cond, **kwargs)
        if edge.id in wf.edges:
            continue
        wf.add_edge(edge)
        edge_ids.add(edge.id)
    wf.updated = updated
    wf._created = created
    return wf


def _reaches(wf: Workflow, a: str, b: str) -> bool:
    seen = {a}
    todo = [a]
    while todo:
        for nxt in wf.successors(todo.pop()):
            if nxt == b:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _free_pair(wf: Workflow, src: Node, dst: Node) -> tuple[str, str] | None:
    fed = {e.target_port for e in wf.incoming(dst.id) if e.target_port is not None}
    for op in src.outputs:
        for ip in dst.inputs:
            if (ip.multiple or ip.name not in fed) and DEFAULT_TYPES.is_assignable(op.type, ip.type):
                return op.name, ip.name
    return None


# --- a fast, seed-driven generator for the 1,000-case round-trip properties ---------------------------
#
# Hypothesis's per-draw bookkeeping dominates the cost of the rich strategy above; for the
# round-trip properties (1,000 cases each) we draw one seed and build the workflow with
# ``random.Random``. Failures still reproduce: Hypothesis reports the seed.

_TEXT_POOL = (
    string.ascii_letters
    + string.digits
    + " _-.:/\\\"'{}[],\n\t\x00\x7f"
    + "éüßñçøåÆ"
    + "日本語中文한국어"
    + "😀🎼🚀"
    + "\u200b\u202e\u0301"
    + "\U0001f9ea"
)


def _rtext(rnd: random.Random, max_size: int = 8) -> str:
    return "".join(rnd.choice(_TEXT_POOL) for _ in range(rnd.randint(0, max_size)))


def _rident(rnd: random.Random) -> str:
    text = rnd.choice(_FIRST) + "".join(rnd.choice(_REST) for _ in range(rnd.randint(0, 8)))
    return text + "_" if text in KEYWORDS else text


def _rfloat(rnd: random.Random) -> float:
    choice = rnd.randint(0, 5)
    if choice == 0:
        return 0.0
    if choice == 1:
        return -0.0
    if choice == 2:
        return rnd.uniform(-1e6, 1e6)
    if choice == 3:
        return rnd.choice([1e-308, 5e-324, 1.7976931348623157e308, -2.5e-10, 0.1, 1 / 3])
    return float(rnd.randint(-1000, 1000))


def _rjson(rnd: random.Random, depth: int = 0) -> Any:
    choice = rnd.randint(0, 7 if depth < 3 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rnd.random() < 0.5
    if choice == 2:
        return rnd.choice([0, 1, -1, 2**63 - 1, -(2**63), rnd.randint(-(10**9), 10**9)])
    if choice == 3:
        return _rfloat(rnd)
    if choice in (4, 5):
        return _rtext(rnd)
    if choice == 6:
        return [_rjson(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return {_rtext(rnd, 5): _rjson(rnd, depth + 1) for _ in range(rnd.randint(0, 3))}


def _robject(rnd: random.Random) -> dict[str, Any]:
    return {} if rnd.random() < 0.5 else {_rtext(rnd, 5): _rjson(rnd) for _ in range(rnd.randint(1, 3))}


def _rports(rnd: random.Random) -> tuple[Port, ...]:
    names = list(dict.fromkeys(_rident(rnd) for _ in range(rnd.randint(0, 3))))
    out = []
    for name in names:
        required = rnd.random() < 0.5
        base = rnd.choice(SCALAR_TYPES)
        out.append(
            Port(
                name,
                f"list[{base}]" if rnd.random() < 0.3 else base,
                required=required,
                default=None if required else _rjson(rnd),
                multiple=rnd.random() < 0.3,
                description=_rtext(rnd),
            )
        )
    return tuple(out)


def _rtimestamp(rnd: random.Random) -> datetime | None:
    if rnd.random() < 0.2:
        return None
    seconds = rnd.randint(86_400, 7_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rnd.randint(0, 999_999))


def random_workflow(rnd: random.Random, max_nodes: int = 8) -> Workflow:
    """A valid workflow built from ``rnd`` (same shape rules as :func:`workflows`)."""
    meta = WorkflowMetadata(
        author=None if rnd.random() < 0.5 else _rtext(rnd),
        tags=tuple(_rtext(rnd, 5) for _ in range(rnd.randint(0, 3))),
        category=None if rnd.random() < 0.5 else _rtext(rnd),
        icon=None if rnd.random() < 0.7 else _rtext(rnd),
        color=None if rnd.random() < 0.7 else _rtext(rnd),
        custom=_robject(rnd),
    )
    created, updated = _rtimestamp(rnd), _rtimestamp(rnd)
    wf = Workflow(
        _rtext(rnd, 15),
        id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        version=f"{rnd.randint(0, 99)}.{rnd.randint(0, 99)}.{rnd.randint(0, 999)}",
        description=_rtext(rnd, 20),
        metadata=meta,
        created=created,
        updated=updated,
    )
    for _ in range(rnd.randint(0, max_nodes)):
        nid = _rident(rnd)
        if nid in wf.nodes:
            continue
        kind = rnd.choice(list(NodeKind))
        if kind is NodeKind.CONTROL:
            node_type = rnd.choice(sorted(CONTROL_TYPES))
        elif kind is NodeKind.INPUT:
            node_type = "input"
        elif kind is NodeKind.OUTPUT:
            node_type = "output"
        else:
            node_type = ".".join(
                rnd.choice(["llm", "text", "split", "embed", "io", "x1"]) for _ in range(rnd.randint(1, 3))
            )
        wf.add_node(
            settle_policy(
                Node(
                    nid,
                    kind,
                    node_type,
                    name=_rtext(rnd),
                    description=_rtext(rnd),
                    inputs=() if kind is NodeKind.INPUT else _rports(rnd),
                    outputs=() if kind is NodeKind.OUTPUT else _rports(rnd),
                    config=_robject(rnd),
                    position=(0.0, 0.0) if rnd.random() < 0.4 else (_rfloat(rnd), _rfloat(rnd)),
                    enabled=rnd.random() < 0.8,
                    metadata=_robject(rnd),
                    version=None if rnd.random() < 0.7 else _rtext(rnd, 5),
                    policy=random_policy(rnd),
                ),
                list(wf.nodes.values()),
                rnd,
            )
        )
    order = list(wf.nodes)
    for _ in range(rnd.randint(0, 2 * len(order))):
        if len(order) < 2:
            break
        i = rnd.randint(0, len(order) - 2)
        j = rnd.randint(i + 1, len(order) - 1)
        src, dst = wf.node(order[i]), wf.node(order[j])
        kwargs: dict[str, Any] = {"label": _rtext(rnd, 4), "priority": rnd.randint(-5, 5)}
        if rnd.random() < 0.3:
            kwargs["metadata"] = _robject(rnd)
        if rnd.random() < 0.3:
            kwargs["id"] = _rtext(rnd, 6) or "e"
        pair = _free_pair(wf, src, dst)
        kind_roll = rnd.random()
        if kind_roll < 0.5:
            if pair is None:
                continue
            edge = Edge.data(
                src.id,
                pair[0],
                dst.id,
                pair[1],
                transform=None if rnd.random() < 0.8 else "identity",
                **kwargs,
            )
        elif kind_roll < 0.75:
            edge = Edge.control(src.id, dst.id, **kwargs)
        else:
            refs = [
                (nid, p.name)
                for nid in order[: i + 1]
                if nid == src.id or _reaches(wf, nid, src.id)
                for p in wf.node(nid).outputs
            ]
            if not refs:
                continue
            node, port = rnd.choice(refs)
            literal = (
                json.dumps(_rtext(rnd, 4), ensure_ascii=False)
                if rnd.random() < 0.5
                else str(rnd.randint(-9, 9))
            )
            cond = f"{node}.{port} {rnd.choice(['==', '!=', '>=', '<'])} {literal}"
            if pair is not None and rnd.random() < 0.5:
                edge = Edge.conditional(
                    src.id, dst.id, cond, source_port=pair[0], target_port=pair[1], **kwargs
                )
            else:
                edge = Edge.conditional(src.id, dst.id, cond, **kwargs)
        if edge.id in wf.edges:
            continue
        wf.add_edge(edge)
    wf.updated = updated
    wf._created = created
    return wf


fast_workflows = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda seed: random_workflow(random.Random(seed))
)
"""Valid workflows from one seed each (cheap enough for 1,000-case properties)."""
