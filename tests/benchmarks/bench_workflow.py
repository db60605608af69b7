"""Workflow model benchmarks (symphony-workflow), each figure beside its anchor in the same run.

- validation of a 10,000-node workflow (target < 50 ms) beside graphlib's topological drain of
  the same graph (graphlib only orders; validation also checks ids, ports, types, conditions,
  inputs, node types with their ports, and reachability);
- JSON and binary encode/decode of 100- and 10,000-node workflows beside stdlib json /
  msgpack on the same document dict, and the binary/JSON size ratio (target <= 0.5);
- loading a 10,000-node workflow (issue 12: target <= 3x the plain parse of the same bytes):
  ``loads`` of the JSON text beside ``json.loads`` of that text, ``from_binary`` beside
  ``msgpack.unpackb`` of the very same payload (and, for reference, of the dict form);
- template search over 1,000 templates (target < 10 ms p95) beside a linear substring scan.

Run: ``.venv/bin/python tests/benchmarks/bench_workflow.py`` (JSON lines on stdout).
"""

from __future__ import annotations

import gc
import graphlib
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, median, percentile

from symphony_workflow import NodeTypeSpec, Template, TemplateLibrary, dumps, loads, to_binary, validate
from symphony_workflow._serialization import SCHEMA_VERSION, from_binary, from_document, to_document

NODE_TYPES = {f"ops.kind{i}" for i in range(20)} | {"llm.generate", "llm.classify"}
NODE_SPECS: dict[str, NodeTypeSpec | None] = {
    name: NodeTypeSpec(
        name,
        "instrument" if name.startswith("llm.") else "operator",
        {"text": "text", "extra": "json"},
        {"out": "text", "score": "number"},
    )
    for name in NODE_TYPES
}
"""The same types with their specs, as the ``workflow`` service builds them from manifests:
validation then also checks every node's ports against its type."""


def workflow_document(n: int, seed: int = 7) -> dict[str, Any]:
    """A realistic layered DAG: typed ports, ~1.6 data edges per node, 1% conditional edges."""
    rnd = random.Random(seed)
    nodes: list[dict[str, Any]] = [
        {"id": "n0", "kind": "input", "type": "input", "outputs": [{"name": "value", "type": "text"}]}
    ]
    edges: list[dict[str, Any]] = []
    for i in range(1, n):
        kind = "instrument" if i % 10 == 0 else "operator"
        node_type = (
            ("llm.generate" if i % 20 == 0 else "llm.classify")
            if kind == "instrument"
            else f"ops.kind{i % 20}"
        )
        nodes.append(
            {
                "id": f"n{i}",
                "kind": kind,
                "type": node_type,
                "name": f"Step {i}",
                "inputs": [
                    {"name": "text", "type": "text"},
                    {"name": "extra", "type": "json", "required": False},
                ],
                "outputs": [{"name": "out", "type": "text"}, {"name": "score", "type": "number"}],
                "config": {"retries": i % 3},
                "position": [float(i % 100) * 120.0, float(i // 100) * 80.0],
            }
        )
        j = rnd.randrange(max(0, i - 40), i)
        edges.append(
            {
                "source": f"n{j}",
                "source_port": "value" if j == 0 else "out",
                "target": f"n{i}",
                "target_port": "text",
            }
        )
        if i > 2 and rnd.random() < 0.6:
            k = rnd.randrange(max(1, i - 40), i)
            edges.append(
                {"source": f"n{k}", "source_port": "score", "target": f"n{i}", "target_port": "extra"}
            )
        if i > 2 and rnd.random() < 0.01:
            k = rnd.randrange(max(1, i - 40), i)
            edges.append(
                {
                    "id": f"when{i}",
                    "kind": "conditional",
                    "source": f"n{k}",
                    "target": f"n{i}",
                    "condition": f"n{k}.score > 0.5 and n{k}.out != ''",
                }
            )
    return {
        "schema_version": SCHEMA_VERSION,
        "workflow": {
            "id": str(uuid.UUID(int=seed, version=4)),
            "name": f"benchmark-{n}",
            "version": "1.0.0",
            "created": "2026-01-01T00:00:00.000000Z",
            "updated": "2026-01-01T00:00:00.000000Z",
            "nodes": nodes,
            "edges": edges,
        },
    }


def timed(fn: Any, repeat: int, *, collect: bool = False) -> list[float]:
    """``repeat`` wall-clock samples of ``fn()``. With ``collect``, each starts from a fully
    collected heap, so no garbage-collector debt left by the previous sample (ours or the
    anchor's: each builds and drops a graph of ~10^5 objects) lands in this one."""
    samples = []
    for _ in range(repeat):
        if collect:
            gc.collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def bench_validation() -> None:
    wf = from_document(workflow_document(10_000))
    preds: dict[str, set[str]] = {nid: set() for nid in wf.nodes}
    for edge in wf.edges.values():
        preds[edge.target].add(edge.source)

    def drain() -> None:
        ts = graphlib.TopologicalSorter(preds)
        ts.prepare()
        while ts.is_active():
            ready = ts.get_ready()
            ts.done(*ready)

    report = validate(wf, node_types=NODE_SPECS)
    assert report.valid, report.errors[:3]
    validate(wf, node_types=NODE_SPECS)
    ours, anchor = [], []
    for _ in range(15):  # interleaved so both see the same machine noise
        ours.extend(timed(lambda: validate(wf, node_types=NODE_SPECS), 1))
        anchor.extend(timed(drain, 1))
    emit(
        "workflow.validate.10k_nodes",
        median(ours) * 1e3,
        "ms",
        baseline="graphlib.TopologicalSorter drain (same graph)",
        baseline_value=median(anchor) * 1e3,
        target="< 50 ms",
        check=lambda v, r: v < 50,
        nodes=len(wf.nodes),
        edges=len(wf.edges),
        best_ms=round(min(ours) * 1e3, 3),
        p95_ms=round(percentile(ours, 95) * 1e3, 3),
    )


def bench_serialization(n: int) -> None:
    doc = workflow_document(n)
    wf = from_document(doc)
    canonical = to_document(wf)
    text = dumps(wf)
    raw = to_binary(wf)
    packed = to_binary(wf, compress="zstd")
    plain_json = json.dumps(canonical, ensure_ascii=False, separators=(",", ":")).encode()
    plain_msgpack = msgpack.packb(canonical, use_bin_type=True)
    repeat = 25 if n <= 1000 else 5

    def pair(name: str, ours_fn: Any, base_fn: Any, baseline: str) -> None:
        ours_fn()
        base_fn()
        ours, base = [], []
        for _ in range(repeat):
            ours.extend(timed(ours_fn, 1, collect=True))
            base.extend(timed(base_fn, 1, collect=True))
        emit(name, median(ours) * 1e3, "ms", baseline=baseline, baseline_value=median(base) * 1e3, nodes=n)

    pair(
        f"workflow.json.encode.{n}",
        lambda: dumps(wf),
        lambda: json.dumps(canonical, separators=(",", ":")),
        "json.dumps of the same document dict",
    )
    pair(
        f"workflow.json.decode.{n}",
        lambda: loads(text),
        lambda: json.loads(text),
        "json.loads of the same text (no model, no checks)",
    )
    pair(
        f"workflow.binary.encode.{n}",
        lambda: to_binary(wf),
        lambda: msgpack.packb(canonical, use_bin_type=True),
        "msgpack.packb of the same document dict",
    )
    pair(
        f"workflow.binary.decode.{n}",
        lambda: from_binary(raw),
        lambda: msgpack.unpackb(plain_msgpack),
        "msgpack.unpackb of the dict form (no model, no checks)",
    )
    emit(
        f"workflow.binary.size_ratio.{n}",
        len(raw) / len(text.encode()),
        "ratio",
        baseline="compact JSON bytes (=1.0)",
        baseline_value=1.0,
        target="<= 0.5",
        check=lambda v, r: v <= 0.5,
        binary_bytes=len(raw),
        json_bytes=len(text.encode()),
        zstd_bytes=len(packed),
        msgpack_dict_bytes=len(plain_msgpack),
        plain_json_bytes=len(plain_json),
    )
    emit(
        f"workflow.binary_zstd.size_ratio.{n}",
        len(packed) / len(raw),
        "ratio",
        baseline="uncompressed binary bytes (=1.0)",
        baseline_value=1.0,
        target="<= 0.7",
        check=lambda v, r: v <= 0.7,
    )


def bench_loading(n: int = 10_000) -> None:
    """Load figures with every check on: ours beside the bare parse of the same bytes."""
    wf = from_document(workflow_document(n))
    text = dumps(wf)
    raw = to_binary(wf)
    payload = raw[5:]  # after the SYWF magic and format byte: plain MessagePack
    dict_form = msgpack.packb(to_document(wf), use_bin_type=True)
    assert loads(text) == wf and from_binary(raw) == wf
    cases = [
        (
            "workflow.load_json_10k",
            lambda: loads(text),
            lambda: json.loads(text),
            "json.loads of the same text",
        ),
        (
            "workflow.load_binary_10k",
            lambda: from_binary(raw),
            lambda: msgpack.unpackb(payload),
            "msgpack.unpackb of the same bytes (the positional payload)",
        ),
    ]
    for name, ours_fn, base_fn, baseline in cases:
        ours_fn()
        base_fn()
        ours, base, dict_base = [], [], []
        for _ in range(7):  # interleaved so both see the same machine noise
            ours.extend(timed(ours_fn, 1, collect=True))
            base.extend(timed(base_fn, 1, collect=True))
            if name.startswith("workflow.load_binary"):
                dict_base.extend(timed(lambda: msgpack.unpackb(dict_form), 1, collect=True))
        extra: dict[str, Any] = {}
        if dict_base:
            extra["ratio_to_dict_form_unpackb"] = round(median(ours) / median(dict_base), 3)
            extra["dict_form_unpackb_ms"] = round(median(dict_base) * 1e3, 3)
        emit(
            name,
            median(ours) * 1e3,
            "ms",
            baseline=baseline,
            baseline_value=median(base) * 1e3,
            target="<= 3x the plain parse",
            check=lambda v, r: r is not None and r <= 3,
            nodes=len(wf.nodes),
            edges=len(wf.edges),
            best_ms=round(min(ours) * 1e3, 3),
            **extra,
        )


WORDS = (
    "summarize classify route embed index translate extract report review triage search answer chat vision "
    "audio transcribe caption code refactor test lint document format table chart email invoice contract"
).split()


def bench_template_search() -> None:
    rnd = random.Random(3)
    templates = []
    for i in range(1000):
        words = rnd.sample(WORDS, 4)
        templates.append(
            Template.from_dict(
                {
                    "schema_version": "1.0",
                    "id": f"tpl-{i:04d}-{words[0]}",
                    "name": f"{words[0].title()} {words[1]} {i}",
                    "version": f"1.{i % 5}.0",
                    "description": f"Use {words[2]} and {words[3]} to {words[1]} documents quickly",
                    "tags": rnd.sample(WORDS, 3),
                    "category": rnd.choice(["text", "vision", "code", "office"]),
                    "workflow": {"nodes": [{"id": "i", "kind": "input", "type": "input"}]},
                }
            )
        )
    library = TemplateLibrary(templates)
    queries = [
        "summarize",
        "class",
        "embed index",
        "report chart",
        "code lint test",
        "invoice",
        "tr",
        "email docs",
    ]
    for q in queries:
        library.search(q)

    def scan(query: str) -> list[Template]:
        words = query.lower().split()
        hits = [
            t
            for t in templates
            if all(w in f"{t.id} {t.name} {' '.join(t.tags)} {t.description}".lower() for w in words)
        ]
        return hits[:20]

    ours = [s for q in queries for s in timed(lambda q=q: library.search(q), 25)]
    base = [s for q in queries for s in timed(lambda q=q: scan(q), 25)]
    emit(
        "workflow.template.search.1000",
        percentile(ours, 95) * 1e3,
        "ms",
        baseline="linear substring scan over the same templates (p95)",
        baseline_value=percentile(base, 95) * 1e3,
        target="< 10 ms p95",
        check=lambda v, r: v < 10,
        median_ms=round(median(ours) * 1e3, 4),
        templates=len(library),
    )


def main() -> None:
    log("workflow: validation of 10,000 nodes")
    bench_validation()
    log("workflow: loading 10,000 nodes (JSON, binary)")
    bench_loading()
    for n in (100, 10_000):
        log(f"workflow: serialization of {n} nodes")
        bench_serialization(n)
    log("workflow: template search over 1,000 templates")
    bench_template_search()


if __name__ == "__main__":
    main()
