"""Every other decoder and parser of the package, fuzzed: bad input raises a SymphonyError, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import SymphonyError
from symphony_workflow import ExecutionEvent, Template
from symphony_workflow._audit import AuditEntry, AuditLog
from symphony_workflow._execution import command_from_dict
from symphony_workflow._templates import load_template
from symphony_workflow._types import DEFAULT_TYPES
from symphony_workflow._versioning import SemVer, VersionConstraint

from .workflow_strategies import json_values

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
VERSIONISH = st.text(alphabet="0123456789.^~<>=!|, *xv-+abrc", max_size=25)


@FUZZ
@given(VERSIONISH)
def test_versions_and_constraints(text: str) -> None:
    for parse in (SemVer.parse, VersionConstraint.parse):
        try:
            parse(text)
        except SymphonyError:
            pass


@FUZZ
@given(st.text(alphabet="listany[]textnumberjso ,", max_size=30) | st.text(max_size=10))
def test_port_types(text: str) -> None:
    try:
        DEFAULT_TYPES.normalize(text)
    except SymphonyError:
        pass


TEMPLATE_KEYS = st.sampled_from(
    ["schema_version", "id", "name", "version", "workflow", "parameters", "tags", "description", "examples"]
)
PARAM = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b", "1x"]) | json_values,
        "type": st.sampled_from(["string", "enum", "array"]),
    },
    optional={
        "default": json_values,
        "constraints": st.dictionaries(
            st.sampled_from(["min_length", "maximum", "pattern", "choices", "items", "validator"]),
            json_values,
            max_size=3,
        ),
    },
)


@FUZZ
@given(
    st.dictionaries(TEMPLATE_KEYS, json_values, max_size=6),
    st.lists(PARAM, max_size=3),
    st.dictionaries(
        st.sampled_from(["name", "nodes", "edges"]), json_values | st.just("{{ a }}"), max_size=3
    ),
)
def test_template_documents(raw: dict[str, Any], params: list[Any], body: dict[str, Any]) -> None:
    doc = {"schema_version": "1.0", "id": "t", "name": "T", "version": "1.0.0", "workflow": body, **raw}
    if "parameters" not in raw:
        doc["parameters"] = params
    try:
        template = Template.from_dict(doc)
    except SymphonyError:
        return
    try:
        template.instantiate({p.name: p.default for p in template.parameters if p.default is not None})
    except SymphonyError:
        pass


@FUZZ
@given(st.text(max_size=80))
def test_template_files(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("tpl")) / "t.json"
    path.write_text(text, "utf-8")
    try:
        load_template(path)
    except SymphonyError:
        pass


@FUZZ
@given(
    json_values
    | st.dictionaries(st.sampled_from(["command", "node_id", "reason", "value", "x"]), json_values)
)
def test_commands(data: Any) -> None:
    if isinstance(data, dict) and "command" not in data:
        data["command"] = "skip_node"
    try:
        command_from_dict(data)
    except SymphonyError:
        pass


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "kind",
                "execution_id",
                "workflow_id",
                "seq",
                "at",
                "node_id",
                "data",
                "actor",
                "id",
                "type",
                "details",
            ]
        ),
        json_values | st.sampled_from(["2026-01-01T00:00:00Z", "started", "2026-13-01"]),
        max_size=11,
    )
)
def test_events_and_audit_entries(data: dict[str, Any]) -> None:
    for decode in (ExecutionEvent.from_dict, AuditEntry.from_dict):
        try:
            decode(data)
        except SymphonyError:
            pass
    for text in (json.dumps([data]), "id,execution_id\n" + ",".join(map(str, data.values()))):
        for importer in (AuditLog.import_json, AuditLog.import_csv):
            try:
                importer(text)
            except SymphonyError:
                pass
