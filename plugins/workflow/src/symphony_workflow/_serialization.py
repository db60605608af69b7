"""Serialization: JSON documents with a schema version, a compact binary form, and migrations.

**JSON.** A document is an envelope ``{"schema_version": "1.1", "symphony_version": ...,
"workflow": {...}}``. :func:`dumps` writes compact JSON (fields at their default are left out)
or, with ``indent``, pretty JSON. The JSON Schema is published as
``symphony_workflow/schemas/workflow-1.1.schema.json`` (:func:`json_schema`); schema 1.1 added
each node's execution ``policy`` (:class:`~symphony_workflow._policy.NodePolicy`).

**Binary.** :func:`to_binary` writes the same content as positional MessagePack: objects become
arrays in a fixed field order with trailing defaults dropped, repeated strings (node types,
port names and types) go through a string table, edges name their endpoints by node position,
the workflow id is 16 raw bytes and timestamps are integer microseconds. The result starts
with the magic ``SYWF`` and a format byte; ``compress="zstd"`` wraps it in a zstd frame
(install ``symphony-workflow[zstd]``). :func:`from_binary` detects either.

**Loading** (:func:`loads`, :func:`from_document`, :func:`from_binary`) migrates older schema
versions, then checks the document's structure: a one-pass fast path checks and builds each
node and edge at once and only ever accepts; at its first doubt the slow path, a hand-written
checker that mirrors the JSON Schema (``strict=True`` also runs ``jsonschema``), finds and
words every problem. Then it checks graph integrity once for the whole graph (dangling
edges, unknown ports, type mismatches, cycles, bad conditions). Every problem found is
reported at once in a :class:`~symphony_workflow._errors.WorkflowValidationError` whose context
names the JSON path (``$.workflow.nodes[3].kind``), node, edge or expression column. Loading
never changes its input, and a document either loads completely or not at all.

**Migrations.** :class:`MigrationRegistry` chains migrations between schema versions (found by
breadth-first search); each runs on a deep copy, so a failing step leaves the input untouched.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any, NoReturn

import attrs
import msgpack

from symphony.commons.errors import FilesystemError, SerializationError, SymphonyError, ValidationError
from symphony.commons.fs import atomic_write
from symphony.commons.gcpause import without_gc
from symphony_workflow._errors import WorkflowValidationError
from symphony_workflow._expr import KEYWORDS
from symphony_workflow._model import (
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    Port,
    Workflow,
    WorkflowMetadata,
    auto_edge_id,
    is_semver,
    is_type_name,
    trusted_edge,
    trusted_node,
)
from symphony_workflow._policy import BACKOFFS, DEFAULT_POLICY, POLICY_FIELDS, policy_doc, policy_from_doc
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem
from symphony_workflow._validation import INTEGRITY_CODES, Issue, Severity, check_parts

__all__ = [
    "BINARY_MAGIC",
    "DEFAULT_MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "MigrationRegistry",
    "detect_format",
    "dump",
    "dumps",
    "from_binary",
    "from_document",
    "json_schema",
    "load",
    "loads",
    "to_binary",
    "to_document",
]

SCHEMA_VERSION = "1.1"
"""The document schema version this package writes."""

BINARY_MAGIC = b"SYWF"
"""First bytes of the binary form (followed by a format byte, then MessagePack)."""
_BINARY_FORMAT = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DEFAULT_MAX_NODES = 100_000
"""Documents with more nodes than this are refused (configurable as ``workflow.max_nodes``)."""
_MAX_BINARY_OUTPUT = 512 * 1024 * 1024
_MAX_JSON_DEPTH = 200

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")

_NODE_KINDS = {k.value: k for k in NodeKind}
_EDGE_KINDS = {k.value: k for k in EdgeKind}
_NODE_KIND_CODES = {k: i for i, k in enumerate(NodeKind)}
_EDGE_KIND_CODES = {k: i for i, k in enumerate(EdgeKind)}
_NODE_KIND_BY_CODE = list(NodeKind)
_EDGE_KIND_BY_CODE = list(EdgeKind)


def _symphony_version() -> str:
    try:
        from symphony import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - core always has a version
        return "unknown"


# --- writing --------------------------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _port_doc(p: Port) -> dict[str, Any]:
    d: dict[str, Any] = {"name": p.name}
    if p.type != "any":
        d["type"] = p.type
    if not p.required:
        d["required"] = False
    if p.default is not None:
        d["default"] = p.default
    if p.multiple:
        d["multiple"] = True
    if p.description:
        d["description"] = p.description
    return d


def _node_doc(n: Node) -> dict[str, Any]:
    d: dict[str, Any] = {"id": n.id, "kind": n.kind.value, "type": n.type}
    if n.name:
        d["name"] = n.name
    if n.description:
        d["description"] = n.description
    if n.inputs:
        d["inputs"] = [_port_doc(p) for p in n.inputs]
    if n.outputs:
        d["outputs"] = [_port_doc(p) for p in n.outputs]
    if n.config:
        d["config"] = n.config
    if n.position != (0.0, 0.0):
        d["position"] = list(n.position)
    if not n.enabled:
        d["enabled"] = False
    if n.metadata:
        d["metadata"] = n.metadata
    if n.version is not None:
        d["version"] = n.version
    if n.policy is not DEFAULT_POLICY and not n.policy.is_default:
        d["policy"] = policy_doc(n.policy)
    return d


def _edge_doc(e: Edge) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if e.id != e.auto_id:
        d["id"] = e.id
    if e.kind is not EdgeKind.DATA:
        d["kind"] = e.kind.value
    d["source"] = e.source
    if e.source_port is not None:
        d["source_port"] = e.source_port
    d["target"] = e.target
    if e.target_port is not None:
        d["target_port"] = e.target_port
    if e.condition is not None:
        d["condition"] = e.condition
    if e.label:
        d["label"] = e.label
    if e.priority:
        d["priority"] = e.priority
    if e.transform is not None:
        d["transform"] = e.transform
    if e.metadata:
        d["metadata"] = e.metadata
    return d


def _metadata_doc(m: WorkflowMetadata) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if m.author is not None:
        d["author"] = m.author
    if m.tags:
        d["tags"] = list(m.tags)
    if m.category is not None:
        d["category"] = m.category
    if m.icon is not None:
        d["icon"] = m.icon
    if m.color is not None:
        d["color"] = m.color
    if m.custom:
        d["custom"] = m.custom
    return d


def to_document(wf: Workflow) -> dict[str, Any]:
    """The workflow as a JSON-ready document (the schema-version envelope); defaults left out."""
    body: dict[str, Any] = {"id": wf.id, "name": wf.name, "version": wf.version}
    if wf.description:
        body["description"] = wf.description
    body["created"] = _ts(wf.created)
    body["updated"] = _ts(wf.updated)
    meta = _metadata_doc(wf.metadata)
    if meta:
        body["metadata"] = meta
    body["nodes"] = [_node_doc(n) for n in wf.nodes.values()]
    body["edges"] = [_edge_doc(e) for e in wf.edges.values()]
    return {"schema_version": SCHEMA_VERSION, "symphony_version": _symphony_version(), "workflow": body}


def dumps(wf: Workflow, *, indent: int | None = None) -> str:
    """JSON text of ``wf``: compact by default, pretty with ``indent``. Lossless."""
    doc = to_document(wf)
    try:
        if indent is None:
            return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return json.dumps(doc, ensure_ascii=False, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"workflow {wf.name!r} holds a value JSON cannot represent: {exc}",
            code="workflow.json.unencodable",
            context={"workflow": wf.id},
            hint="config, metadata and port defaults must be JSON values (objects, lists, text, numbers...)",
        ) from exc


def dump(wf: Workflow, target: str | Path | IO[str], *, indent: int | None = 2) -> None:
    """Write ``wf`` as JSON to a path (atomically) or an open text file."""
    text = dumps(wf, indent=indent)
    if isinstance(target, str | Path):
        atomic_write(Path(target), text.encode())
    else:
        target.write(text)


def to_jsonable(value: Any) -> Any:
    """A JSON-safe version of model values (attrs objects, enums, tuples, datetimes)."""
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, Port):
        return _port_doc(value)
    if isinstance(value, WorkflowMetadata):
        return _metadata_doc(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value.value if isinstance(value, NodeKind | EdgeKind) else value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return str(value)


# --- binary -----------------------------------------------------------------------------------------


def _trim(values: list[Any], defaults: tuple[Any, ...]) -> list[Any]:
    """Drop trailing fields equal to their default (positions after ``len(values) - len(defaults)``)."""
    start = len(values) - len(defaults)
    end = len(values)
    while end > start and _same(values[end - 1], defaults[end - 1 - start]):
        end -= 1
    return values[:end]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


_PORT_DEFAULTS: tuple[Any, ...] = (True, None, False, "")  # required, default, multiple, description
_NODE_DEFAULTS: tuple[Any, ...] = ("", "", [], [], {}, 0.0, 0.0, True, {}, None, None)
# retries, backoff code, retry_delay, retry_max_delay, retry_jitter, retry_on, timeout, fallback,
# fallback_value, optional, cache, cache_salt (the order of NodePolicy's fields)
_POLICY_DEFAULTS: tuple[Any, ...] = (0, 2, 1.0, 60.0, 0.0, [], None, None, None, False, True, "")
_BACKOFF_CODES = {name: i for i, name in enumerate(BACKOFFS)}
_MUTABLE_DEFAULT = frozenset({list, dict})
# What the binary reader fills in for trailing edge fields left out (index 0 = source_port);
# the empty metadata is one shared object that the loaders replace with a fresh dict.
_SHARED_EMPTY: dict[str, Any] = {}
_EDGE_FILL: tuple[Any, ...] = (None, None, None, "", 0, None, _SHARED_EMPTY, None)
_NO_PORTS: list[Any] = []  # never changed: the readers only iterate it
_NODE_FILL: tuple[Any, ...] = (
    "",
    "",
    _NO_PORTS,
    _NO_PORTS,
    _SHARED_EMPTY,
    0.0,
    0.0,
    True,
    _SHARED_EMPTY,
    None,
    None,
)


def _fresh(value: Any) -> Any:
    """``value``, or a new empty dict for the binary reader's shared empty one."""
    return {} if value is _SHARED_EMPTY else value


def _policy_row(p: Any) -> list[Any] | None:
    if p is DEFAULT_POLICY or p.is_default:
        return None
    return _trim(
        [
            p.retries,
            _BACKOFF_CODES[p.backoff],
            p.retry_delay,
            p.retry_max_delay,
            p.retry_jitter,
            list(p.retry_on),
            p.timeout,
            p.fallback,
            p.fallback_value,
            p.optional,
            p.cache,
            p.cache_salt,
        ],
        _POLICY_DEFAULTS,
    )


_EDGE_DEFAULTS: tuple[Any, ...] = (None, None, None, "", 0, None, {}, None)
_META_DEFAULTS: tuple[Any, ...] = (None, [], None, None, None, {})


def _us(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - _EPOCH) // _US


def to_binary(wf: Workflow, *, compress: str | None = None, level: int = 3) -> bytes:
    """The compact binary form (positional MessagePack); ``compress="zstd"`` to compress it.

    At most half the size of the compact JSON for real workflows; lossless.
    """
    strings: dict[str, int] = {}

    def s(value: str) -> int:
        idx = strings.get(value)
        if idx is None:
            idx = strings[value] = len(strings)
        return idx

    def port(p: Port) -> list[Any]:
        return _trim([s(p.name), s(p.type), p.required, p.default, p.multiple, p.description], _PORT_DEFAULTS)

    node_pos: dict[str, int] = {}
    nodes: list[Any] = []
    for i, n in enumerate(wf.nodes.values()):
        node_pos[n.id] = i
        nodes.append(
            _trim(
                [
                    n.id,
                    _NODE_KIND_CODES[n.kind],
                    s(n.type),
                    n.name,
                    n.description,
                    [port(p) for p in n.inputs],
                    [port(p) for p in n.outputs],
                    n.config,
                    n.position[0],
                    n.position[1],
                    n.enabled,
                    n.metadata,
                    n.version,
                    _policy_row(n.policy),
                ],
                _NODE_DEFAULTS,
            )
        )
    edges: list[Any] = []
    for e in wf.edges.values():
        edges.append(
            _trim(
                [
                    _EDGE_KIND_CODES[e.kind],
                    node_pos[e.source],
                    node_pos[e.target],
                    None if e.source_port is None else s(e.source_port),
                    None if e.target_port is None else s(e.target_port),
                    e.condition,
                    e.label,
                    e.priority,
                    e.transform,
                    e.metadata,
                    None if e.id == e.auto_id else e.id,
                ],
                _EDGE_DEFAULTS,
            )
        )
    m = wf.metadata
    meta = _trim([m.author, list(m.tags), m.category, m.icon, m.color, m.custom], _META_DEFAULTS)
    body = [
        uuid.UUID(wf.id).bytes,
        wf.name,
        wf.version,
        wf.description,
        _us(wf.created),
        _us(wf.updated),
        meta,
        nodes,
        edges,
    ]
    table = [k for k, _ in sorted(strings.items(), key=lambda kv: kv[1])]
    try:
        payload = msgpack.packb([SCHEMA_VERSION, _symphony_version(), table, body], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"workflow {wf.name!r} holds a value MessagePack cannot represent: {exc}",
            code="workflow.binary.unencodable",
            context={"workflow": wf.id},
            hint="config, metadata and port defaults must be JSON values with 64-bit integers",
        ) from exc
    raw: bytes = BINARY_MAGIC + bytes([_BINARY_FORMAT]) + bytes(payload)
    if compress is None:
        return raw
    if compress != "zstd":
        raise ValidationError(
            f"unknown compression {compress!r}",
            code="workflow.binary.unknown_compression",
            context={"compression": compress, "allowed": ["zstd"]},
        )
    return bytes(_zstd().ZstdCompressor(level=level).compress(raw))


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise SerializationError(
            "zstd compression needs the 'zstandard' package",
            code="workflow.binary.zstd_unavailable",
            hint="pip install 'symphony-workflow[zstd]'",
        ) from None
    return zstandard


def detect_format(data: bytes | str) -> str:
    """``"json"``, ``"binary"`` or ``"binary+zstd"`` from the first bytes of ``data``."""
    if isinstance(data, str):
        return "json"
    if data.startswith(_ZSTD_MAGIC):
        return "binary+zstd"
    if data.startswith(BINARY_MAGIC):
        return "binary"
    return "json"


def _bin_error(message: str, path: str) -> WorkflowValidationError:
    issue = Issue("workflow.binary.malformed", message, path=path)
    return WorkflowValidationError(
        f"malformed binary workflow: {message} at {path}",
        code="workflow.binary.malformed",
        context={"path": path, "issues": [issue.to_dict()]},
        issues=[issue],
    )


@without_gc
def from_binary(
    data: bytes,
    *,
    types: TypeSystem = DEFAULT_TYPES,
    max_nodes: int = DEFAULT_MAX_NODES,
    strict: bool = False,
) -> Workflow:
    """Read the binary form (zstd-compressed or not); bad input raises :class:`ValidationError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _bin_error("expected bytes", "$")
    data = bytes(data)
    if data.startswith(_ZSTD_MAGIC):
        zstd = _zstd()
        try:
            data = zstd.ZstdDecompressor().decompress(data, max_output_size=_MAX_BINARY_OUTPUT)
        except zstd.ZstdError as exc:
            raise _bin_error(f"zstd frame does not decompress ({exc})", "$") from None
    if not data.startswith(BINARY_MAGIC) or len(data) < 5:
        raise _bin_error("missing the SYWF magic bytes", "$")
    if data[4] != _BINARY_FORMAT:
        raise _bin_error(f"unknown binary format {data[4]}", "$[4]")
    try:
        top = msgpack.unpackb(data[5:], raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise _bin_error(f"MessagePack does not decode ({type(exc).__name__}: {exc})", "$") from None
    doc = _positional_to_document(top)
    return _from_document(doc, types=types, max_nodes=max_nodes, strict=strict, _shared_ports=True)


def _positional_to_document(top: Any) -> dict[str, Any]:
    if not isinstance(top, list) or len(top) != 4:
        raise _bin_error("expected [schema_version, symphony_version, strings, workflow]", "$")
    schema_version, symphony_version, table, body = top
    if not isinstance(table, list) or not all(isinstance(x, str) for x in table):
        raise _bin_error("string table must be a list of strings", "$[2]")

    def s(value: Any, path: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(table):
            return str(table[value])
        raise _bin_error("expected an index into the string table", path)

    def opt_s(value: Any, path: str) -> str | None:
        return None if value is None else s(value, path)

    def arr(value: Any, path: str, lo: int, hi: int) -> list[Any]:
        if not isinstance(value, list) or not lo <= len(value) <= hi:
            raise _bin_error(f"expected an array of {lo} to {hi} items", path)
        return value

    def fill(values: list[Any], defaults: tuple[Any, ...], total: int) -> list[Any]:
        missing = total - len(values)
        if not missing:
            return values
        tail = defaults[len(defaults) - missing :]
        if _MUTABLE_DEFAULT.isdisjoint(map(type, tail)):
            return [*values, *tail]
        return [*values, *(d if type(d) not in _MUTABLE_DEFAULT else type(d)() for d in tail)]

    body = arr(body, "$[3]", 9, 9)
    wid, name, version, description, created, updated, meta, nodes, edges = body
    if not isinstance(wid, bytes) or len(wid) != 16:
        raise _bin_error("workflow id must be 16 bytes", "$[3][0]")

    def ts(value: Any, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return _ts(_EPOCH + value * _US)
            except (OverflowError, ValueError):
                pass
        raise _bin_error("timestamp must be integer microseconds", path)

    meta = fill(arr(meta, "$[3][6]", 0, 6), _META_DEFAULTS, 6)
    meta_doc = dict(zip(("author", "tags", "category", "icon", "color", "custom"), meta, strict=True))
    node_docs: list[dict[str, Any]] = []
    ids: list[str] = []
    port_docs: dict[tuple[Any, ...], dict[str, Any]] = {}
    for i, raw in enumerate(arr(nodes, "$[3][7]", 0, 1 << 31)):
        path = f"$[3][7][{i}]"
        if type(raw) is not list or not 3 <= len(raw) <= 14:
            raise _bin_error("expected an array of 3 to 14 items", path)
        full = raw if len(raw) == 14 else [*raw, *_NODE_FILL[len(raw) - 3 :]]
        nid, kind, ntype, nname, ndesc, ins, outs, config, x, y, enabled, nmeta, nversion, prow = full
        if not isinstance(kind, int) or isinstance(kind, bool) or not 0 <= kind < len(_NODE_KIND_BY_CODE):
            raise _bin_error("unknown node kind code", f"{path}[1]")

        def ports(value: Any, ppath: str) -> list[dict[str, Any]]:
            out = []
            for k, p in enumerate(arr(value, ppath, 0, 1 << 20)):
                # identical rows (common) share one port document; the key carries the types
                # so that 1, 1.0 and True do not stand for each other
                try:
                    key: tuple[Any, ...] | None = (*p, *map(type, p)) if type(p) is list else None
                    hit = port_docs.get(key) if key is not None else None
                except TypeError:  # an unhashable default
                    key = hit = None
                if hit is not None:
                    out.append(hit)
                    continue
                pp = f"{ppath}[{k}]"
                pname, ptype, required, default, multiple, pdesc = fill(arr(p, pp, 2, 6), _PORT_DEFAULTS, 6)
                pdoc = {
                    "name": s(pname, f"{pp}[0]"),
                    "type": s(ptype, f"{pp}[1]"),
                    "required": required,
                    "default": default,
                    "multiple": multiple,
                    "description": pdesc,
                }
                if key is not None and len(port_docs) < 4096:
                    port_docs[key] = pdoc
                out.append(pdoc)
            return out

        ids.append(nid if isinstance(nid, str) else "")
        ndoc: dict[str, Any] = {
            "id": nid,
            "kind": _NODE_KIND_BY_CODE[kind].value,
            "type": s(ntype, f"{path}[2]"),
            "name": nname,
            "description": ndesc,
            "inputs": ports(ins, f"{path}[5]"),
            "outputs": ports(outs, f"{path}[6]"),
            "config": config,
            "position": [x, y],
            "enabled": enabled,
            "metadata": nmeta,
            "version": nversion,
        }
        if prow is not None:
            ndoc["policy"] = _policy_fields(prow, f"{path}[13]")
        node_docs.append(ndoc)
    edge_docs: list[dict[str, Any]] = []
    n_ids = len(ids)
    n_table = len(table)
    edge_kinds = [k.value for k in _EDGE_KIND_BY_CODE]
    for j, raw in enumerate(arr(edges, "$[3][8]", 0, 1 << 31)):
        if type(raw) is not list or not 3 <= len(raw) <= 11:
            raise _bin_error("expected an array of 3 to 11 items", f"$[3][8][{j}]")
        kind, src, dst, sp, tp, condition, label, priority, transform, emeta, eid = (
            raw if len(raw) == 11 else [*raw, *_EDGE_FILL[len(raw) - 3 :]]
        )
        if type(kind) is not int or not 0 <= kind < len(edge_kinds):
            raise _bin_error("unknown edge kind code", f"$[3][8][{j}][0]")
        if type(src) is not int or not 0 <= src < n_ids:
            raise _bin_error("edge endpoint must be a node position", f"$[3][8][{j}][1]")
        if type(dst) is not int or not 0 <= dst < n_ids:
            raise _bin_error("edge endpoint must be a node position", f"$[3][8][{j}][2]")
        if sp is not None:
            sp = table[sp] if type(sp) is int and 0 <= sp < n_table else s(sp, f"$[3][8][{j}][3]")
        if tp is not None:
            tp = table[tp] if type(tp) is int and 0 <= tp < n_table else s(tp, f"$[3][8][{j}][4]")
        if len(raw) == 5 and kind == 0 and sp is not None and tp is not None:
            # a plain data edge (every later field at its default): the loader's common case
            edge_docs.append({"source": ids[src], "source_port": sp, "target": ids[dst], "target_port": tp})
            continue
        edoc: dict[str, Any] = {
            "kind": edge_kinds[kind],
            "source": ids[src],
            "target": ids[dst],
            "source_port": sp,
            "target_port": tp,
            "condition": condition,
            "label": label,
            "priority": priority,
            "transform": transform,
            "metadata": emeta,
        }
        if eid is not None:
            edoc["id"] = eid
        edge_docs.append(edoc)
    return {
        "schema_version": schema_version,
        "symphony_version": symphony_version,
        "workflow": {
            "id": str(uuid.UUID(bytes=wid)),
            "name": name,
            "version": version,
            "description": description,
            "created": ts(created, "$[3][4]"),
            "updated": ts(updated, "$[3][5]"),
            "metadata": meta_doc,
            "nodes": node_docs,
            "edges": edge_docs,
        },
    }


def _policy_fields(row: Any, path: str) -> dict[str, Any]:
    """A positional policy row back to its JSON form (non-default fields only)."""
    if not isinstance(row, list) or not 1 <= len(row) <= len(_POLICY_DEFAULTS):
        raise _bin_error(f"expected an array of 1 to {len(_POLICY_DEFAULTS)} items", path)
    out: dict[str, Any] = {}
    for k, (name, value) in enumerate(zip(POLICY_FIELDS, row, strict=False)):
        if _same(value, _POLICY_DEFAULTS[k]):
            continue
        if name == "backoff":
            if type(value) is not int or not 0 <= value < len(BACKOFFS):
                raise _bin_error("unknown backoff code", f"{path}[{k}]")
            value = BACKOFFS[value]
        out[name] = value
    return out


# --- migrations -------------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (-1,)


@attrs.frozen
class Migration:
    """A step from schema ``source`` to schema ``target``: ``fn`` gets a private copy of the document."""

    source: str
    target: str
    fn: Callable[[dict[str, Any]], dict[str, Any] | None]
    description: str = ""


class MigrationRegistry:
    """Migrations between schema versions; :meth:`migrate` chains them along the shortest path."""

    def __init__(self, migrations: Iterable[Migration] = ()) -> None:
        self._steps: dict[str, list[Migration]] = {}
        for m in migrations:
            self.add(m)

    def add(self, migration: Migration) -> None:
        """Register ``migration`` (one per source/target pair)."""
        steps = self._steps.setdefault(migration.source, [])
        if any(m.target == migration.target for m in steps):
            from symphony.commons.errors import ConflictError

            raise ConflictError(
                f"a migration {migration.source} -> {migration.target} is already registered",
                code="workflow.migration.duplicate",
                context={"from": migration.source, "to": migration.target},
            )
        steps.append(migration)

    def register(
        self, source: str, target: str, description: str = ""
    ) -> Callable[
        [Callable[[dict[str, Any]], dict[str, Any] | None]], Callable[[dict[str, Any]], dict[str, Any] | None]
    ]:
        """Decorator form of :meth:`add`."""

        def deco(
            fn: Callable[[dict[str, Any]], dict[str, Any] | None],
        ) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
            self.add(Migration(source, target, fn, description or (fn.__doc__ or "").strip()))
            return fn

        return deco

    def versions(self) -> set[str]:
        """Every schema version some migration starts or ends at."""
        out = set(self._steps)
        for steps in self._steps.values():
            out.update(m.target for m in steps)
        return out

    def path(self, source: str, target: str) -> list[Migration]:
        """The shortest migration chain from ``source`` to ``target`` (:class:`ValidationError` if none)."""
        if source == target:
            return []
        prev: dict[str, Migration] = {}
        todo = deque([source])
        seen = {source}
        while todo:
            current = todo.popleft()
            for m in self._steps.get(current, ()):
                if m.target in seen:
                    continue
                seen.add(m.target)
                prev[m.target] = m
                if m.target == target:
                    chain = [m]
                    while chain[0].source != source:
                        chain.insert(0, prev[chain[0].source])
                    return chain
                todo.append(m.target)
        newer = _version_key(source) > _version_key(target)
        raise ValidationError(
            f"no migration from schema version {source} to {target}",
            code="workflow.schema_version",
            context={"path": "$.schema_version", "expected": target, "found": source},
            hint="upgrade symphony-workflow to read this document"
            if newer
            else "the document's schema version is unknown",
        )

    def migrate(self, doc: Mapping[str, Any], target: str = SCHEMA_VERSION) -> dict[str, Any]:
        """A migrated deep copy of ``doc``; ``doc`` itself is never modified.

        A step that raises (or returns something that is not an object) aborts the whole chain
        with a :class:`ValidationError` naming the step.
        """
        source = doc.get("schema_version")
        if not isinstance(source, str):
            raise ValidationError(
                "document has no schema_version",
                code="workflow.schema_version",
                context={"path": "$.schema_version", "expected": target},
            )
        chain = self.path(source, target)
        work = copy.deepcopy(dict(doc))
        for m in chain:
            try:
                result = m.fn(work)
            except SymphonyError as exc:
                raise ValidationError(
                    f"migration {m.source} -> {m.target} failed: {exc.message}",
                    code="workflow.migration_failed",
                    context={"from": m.source, "to": m.target, **exc.context},
                ) from exc
            except Exception as exc:
                raise ValidationError(
                    f"migration {m.source} -> {m.target} failed: {type(exc).__name__}: {exc}",
                    code="workflow.migration_failed",
                    context={"from": m.source, "to": m.target},
                ) from exc
            if result is not None:
                work = result
            if not isinstance(work, dict):
                raise ValidationError(
                    f"migration {m.source} -> {m.target} did not produce a document",
                    code="workflow.migration_failed",
                    context={"from": m.source, "to": m.target},
                )
            work["schema_version"] = m.target
        return work


def _migrate_0_9(doc: dict[str, Any]) -> dict[str, Any]:
    """0.9 (draft of the M5 design): nodes as a map keyed by id, positions as {x, y}."""
    body = doc.get("workflow")
    if not isinstance(body, dict):
        raise ValueError("workflow must be an object")
    nodes = body.get("nodes", {})
    if not isinstance(nodes, dict):
        raise ValueError("0.9 documents keep nodes in an object keyed by id")
    out = []
    for node_id, node in nodes.items():
        if not isinstance(node, dict):
            raise ValueError(f"node {node_id!r} must be an object")
        node = {"id": node_id, **node}
        pos = node.get("position")
        if isinstance(pos, dict):
            node["position"] = [pos.get("x", 0.0), pos.get("y", 0.0)]
        out.append(node)
    body["nodes"] = out
    return doc


def _migrate_1_0(doc: dict[str, Any]) -> dict[str, Any]:
    """1.0 -> 1.1: nodes gained an optional ``policy``; a 1.0 node has the default policy."""
    body = doc.get("workflow")
    if isinstance(body, dict) and isinstance(body.get("nodes"), list):
        for node in body["nodes"]:
            if isinstance(node, dict) and "policy" in node:
                raise ValueError(f"node {node.get('id')!r} has a 'policy', which schema 1.0 does not know")
    return doc


DEFAULT_MIGRATIONS = MigrationRegistry(
    [
        Migration("0.9", "1.0", _migrate_0_9, (_migrate_0_9.__doc__ or "").strip()),
        Migration("1.0", "1.1", _migrate_1_0, (_migrate_1_0.__doc__ or "").strip()),
    ]
)
"""The migrations this package ships (``0.9 -> 1.0 -> 1.1``); pass your own registry to add more."""


# --- structural check ---------------------------------------------------------------------------------


class _Checker:
    """Hand-written structural check mirroring the JSON Schema; collects issues with JSON paths."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def fail(self, path: str, message: str, code: str = "workflow.document.invalid", **extra: Any) -> None:
        self.issues.append(Issue(code, f"{message} at {path}", Severity.ERROR, path=path, details=extra))

    def keys(self, d: Any, path: str, allowed: frozenset[str], required: tuple[str, ...]) -> bool:
        if not isinstance(d, dict):
            self.fail(path, f"expected an object, found {_jtype(d)}")
            return False
        for key in d:
            if key not in allowed:
                self.fail(
                    f"{path}.{key}" if isinstance(key, str) else path,
                    f"unknown field {key!r}",
                    allowed=sorted(allowed),
                )
        for key in required:
            if key not in d:
                self.fail(f"{path}.{key}", f"missing required field {key!r}")
        return True

    def string(self, d: Mapping[str, Any], key: str, path: str, *, nullable: bool = False) -> None:
        if key in d:
            v = d[key]
            if not (isinstance(v, str) or (nullable and v is None)):
                self.fail(
                    f"{path}.{key}",
                    f"expected {'a string or null' if nullable else 'a string'}, found {_jtype(v)}",
                )

    def boolean(self, d: dict[str, Any], key: str, path: str) -> None:
        if key in d and not isinstance(d[key], bool):
            self.fail(f"{path}.{key}", f"expected true or false, found {_jtype(d[key])}")

    def json_object(self, d: dict[str, Any], key: str, path: str) -> None:
        if key not in d:
            return
        v = d[key]
        if not isinstance(v, dict):
            self.fail(f"{path}.{key}", f"expected an object, found {_jtype(v)}")
            return
        self.json_value(v, f"{path}.{key}")

    def json_value(self, value: Any, path: str) -> None:
        problem = json_problem(value)
        if problem is not None:
            sub, reason = problem
            self.fail(path + sub, reason)

    def ident(self, d: dict[str, Any], key: str, path: str, what: str, *, node_id: bool = False) -> None:
        v = d.get(key)
        if key not in d:
            return
        if not isinstance(v, str) or _IDENT.fullmatch(v) is None:
            self.fail(
                f"{path}.{key}",
                f"invalid {what} {v!r}: use letters, digits and '_', not starting with a digit (at most 128)",
            )
        elif node_id and v in KEYWORDS:
            self.fail(f"{path}.{key}", f"{what} {v!r} is an expression keyword")


_TOP_KEYS = frozenset({"$schema", "schema_version", "symphony_version", "workflow"})
_WF_KEYS = frozenset(
    {"id", "name", "version", "description", "created", "updated", "metadata", "nodes", "edges"}
)
_META_KEYS = frozenset({"author", "tags", "category", "icon", "color", "custom"})
_NODE_KEYS = frozenset(
    {
        "id",
        "kind",
        "type",
        "name",
        "description",
        "inputs",
        "outputs",
        "config",
        "position",
        "enabled",
        "metadata",
        "version",
        "policy",
    }
)
_POLICY_KEYS = frozenset(POLICY_FIELDS)
_PORT_KEYS = frozenset({"name", "type", "required", "default", "multiple", "description"})
_EDGE_KEYS = frozenset(
    {
        "id",
        "kind",
        "source",
        "target",
        "source_port",
        "target_port",
        "condition",
        "label",
        "priority",
        "transform",
        "metadata",
    }
)


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def json_problem(value: Any) -> tuple[str, str] | None:
    """``(sub-path, reason)`` of the first non-JSON part of ``value`` (iterative, depth-capped)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        v, sub, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            return sub, f"value is nested more than {_MAX_JSON_DEPTH} levels deep"
        if v is None or isinstance(v, str | bool):
            continue
        if isinstance(v, int):
            if not -(2**63) <= v < 2**64:
                return sub, "integer does not fit in 64 bits"
            continue
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                return sub, "number must be finite"
            continue
        if isinstance(v, list):
            stack.extend((item, f"{sub}[{i}]", depth + 1) for i, item in enumerate(v))
            continue
        if isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str):
                    return sub, f"object keys must be strings, found {_jtype(k)}"
                stack.append((item, f"{sub}.{k}", depth + 1))
            continue
        return sub, f"{_jtype(v)} is not a JSON value"
    return None


def _check_body(body: Any, chk: _Checker, max_nodes: int, *, fields_only: bool = False) -> None:
    """Check the workflow object; ``fields_only`` skips the items of ``nodes`` and ``edges``."""
    path = "$.workflow"
    if not chk.keys(body, path, _WF_KEYS, ("id", "name")):
        return
    if "id" in body:
        v = body["id"]
        if not isinstance(v, str) or _UUID.fullmatch(v) is None:
            chk.fail(f"{path}.id", f"workflow id must be a UUID, found {v!r}"[:200])
    chk.string(body, "name", path)
    chk.string(body, "description", path)
    if "version" in body and not is_semver(body["version"]):
        chk.fail(
            f"{path}.version", f"version must be a semantic version (1.2.3), found {body['version']!r}"[:200]
        )
    for key in ("created", "updated"):
        v = body.get(key)
        if v is not None and (
            not isinstance(v, str) or _TIMESTAMP.fullmatch(v) is None or _parse_ts(v) is None
        ):
            chk.fail(f"{path}.{key}", f"{key} must be an ISO 8601 UTC timestamp such as 2024-01-31T12:00:00Z")
    if "metadata" in body:
        meta = body["metadata"]
        mpath = f"{path}.metadata"
        if chk.keys(meta, mpath, _META_KEYS, ()):
            for key in ("author", "category", "icon", "color"):
                chk.string(meta, key, mpath, nullable=True)
            if "tags" in meta:
                tags = meta["tags"]
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    chk.fail(f"{mpath}.tags", "tags must be an array of strings")
            chk.json_object(meta, "custom", mpath)
    nodes = body.get("nodes", [])
    if not isinstance(nodes, list):
        chk.fail(f"{path}.nodes", f"expected an array, found {_jtype(nodes)}")
    elif not fields_only:
        if len(nodes) > max_nodes:
            chk.fail(
                f"{path}.nodes",
                f"workflow has {len(nodes)} nodes, more than the limit of {max_nodes}",
                code="workflow.too_large",
            )
            return
        for i, node in enumerate(nodes):
            _check_node(node, f"{path}.nodes[{i}]", chk)
    edges = body.get("edges", [])
    if not isinstance(edges, list):
        chk.fail(f"{path}.edges", f"expected an array, found {_jtype(edges)}")
    elif not fields_only:
        for j, edge in enumerate(edges):
            _check_edge(edge, f"{path}.edges[{j}]", chk)


def _port_ok(p: Any) -> bool:
    """Fast path: True when the port dict is certainly valid (the slow path explains failures)."""
    if type(p) is not dict or not p.keys() <= _PORT_KEYS:
        return False
    name = p.get("name")
    if type(name) is not str or _IDENT.fullmatch(name) is None:
        return False
    if type(p.get("type", "")) is not str or type(p.get("description", "")) is not str:
        return False
    if type(p.get("required", True)) is not bool or type(p.get("multiple", False)) is not bool:
        return False
    default = p.get("default")
    return default is None or json_problem(default) is None


def _check_ports(ports: Any, path: str, chk: _Checker) -> None:
    if not isinstance(ports, list):
        chk.fail(path, f"expected an array of ports, found {_jtype(ports)}")
        return
    if all(_port_ok(p) for p in ports) and len({p["name"] for p in ports}) == len(ports):
        return
    names: set[str] = set()
    for k, port in enumerate(ports):
        pp = f"{path}[{k}]"
        if not chk.keys(port, pp, _PORT_KEYS, ("name",)):
            continue
        chk.ident(port, "name", pp, "port name")
        name = port.get("name")
        if isinstance(name, str):
            if name in names:
                chk.fail(f"{pp}.name", f"port {name!r} is declared twice", code="workflow.duplicate_port")
            names.add(name)
        chk.string(port, "type", pp)
        chk.boolean(port, "required", pp)
        chk.boolean(port, "multiple", pp)
        chk.string(port, "description", pp)
        if "default" in port:
            chk.json_value(port["default"], f"{pp}.default")


def _check_node(node: Any, path: str, chk: _Checker) -> None:
    if not chk.keys(node, path, _NODE_KEYS, ("id", "kind", "type")):
        return
    chk.ident(node, "id", path, "node id", node_id=True)
    kind = node.get("kind")
    if "kind" in node and (not isinstance(kind, str) or kind not in _NODE_KINDS):
        chk.fail(
            f"{path}.kind",
            f"unknown node kind {kind!r}"[:200],
            code="workflow.unknown_node_kind",
            allowed=list(_NODE_KINDS),
        )
    if "type" in node and not is_type_name(node["type"]):
        chk.fail(f"{path}.type", f"invalid node type {node['type']!r}"[:200])
    chk.string(node, "name", path)
    chk.string(node, "description", path)
    chk.string(node, "version", path, nullable=True)
    chk.boolean(node, "enabled", path)
    for key in ("inputs", "outputs"):
        if key in node:
            _check_ports(node[key], f"{path}.{key}", chk)
    chk.json_object(node, "config", path)
    chk.json_object(node, "metadata", path)
    if "policy" in node:
        _check_policy(node["policy"], f"{path}.policy", chk)
    if "position" in node:
        pos = node["position"]
        if (
            not isinstance(pos, list)
            or len(pos) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos)
            or json_problem(pos) is not None
        ):
            chk.fail(f"{path}.position", "position must be [x, y] with two finite numbers")


def _check_policy(policy: Any, path: str, chk: _Checker) -> None:
    if not chk.keys(policy, path, _POLICY_KEYS, ()):
        return
    if "fallback_value" in policy and policy["fallback_value"] is not None:
        chk.json_object(policy, "fallback_value", path)
    try:
        policy_from_doc(policy)
    except ValidationError as exc:
        field = exc.context.get("field", "")
        chk.fail(f"{path}.{field}", exc.message, code="workflow.invalid_policy")


def _check_edge(edge: Any, path: str, chk: _Checker) -> None:
    if not chk.keys(edge, path, _EDGE_KEYS, ("source", "target")):
        return
    if "id" in edge and (not isinstance(edge["id"], str) or not edge["id"]):
        chk.fail(f"{path}.id", "edge id must be a non-empty string")
    kind = edge.get("kind", "data")
    if not isinstance(kind, str) or kind not in _EDGE_KINDS:
        chk.fail(
            f"{path}.kind",
            f"unknown edge kind {kind!r}"[:200],
            code="workflow.unknown_edge_kind",
            allowed=list(_EDGE_KINDS),
        )
    chk.string(edge, "source", path)
    chk.string(edge, "target", path)
    for key in ("source_port", "target_port", "condition", "transform"):
        chk.string(edge, key, path, nullable=True)
    chk.string(edge, "label", path)
    if "priority" in edge:
        p = edge["priority"]
        if isinstance(p, bool) or not isinstance(p, int) or not -(2**63) <= p < 2**63:
            chk.fail(f"{path}.priority", "priority must be a 64-bit integer")
    chk.json_object(edge, "metadata", path)


def _parse_ts(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


# --- reading ------------------------------------------------------------------------------------------


@cache
def json_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of documents of the current schema version."""
    text = (
        resources.files("symphony_workflow")
        .joinpath(f"schemas/workflow-{SCHEMA_VERSION}.schema.json")
        .read_text("utf-8")
    )
    return json.loads(text)  # type: ignore[no-any-return]


def _jsonschema_issues(doc: Any) -> list[Issue]:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(json_schema())
    validator = validator_cls(json_schema())
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append(Issue("workflow.document.schema", f"{err.message} at {path}"[:500], path=path))
    return out


def _raise(issues: list[Issue], what: str) -> None:
    if issues:
        _fail(issues, what)


def _fail(issues: list[Issue], what: str) -> NoReturn:
    from symphony_workflow._validation import ValidationReport

    ValidationReport(tuple(issues)).raise_for_errors(what=what)
    raise AssertionError("unreachable")  # pragma: no cover


@without_gc
def from_document(
    doc: Mapping[str, Any],
    *,
    types: TypeSystem = DEFAULT_TYPES,
    max_nodes: int = DEFAULT_MAX_NODES,
    migrations: MigrationRegistry = DEFAULT_MIGRATIONS,
    strict: bool = False,
) -> Workflow:
    """Build a :class:`Workflow` from a parsed document (see the module docstring).

    ``strict`` also validates against the published JSON Schema with ``jsonschema``.
    """
    return _from_document(doc, types=types, max_nodes=max_nodes, migrations=migrations, strict=strict)


def _from_document(
    doc: Mapping[str, Any],
    *,
    types: TypeSystem,
    max_nodes: int,
    migrations: MigrationRegistry = DEFAULT_MIGRATIONS,
    strict: bool,
    _shared_ports: bool = False,
) -> Workflow:
    if not isinstance(doc, Mapping):
        _fail(
            [Issue("workflow.document.invalid", f"expected an object, found {_jtype(doc)} at $", path="$")],
            "workflow document",
        )
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        if not isinstance(version, str):
            _fail(
                [
                    Issue(
                        "workflow.schema_version",
                        "missing or invalid schema_version at $.schema_version"
                        if "schema_version" not in doc
                        else f"schema_version must be a string, found {_jtype(version)} at $.schema_version",
                        path="$.schema_version",
                        details={"expected": SCHEMA_VERSION},
                    )
                ],
                "workflow document",
            )
        doc = migrations.migrate(doc, SCHEMA_VERSION)
    parts = None if strict else _fast_parts(doc, max_nodes, shared_ports=_shared_ports)
    if parts is None:
        parts = _slow_parts(doc, max_nodes, strict=strict)
    return _assemble(doc["workflow"], parts[0], parts[1], types)


def _slow_parts(
    doc: Mapping[str, Any], max_nodes: int, *, strict: bool = False
) -> tuple[list[Node], list[Edge]]:
    """Nodes and edges of a current-version document after the full structural check.

    Every problem is collected and raised in one :class:`WorkflowValidationError`.
    """
    chk = _Checker()
    chk.keys(doc, "$", _TOP_KEYS, ("schema_version", "workflow"))
    chk.string(doc, "symphony_version", "$")
    chk.string(doc, "$schema", "$")
    if "workflow" in doc:
        _check_body(doc["workflow"], chk, max_nodes)
    if strict and not chk.issues:
        chk.issues.extend(_jsonschema_issues(doc))
    _raise(chk.issues, "workflow document")
    body = doc["workflow"]
    nodes: list[Node] = []
    for i, nd in enumerate(body.get("nodes", ())):
        try:
            nodes.append(_build_node(nd))
        except ValidationError as exc:  # the checker mirrors the constructors; this is a safety net
            _fail(
                [Issue(exc.code, f"{exc.message} at $.workflow.nodes[{i}]", path=f"$.workflow.nodes[{i}]")],
                "workflow document",
            )
    edges: list[Edge] = []
    for j, ed in enumerate(body.get("edges", ())):
        try:
            edges.append(_build_edge(ed))
        except ValidationError as exc:
            _fail(
                [Issue(exc.code, f"{exc.message} at $.workflow.edges[{j}]", path=f"$.workflow.edges[{j}]")],
                "workflow document",
            )
    return nodes, edges


def _assemble(body: dict[str, Any], nodes: list[Node], edges: list[Edge], types: TypeSystem) -> Workflow:
    """The workflow from checked parts, after the graph-integrity check (once, for all nodes)."""
    report = check_parts(nodes, edges, types=types, integrity_only=True)
    report.raise_for_errors(what="workflow", codes=INTEGRITY_CODES)
    meta = body.get("metadata") or {}
    created = body.get("created")
    updated = body.get("updated")
    return Workflow._from_checked(
        nodes=nodes,
        edges=edges,
        types=types,
        name=body["name"],
        id=body["id"],
        version=body.get("version", "0.1.0"),
        description=body.get("description", ""),
        metadata=WorkflowMetadata(
            author=meta.get("author"),
            tags=tuple(meta.get("tags", ())),
            category=meta.get("category"),
            icon=meta.get("icon"),
            color=meta.get("color"),
            custom=meta.get("custom", {}),
        ),
        created=None if created is None else _parse_ts(created),
        updated=None if updated is None else _parse_ts(updated),
    )


# --- the fast path --------------------------------------------------------------------------------------
#
# One pass over the parsed document that checks each node and edge and builds it at once
# (trusted construction: no second round of attrs validators). It only ever *accepts*: at the
# first thing it is not certain about it returns ``None`` and the loader starts over on the
# slow path (the structural checker, then the constructors), which finds and words every
# problem. So a document loads on the fast path exactly when it would load on the slow one,
# and every error comes from the slow path. tests/plugins/workflow/test_wf_fastpath.py holds
# both paths and the JSON Schema to that.

_SCALARS = (str, bool, type(None))
_KNOWN_TYPE_NAMES: set[str] = set()
_EMPTY = _SHARED_EMPTY  # "absent" for config/metadata: the node or edge gets a fresh dict


def _json_ok(value: Any) -> bool:
    """True if ``value`` (a dict from a loader) is a JSON object; cheap for flat scalar dicts."""
    if type(value) is not dict:
        return False
    for k, v in value.items():
        t = type(v)
        if type(k) is not str:
            return False
        if t in _SCALARS:
            continue
        if t is int and -(2**63) <= v < 2**64:
            continue
        if t is float and v - v == 0.0:  # finite
            continue
        return json_problem(value) is None
    return True


_PORT_BY_ITEMS: dict[tuple[Any, ...], Port] = {}


def _fast_ports(ports: Any, shared: dict[int, Port] | None) -> tuple[Port, ...] | None:
    """Checked ports, or ``None``. ``shared`` maps ``id`` of port dicts that the caller keeps
    alive for the whole load (the binary reader shares identical port documents) to their port."""
    if type(ports) is not list:
        return None
    out = []
    for p in ports:
        if shared is not None:
            port = shared.get(id(p))
            if port is not None:
                out.append(port)
                continue
        if type(p) is not dict:
            return None
        try:
            port = _PORT_BY_ITEMS.get(tuple(p.items()))
        except TypeError:  # an unhashable value (a list or object default)
            port = None
        if port is not None and (
            # the items compare equal to a checked port's; rule out 1 == True == 1.0 look-alikes
            type(p.get("required", True)) is not bool
            or type(p.get("multiple", False)) is not bool
            or type(p.get("default")) is not type(port.default)
        ):
            if not _port_ok(p):
                return None
            port = _make_port(p)
        elif port is None:
            if not _port_ok(p):
                return None
            port = _build_port(p)
            if type(port.default) in _HASHABLE_DEFAULTS and len(_PORT_BY_ITEMS) < 4096:
                _PORT_BY_ITEMS[tuple(p.items())] = port
        if shared is not None:
            shared[id(p)] = port
        out.append(port)
    if len(out) > 1 and len({q.name for q in out}) != len(out):
        return None
    return tuple(out)


def _fast_node(d: Any, shared: dict[int, Port] | None = None) -> Node | None:
    if type(d) is not dict or not d.keys() <= _NODE_KEYS:
        return None
    nid = d.get("id")
    kind = d.get("kind")
    ntype = d.get("type")
    if type(nid) is not str or type(kind) is not str or type(ntype) is not str:
        return None
    if _IDENT.fullmatch(nid) is None or nid in KEYWORDS:
        return None
    k = _NODE_KINDS.get(kind)
    if k is None:
        return None
    if ntype not in _KNOWN_TYPE_NAMES:
        if not is_type_name(ntype):
            return None
        if len(_KNOWN_TYPE_NAMES) < 4096:
            _KNOWN_TYPE_NAMES.add(ntype)
    name = d.get("name", "")
    desc = d.get("description", "")
    version = d.get("version")
    enabled = d.get("enabled", True)
    if type(name) is not str or type(desc) is not str or type(enabled) is not bool:
        return None
    if version is not None and type(version) is not str:
        return None
    inputs = _fast_ports(d["inputs"], shared) if "inputs" in d else ()
    outputs = _fast_ports(d["outputs"], shared) if "outputs" in d else ()
    if inputs is None or outputs is None:
        return None
    config = d.get("config", _EMPTY)
    metadata = d.get("metadata", _EMPTY)
    if (config is not _EMPTY and not _json_ok(config)) or (metadata is not _EMPTY and not _json_ok(metadata)):
        return None
    position = d.get("position")
    if position is None:
        if "position" in d:
            return None
        pos = (0.0, 0.0)
    else:
        if type(position) is not list or len(position) != 2:
            return None
        x, y = position
        if type(x) not in (int, float) or type(y) not in (int, float):
            return None
        if (type(x) is int and not -(2**63) <= x < 2**64) or (type(y) is int and not -(2**63) <= y < 2**64):
            return None
        try:
            pos = (float(x), float(y))
        except OverflowError:
            return None
        if pos[0] - pos[0] != 0.0 or pos[1] - pos[1] != 0.0:
            return None
    policy = DEFAULT_POLICY
    if "policy" in d:
        pd = d["policy"]
        if type(pd) is not dict:
            return None
        fv = pd.get("fallback_value")
        if fv is not None and not _json_ok(fv):
            return None
        try:
            policy = policy_from_doc(pd)
        except ValidationError:
            return None
    return trusted_node(
        nid,
        k,
        ntype,
        name,
        desc,
        inputs,
        outputs,
        {} if config is _EMPTY else config,
        pos,
        enabled,
        {} if metadata is _EMPTY else metadata,
        version,
        policy,
    )


_INT64 = (-(2**63), 2**63)


_PLAIN_DATA_EDGE = frozenset({"source", "source_port", "target", "target_port"})
_DATA = EdgeKind.DATA


def _fast_edge(d: Any) -> Edge | None:
    if type(d) is not dict:
        return None
    if d.keys() == _PLAIN_DATA_EDGE:  # the common case: port to port, every other field default
        source = d["source"]
        target = d["target"]
        sp = d["source_port"]
        tp = d["target_port"]
        if type(source) is not str or type(target) is not str or type(sp) is not str or type(tp) is not str:
            return None
        auto = auto_edge_id(_DATA, source, target, sp, tp)
        return trusted_edge(_DATA, source, target, sp, tp, None, "", 0, None, {}, auto)
    if not d.keys() <= _EDGE_KEYS:
        return None
    kind = _EDGE_KINDS.get(d.get("kind", "data")) if type(d.get("kind", "data")) is str else None
    source = d.get("source")
    target = d.get("target")
    if kind is None or type(source) is not str or type(target) is not str:
        return None
    sp = d.get("source_port")
    tp = d.get("target_port")
    condition = d.get("condition")
    transform = d.get("transform")
    for v in (sp, tp, condition, transform):
        if v is not None and type(v) is not str:
            return None
    label = d.get("label", "")
    priority = d.get("priority", 0)
    if type(label) is not str or type(priority) is not int or not _INT64[0] <= priority < _INT64[1]:
        return None
    metadata = d.get("metadata", _EMPTY)
    if metadata is not _EMPTY and not _json_ok(metadata):
        return None
    eid = d.get("id")
    if eid is None:
        if "id" in d:
            return None
        eid = auto_edge_id(kind, source, target, sp, tp)
    elif type(eid) is not str or not eid:
        return None
    return trusted_edge(
        kind,
        source,
        target,
        sp,
        tp,
        condition,
        label,
        priority,
        transform,
        {} if metadata is _EMPTY else metadata,
        eid,
    )


def _fast_parts(
    doc: Mapping[str, Any], max_nodes: int, *, shared_ports: bool = False
) -> tuple[list[Node], list[Edge]] | None:
    """Checked nodes and edges of a current-version document, or ``None`` (use the slow path).

    ``shared_ports``: identical port documents are one object (the binary reader does that),
    so each is checked once.
    """
    if type(doc) is not dict or not doc.keys() <= _TOP_KEYS or "workflow" not in doc:
        return None
    for key in ("symphony_version", "$schema"):
        if key in doc and type(doc[key]) is not str:
            return None
    body = doc["workflow"]
    chk = _Checker()
    _check_body(body, chk, max_nodes, fields_only=True)
    if chk.issues:
        return None
    raw_nodes = body.get("nodes", [])
    raw_edges = body.get("edges", [])
    if len(raw_nodes) > max_nodes:
        return None
    shared: dict[int, Port] | None = {} if shared_ports else None
    nodes = [_fast_node(d, shared) for d in raw_nodes]
    if None in nodes:
        return None
    edges = [_fast_edge(d) for d in raw_edges]
    if None in edges:
        return None
    return nodes, edges  # type: ignore[return-value]


_PORT_CACHE: dict[tuple[Any, ...], Port] = {}
_HASHABLE_DEFAULTS = (type(None), str, int, bool)  # not float: -0.0 == 0.0 would merge


def _build_port(p: dict[str, Any]) -> Port:
    # Ports are immutable: identical declarations (common in large workflows) share one object.
    default = p.get("default")
    key = None
    if type(default) in _HASHABLE_DEFAULTS:
        key = (
            p["name"],
            p.get("type", "any"),
            p.get("required", True),
            type(default),
            default,
            p.get("multiple", False),
            p.get("description", ""),
        )
        hit = _PORT_CACHE.get(key)
        if hit is not None:
            return hit
    port = _make_port(p)
    if key is not None and len(_PORT_CACHE) < 4096:
        _PORT_CACHE[key] = port
    return port


def _make_port(p: dict[str, Any]) -> Port:
    return Port(
        p["name"],
        p.get("type", "any"),
        p.get("required", True),
        p.get("default"),
        p.get("multiple", False),
        p.get("description", ""),
    )


def _build_node(d: dict[str, Any]) -> Node:
    return Node(
        d["id"],
        _NODE_KINDS[d["kind"]],
        d["type"],
        d.get("name", ""),
        d.get("description", ""),
        tuple(_build_port(p) for p in d.get("inputs", ())),
        tuple(_build_port(p) for p in d.get("outputs", ())),
        _fresh(d.get("config", {})),
        d.get("position", (0.0, 0.0)),
        d.get("enabled", True),
        _fresh(d.get("metadata", {})),
        d.get("version"),
        policy_from_doc(d["policy"]) if "policy" in d else DEFAULT_POLICY,
    )


def _build_edge(d: dict[str, Any]) -> Edge:
    kind = _EDGE_KINDS[d.get("kind", "data")]
    sp = d.get("source_port")
    tp = d.get("target_port")
    eid = d.get("id")
    if eid is None:
        eid = auto_edge_id(kind, d["source"], d["target"], sp, tp)
    return Edge(
        kind,
        d["source"],
        d["target"],
        sp,
        tp,
        d.get("condition"),
        d.get("label", ""),
        d.get("priority", 0),
        d.get("transform"),
        _fresh(d.get("metadata", {})),
        eid,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@without_gc
def loads(
    text: str | bytes,
    *,
    types: TypeSystem = DEFAULT_TYPES,
    max_nodes: int = DEFAULT_MAX_NODES,
    migrations: MigrationRegistry = DEFAULT_MIGRATIONS,
    strict: bool = False,
) -> Workflow:
    """Parse JSON text (or any of the binary forms, detected by magic bytes) into a workflow."""
    if isinstance(text, bytes | bytearray | memoryview):
        raw = bytes(text)
        if detect_format(raw) != "json":
            return from_binary(raw, types=types, max_nodes=max_nodes, strict=strict)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            _fail(
                [
                    Issue(
                        "workflow.json.malformed",
                        f"document is not UTF-8 (byte {exc.start})",
                        details={"pos": exc.start},
                    )
                ],
                "workflow document",
            )
    if not isinstance(text, str):
        _fail(
            [Issue("workflow.json.malformed", f"expected JSON text, got {type(text).__name__}")],
            "workflow document",
        )
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        issue = Issue(
            "workflow.json.malformed",
            f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            path="$",
            column=exc.colno,
            details={"line": exc.lineno, "pos": exc.pos},
        )
        _fail([issue], "workflow document")
    except (ValueError, RecursionError) as exc:
        msg = "document is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        _fail([Issue("workflow.json.malformed", f"malformed JSON: {msg}", path="$")], "workflow document")
    return from_document(doc, types=types, max_nodes=max_nodes, migrations=migrations, strict=strict)


def load(
    source: str | Path | IO[str] | IO[bytes],
    *,
    types: TypeSystem = DEFAULT_TYPES,
    max_nodes: int = DEFAULT_MAX_NODES,
    migrations: MigrationRegistry = DEFAULT_MIGRATIONS,
    strict: bool = False,
) -> Workflow:
    """Read a workflow from a path or an open file (JSON or binary, detected). Errors name the file."""
    name: str | None = None
    if isinstance(source, str | Path):
        name = str(source)
        from symphony.commons.fs import read_bytes

        data: str | bytes = read_bytes(source)  # a regular file within the default size limit
    else:
        data = source.read()
        name = getattr(source, "name", None)
    try:
        return loads(data, types=types, max_nodes=max_nodes, migrations=migrations, strict=strict)
    except (ValidationError, SerializationError, FilesystemError) as exc:
        if name is not None:
            exc.context.setdefault("file", name)
        raise
