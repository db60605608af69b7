"""Serialization: JSON and binary round trips, bad input with locations, migrations, the JSON Schema."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import (
    ConflictError,
    NotFoundError,
    SerializationError,
    SymphonyError,
    ValidationError,
)
from symphony_workflow import Node, Workflow, WorkflowValidationError, dump, dumps, load, loads, to_binary
from symphony_workflow._serialization import (
    SCHEMA_VERSION,
    Migration,
    MigrationRegistry,
    detect_format,
    from_binary,
    from_document,
    json_schema,
    to_document,
)

from .conftest import EXAMPLE_FILES
from .workflow_strategies import fast_workflows, json_values, workflows

ROUND_TRIP = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflows())
def test_every_form_round_trips_shrinkable_cases(wf: Workflow) -> None:
    """The same properties over the Hypothesis-native strategy (fewer cases, real shrinking)."""
    _same(loads(dumps(wf)), wf)
    _same(loads(dumps(wf, indent=2)), wf)
    _same(from_binary(to_binary(wf)), wf)
    _same(from_binary(to_binary(wf, compress="zstd")), wf)


def _same(a: Workflow, b: Workflow) -> None:
    assert a == b
    assert list(a.nodes) == list(b.nodes) and list(a.edges) == list(b.edges)
    assert a.created == b.created and a.updated == b.updated


@ROUND_TRIP
@given(fast_workflows)
def test_json_round_trip_is_lossless(wf: Workflow) -> None:
    compact = dumps(wf)
    back = loads(compact)
    _same(back, wf)
    assert dumps(back) == compact
    _same(loads(dumps(wf, indent=2)), wf)


@ROUND_TRIP
@given(fast_workflows)
def test_binary_round_trip_is_lossless(wf: Workflow) -> None:
    raw = to_binary(wf)
    assert detect_format(raw) == "binary"
    _same(from_binary(raw), wf)
    packed = to_binary(wf, compress="zstd")
    assert detect_format(packed) == "binary+zstd"
    _same(loads(packed), wf)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_round_trip_and_binary_is_at_most_half_of_json(path: Path) -> None:
    wf = load(path)
    _same(loads(dumps(wf)), wf)
    _same(from_binary(to_binary(wf)), wf)
    assert len(to_binary(wf)) <= 0.5 * len(dumps(wf).encode())
    assert len(to_binary(wf, compress="zstd")) < len(to_binary(wf)) or len(wf.nodes) < 4


def test_binary_is_small_for_large_workflows() -> None:
    wf = Workflow("big")
    for i in range(300):
        wf.add_node(
            Node.operator(
                f"step_{i}",
                f"ops.kind{i % 7}",
                inputs={"data": "json"},
                outputs={"data": "json"},
                config={"retries": 3},
                position=(i * 10.0, 0.0),
            )
        )
        if i:
            wf.connect(f"step_{i - 1}", "data", f"step_{i}", "data")
    text = dumps(wf).encode()
    raw = to_binary(wf)
    assert len(raw) <= 0.5 * len(text)
    assert len(to_binary(wf, compress="zstd")) <= 0.7 * len(raw)


def test_documents_are_json_schema_valid() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in EXAMPLE_FILES:
        doc = json.loads(path.read_text())
        if doc["schema_version"] == SCHEMA_VERSION:
            validator.validate(doc)
        validator.validate(to_document(load(path)))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflows())
def test_generated_documents_pass_the_published_schema(wf: Workflow) -> None:
    jsonschema.Draft202012Validator(json_schema()).validate(json.loads(dumps(wf)))
    loads(dumps(wf), strict=True)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    wf = draw(workflows(max_nodes=5))
    doc = json.loads(dumps(wf))
    paths = _paths(doc)[1:]
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(paths))
        parent: Any = doc
        try:
            for key in target[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(target[-1], None)
            else:
                parent[target[-1]] = draw(
                    json_values | st.sampled_from(["data", "branch", "zz", "list[text]", "a.o > 1"])
                )
        except (KeyError, IndexError, TypeError):
            pass
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_documents())
def test_mutated_documents_load_or_raise_validation_errors(doc: dict[str, Any]) -> None:
    snapshot = copy.deepcopy(doc)
    schema_ok = not list(jsonschema.Draft202012Validator(json_schema()).iter_errors(doc))
    try:
        wf = from_document(doc)
    except ValidationError as err:
        assert (
            err.context.get("path")
            or err.context.get("edge")
            or err.context.get("node")
            or err.context.get("issues")
        )
    else:
        assert schema_ok, "the structural check must be at least as strict as the JSON Schema"
        _same(loads(dumps(wf)), wf)
    assert doc == snapshot  # loading never changes its input


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200), st.binary(max_size=200), st.binary(max_size=60).map(lambda b: b"SYWF\x01" + b)
    )
)
def test_decoders_fuzz_raise_only_symphony_errors(data: str | bytes) -> None:
    try:
        loads(data)
    except (ValidationError, SerializationError):
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflows(max_nodes=4), st.data())
def test_corrupted_binary_raises_only_validation_errors(wf: Workflow, data: st.DataObject) -> None:
    raw = bytearray(to_binary(wf))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(5, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        from_binary(bytes(raw))
    except ValidationError as err:
        assert "path" in err.context or "issues" in err.context


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(
        (Path(__file__).resolve().parent / "data/workflows/ticket-triage.json").read_text()
    )
    body = doc["workflow"]
    for key, value in changes.items():
        body[key] = value
    return doc


def _error(doc: Any) -> WorkflowValidationError:
    with pytest.raises(ValidationError) as info:
        from_document(doc) if not isinstance(doc, str) else loads(doc)
    return info.value  # type: ignore[return-value]


def test_malformed_json_names_line_and_column() -> None:
    err = _error('{"schema_version": "1.0",\n  "workflow": {,}}')
    assert err.code == "workflow.json.malformed"
    assert err.context["line"] == 2 and err.context["column"] == 16
    assert _error("[NaN]").code == "workflow.json.malformed"
    assert _error("[" * 100_000).code == "workflow.json.malformed"
    with pytest.raises(ValidationError):
        loads(b"\xff\xfe{}")


def test_wrong_schema_version_is_reported() -> None:
    doc = _doc()
    doc["schema_version"] = "7.0"
    err = _error(doc)
    assert err.code == "workflow.schema_version"
    assert err.context == {"path": "$.schema_version", "expected": SCHEMA_VERSION, "found": "7.0"}
    assert "upgrade" in (err.hint or "")
    del doc["schema_version"]
    assert _error(doc).context["path"] == "$.schema_version"


def test_unknown_node_kind_names_the_json_path() -> None:
    doc = _doc()
    doc["workflow"]["nodes"][2]["kind"] = "wizard"
    err = _error(doc)
    assert err.code == "workflow.unknown_node_kind"
    assert err.context["path"] == "$.workflow.nodes[2].kind"
    assert "instrument" in err.context["allowed"]


def test_type_mismatched_edge_names_the_edge() -> None:
    doc = _doc()
    doc["workflow"]["nodes"][1]["outputs"][0]["type"] = "number"  # classify.label becomes a number
    doc["workflow"]["edges"].append(
        {
            "source": "classify",
            "source_port": "label",
            "target": "link",
            "target_port": "value",
            "id": "mismatch",
        }
    )
    err = _error(doc)
    codes = [i["code"] for i in err.context["issues"]]
    assert "workflow.type_mismatch" in codes
    issue = next(i for i in err.context["issues"] if i["code"] == "workflow.type_mismatch")
    assert issue["edge"] == "mismatch" and issue["path"] == "$.workflow.edges[8]"
    assert issue["expected"] == "text" and issue["found"] == "number"


def test_cyclic_document_reports_the_cycle() -> None:
    doc = _doc()
    doc["workflow"]["edges"].append({"kind": "control", "source": "link", "target": "ticket"})
    err = _error(doc)
    assert err.code == "workflow.cycle"
    cycle = err.context["cycle"]
    assert cycle[0] == cycle[-1] and {"ticket", "link"} <= set(cycle)


def test_bad_expressions_are_reported_with_column() -> None:
    doc = _doc()
    doc["workflow"]["edges"][3]["condition"] = "classify.label == 'bug' and"
    err = _error(doc)
    assert err.code == "workflow.expression.syntax"
    assert err.context["edge"] == "is_bug" and err.context["column"] == 28
    assert err.context["path"] == "$.workflow.edges[3].condition"
    doc = _doc()
    doc["workflow"]["edges"][4]["condition"] = "classify.colour == 'red'"
    err = _error(doc)
    assert err.code == "workflow.expression.unknown_output"
    assert (
        err.context["node"] == "classify" and err.context["port"] == "colour" and err.context["column"] == 1
    )


def test_structural_problems_are_all_collected() -> None:
    doc = _doc(version="one", created="yesterday", extra=1)
    doc["workflow"]["nodes"][0]["id"] = "1bad"
    doc["workflow"]["nodes"][1]["position"] = [1]
    doc["workflow"]["edges"][0]["priority"] = True
    err = _error(doc)
    paths = {i["path"] for i in err.context["issues"]}
    assert paths >= {
        "$.workflow.version",
        "$.workflow.created",
        "$.workflow.extra",
        "$.workflow.nodes[0].id",
        "$.workflow.nodes[1].position",
        "$.workflow.edges[0].priority",
    }
    assert "(and" in err.message


def test_duplicate_ids_and_dangling_edges_in_documents() -> None:
    doc = _doc()
    doc["workflow"]["nodes"].append(dict(doc["workflow"]["nodes"][0]))
    doc["workflow"]["edges"].append(
        {"source": "ticket", "source_port": "value", "target": "ghost", "target_port": "x"}
    )
    err = _error(doc)
    codes = {i["code"]: i for i in err.context["issues"]}
    assert codes["workflow.duplicate_node_id"]["path"] == "$.workflow.nodes[7].id"
    assert codes["workflow.dangling_edge"]["path"] == "$.workflow.edges[8].target"


def test_limits_and_non_json_values() -> None:
    doc = _doc()
    with pytest.raises(ValidationError) as info:
        from_document(doc, max_nodes=3)
    assert info.value.code == "workflow.too_large"
    doc["workflow"]["nodes"][0]["config"] = {"n": 2**70}
    assert _error(doc).context["path"] == "$.workflow.nodes[0].config.n"
    assert _error(42).context["path"] == "$"
    wf = Workflow("x")
    wf.add_node(Node.operator("a", "op", config={"s": {1, 2}}))
    with pytest.raises(SerializationError):
        dumps(wf)
    with pytest.raises(SerializationError):
        to_binary(wf)
    with pytest.raises(ValidationError):
        to_binary(Workflow("y"), compress="lz4")


def test_zstd_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    wf = Workflow("z")
    packed = to_binary(wf, compress="zstd")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(SerializationError) as info:
        to_binary(wf, compress="zstd")
    assert info.value.code == "workflow.binary.zstd_unavailable"
    assert "symphony-workflow[zstd]" in (info.value.hint or "")
    with pytest.raises(SerializationError):
        from_binary(packed)
    assert from_binary(to_binary(wf)) == wf


def test_zstd_garbage_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        from_binary(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    assert info.value.code == "workflow.binary.malformed"
    with pytest.raises(ValidationError):
        from_binary(b"SYWF\x09")


def test_migrations_chain_and_a_failure_leaves_the_input_untouched() -> None:
    registry = MigrationRegistry()

    @registry.register("1.0", "1.1")
    def add_note(doc: dict[str, Any]) -> None:
        doc["workflow"]["description"] = doc["workflow"].get("description", "") + " [1.1]"

    @registry.register("1.1", "1.2")
    def rename(doc: dict[str, Any]) -> dict[str, Any]:
        doc["workflow"]["title"] = doc["workflow"].pop("name")
        return doc

    registry.add(Migration("1.2", "1.3", lambda d: 1 / 0))  # type: ignore[arg-type,return-value]
    original = _doc()
    snapshot = copy.deepcopy(original)
    migrated = registry.migrate(original, "1.2")
    assert migrated["schema_version"] == "1.2"
    assert migrated["workflow"]["title"] == "Ticket triage"
    assert migrated["workflow"]["description"].endswith(" [1.1]")
    assert original == snapshot
    assert [m.target for m in registry.path("1.0", "1.2")] == ["1.1", "1.2"]
    with pytest.raises(ValidationError) as info:
        registry.migrate(original, "1.3")
    assert info.value.code == "workflow.migration_failed"
    assert info.value.context["from"] == "1.2" and info.value.context["to"] == "1.3"
    assert original == snapshot
    with pytest.raises(ValidationError) as info:
        registry.path("1.0", "9.0")
    assert info.value.code == "workflow.schema_version"
    with pytest.raises(ConflictError):
        registry.add(Migration("1.0", "1.1", lambda d: d))
    assert registry.versions() == {"1.0", "1.1", "1.2", "1.3"}
    bad = MigrationRegistry([Migration("0.5", "1.0", lambda d: ["not", "a", "doc"])])  # type: ignore[arg-type,return-value]
    with pytest.raises(ValidationError):
        loads(json.dumps({"schema_version": "0.5", "workflow": {}}), migrations=bad)


def test_legacy_document_is_migrated_on_load(examples_dir: Path) -> None:
    raw = json.loads((examples_dir / "legacy-0.9.json").read_text())
    wf = load(examples_dir / "legacy-0.9.json")
    assert list(wf.nodes) == ["question", "answer"]
    assert wf.node("answer").position == (200.0, 0.0)
    assert to_document(wf)["schema_version"] == SCHEMA_VERSION
    assert raw == json.loads((examples_dir / "legacy-0.9.json").read_text())
    broken = copy.deepcopy(raw)
    broken["workflow"]["nodes"] = ["not", "a", "map"]
    with pytest.raises(ValidationError) as info:
        loads(json.dumps(broken))
    assert info.value.code == "workflow.migration_failed"


def test_dump_and_load_files(tmp_path: Path, triage: Workflow) -> None:
    target = tmp_path / "sub" / "flow.json"
    dump(triage, target)
    assert load(target) == triage
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValidationError) as info:
        load(tmp_path / "bad.json")
    assert info.value.context["file"] == str(tmp_path / "bad.json")
    with pytest.raises(NotFoundError):
        load(tmp_path / "missing.json")
    (tmp_path / "flow.swf").write_bytes(to_binary(triage))
    with (tmp_path / "flow.swf").open("rb") as fh:
        assert load(fh) == triage


def test_compact_json_leaves_defaults_out(report: Workflow) -> None:
    doc = to_document(report)
    node = doc["workflow"]["nodes"][0]
    assert "enabled" not in node and "inputs" not in node and "config" not in node
    edge = doc["workflow"]["edges"][0]
    assert set(edge) == {"source", "source_port", "target", "target_port"}


def test_every_decoder_error_is_a_symphony_error() -> None:
    for bad in (
        b"",
        b"SYWF",
        b"SYWF\x01\xc1",
        b"SYWF\x01" + b"\x94\xa3" + b"1.0",
        "null",
        "[]",
        '{"schema_version": 1}',
    ):
        with pytest.raises(SymphonyError):
            loads(bad)
