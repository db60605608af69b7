"""Issue 9: node types are checked by their ports — names, directions and types — from manifests
alone where possible, and a plugin's manifest and registered spec must agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.commons.errors import ConflictError, PluginError, SymphonyError
from symphony.plugins.manifest import parse_manifest
from symphony_sdk.testing import write_plugin_distribution
from symphony_workflow import NodeTypeRegistry, NodeTypeSpec, WorkflowBuilder, validate
from symphony_workflow._node_types import manifest_node_types

from .conftest import EXAMPLES
from .test_wf_cli import _env, _symphony

TEXT_REPORT = json.loads((EXAMPLES / "text-report.json").read_text())


def _registry() -> NodeTypeRegistry:
    reg = NodeTypeRegistry()
    reg.add(
        "text.count", kind="operator", inputs={"text": "text"}, outputs={"count": "integer"}, provider="p"
    )
    return reg


def _workflow(*, kind: str = "operator", inputs: dict[str, str], outputs: dict[str, str]) -> Any:
    b = WorkflowBuilder("w").input("doc", "text")
    add = b.operator if kind == "operator" else b.instrument
    add("n", "text.count", inputs=inputs, outputs=outputs)
    in_port = next(iter(inputs))
    b.connect("doc.value", f"n.{in_port}")
    out_port, out_type = next(iter(outputs.items()))
    b.output("result", out_type).connect_from(f"n.{out_port}")
    return b.build()


def _codes(report: Any) -> list[str]:
    return [i.code for i in report.errors]


def test_matching_ports_are_valid_and_widening_follows_the_type_rules() -> None:
    assert validate(
        _workflow(inputs={"text": "text"}, outputs={"count": "integer"}), node_types=_registry()
    ).valid
    # the type's integer output may be read as number or json by the node
    assert validate(
        _workflow(inputs={"text": "text"}, outputs={"count": "number"}), node_types=_registry()
    ).valid


def test_a_port_the_type_does_not_declare_is_an_error() -> None:
    report = validate(
        _workflow(inputs={"banana": "text"}, outputs={"count": "integer"}), node_types=_registry()
    )
    (issue,) = report.errors
    assert issue.code == "workflow.node_type.unknown_port"
    assert issue.port == "banana" and "text.count" in issue.message and "text" in issue.details["available"]


def test_a_port_on_the_wrong_side_is_an_error() -> None:
    wf = _workflow(inputs={"text": "text"}, outputs={"text": "text"})
    report = validate(wf, node_types=_registry())
    assert _codes(report) == ["workflow.node_type.port_direction"]
    assert report.errors[0].details == {"type": "text.count", "expected": "input", "found": "output"}


def test_an_incompatible_port_type_is_an_error_in_either_direction() -> None:
    out = validate(_workflow(inputs={"text": "text"}, outputs={"count": "text"}), node_types=_registry())
    assert _codes(out) == ["workflow.node_type.port_type"]
    assert out.errors[0].details["expected"] == "integer" and out.errors[0].details["found"] == "text"
    wide = _registry()
    wide.add("text.len", kind="operator", inputs={"text": "integer"}, provider="p")
    wf = _workflow(inputs={"text": "text"}, outputs={"count": "integer"})
    spec_map: dict[str, NodeTypeSpec | None] = {"text.count": wide.get("text.len")}
    assert "workflow.node_type.port_type" in _codes(validate(wf, node_types=spec_map))


def test_kind_must_match_and_name_only_types_skip_the_port_check() -> None:
    wf = _workflow(kind="instrument", inputs={"banana": "text"}, outputs={"count": "integer"})
    assert set(_codes(validate(wf, node_types=_registry()))) == {
        "workflow.node_type.kind",
        "workflow.node_type.unknown_port",
    }
    assert validate(wf, node_types={"text.count": None}).valid
    assert validate(wf, node_types={"text.count"}).valid


MANIFEST = {
    "plugin": {"id": "symphony-x", "version": "1", "kind": "operator", "api": ">=0.1,<0.2"},
    "contributes": {
        "node_types": {
            "x.ok": {
                "kind": "operator",
                "summary": "S",
                "inputs": {"a": "text"},
                "outputs": {"b": "list[json]"},
            },
            "x.typo": {"kind": "operator", "inptus": {"a": "text"}},
            "x.badtype": {"kind": "operator", "inputs": {"a": "strng"}},
            "x.nokind": {"inputs": {"a": "text"}},
        }
    },
}


def test_manifest_node_types_reads_good_entries_and_reports_each_bad_one() -> None:
    specs, problems = manifest_node_types(parse_manifest(MANIFEST, source="m.toml"))
    assert list(specs) == ["x.ok"]
    assert specs["x.ok"].outputs == {"b": "list[json]"} and specs["x.ok"].provider == "symphony-x"
    assert specs["x.ok"].source == "m.toml"
    by_type = {p.context["type"]: p for p in problems}
    assert set(by_type) == {"x.typo", "x.badtype", "x.nokind"}
    assert by_type["x.typo"].code == "node_types.unknown_field" and "inptus" in by_type["x.typo"].message
    assert (
        by_type["x.badtype"].code == "node_types.invalid_port_type"
        and "m.toml" in by_type["x.badtype"].message
    )
    assert by_type["x.nokind"].code == "node_types.invalid_kind"


# --- through real plugins ------------------------------------------------------------------------

_DECLARED = """
[plugin]
id = "symphony-probe"
version = "0.1.0"
kind = "operator"
api = ">=0.1,<0.2"
provides = ["node-type:probe.count"]
requires = ["symphony-workflow"]

[contributes.node_types."probe.count"]
kind = "operator"
inputs = { text = "text" }
outputs = { count = "integer" }
"""


def _probe_workflow(path: Path, *, in_port: str = "text", out_type: str = "integer") -> Path:
    doc = json.loads(json.dumps(TEXT_REPORT))
    stats = doc["workflow"]["nodes"][1]
    stats.update(type="probe.count", inputs=[{"name": in_port, "type": "text"}])
    stats["outputs"] = [{"name": "count", "type": out_type}]
    doc["workflow"]["nodes"][2]["inputs"] = [{"name": "value", "type": out_type}]
    doc["workflow"]["edges"] = [
        {"source": "document", "source_port": "value", "target": "stats", "target_port": in_port},
        {"source": "stats", "source_port": "count", "target": "report", "target_port": "value"},
    ]
    path.write_text(json.dumps(doc))
    return path


def test_validation_uses_the_manifest_alone_and_never_imports_the_plugin(tmp_path: Path) -> None:
    """The probe plugin's module raises on import: validation must not need it."""
    site = tmp_path / "site"
    write_plugin_distribution(
        site, "symphony-probe", manifest=_DECLARED, module_source="raise RuntimeError('imported')\n"
    )
    good = _probe_workflow(tmp_path / "good.json")
    bad = _probe_workflow(tmp_path / "bad.json", in_port="banana")
    script = textwrap.dedent(
        f"""
        import json, sys
        from symphony.kernel import Kernel
        kernel = Kernel.create(use_index=False, search_path=[{str(site)!r}],
                               plugins=["symphony_workflow.plugin"])
        service = kernel.service("workflow")
        out = {{name: sorted(i.code for i in service.validate(service.load(path)).errors)
               for name, path in (("good", {str(good)!r}), ("bad", {str(bad)!r}))}}
        out["imported"] = sorted(m for m in sys.modules if m.startswith("symphony_probe"))
        out["state"] = kernel.plugin("symphony-probe").state.value
        print(json.dumps(out))
        """
    )
    env = _env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "good": [],
        "bad": ["workflow.node_type.unknown_port"],
        "imported": [],
        "state": "discovered",
    }


def _rename_input(doc: dict[str, Any], name: str) -> None:
    doc["workflow"]["nodes"][1]["inputs"][0]["name"] = name
    doc["workflow"]["edges"][0]["target_port"] = name


def _retype_output(doc: dict[str, Any], port_type: str) -> None:
    doc["workflow"]["nodes"][1]["outputs"][0]["type"] = port_type
    doc["workflow"]["nodes"][2]["inputs"][0]["type"] = port_type


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda doc: _rename_input(doc, "banana"), "workflow.node_type.unknown_port"),
        (lambda doc: _rename_input(doc, "stats"), "workflow.node_type.port_direction"),
        (lambda doc: _retype_output(doc, "text"), "workflow.node_type.port_type"),
    ],
    ids=["wrong-name", "wrong-direction", "incompatible-type"],
)
def test_the_cli_fails_a_workflow_whose_ports_do_not_fit_textstats(
    tmp_path: Path, edit: Any, code: str
) -> None:
    doc = json.loads(json.dumps(TEXT_REPORT))
    edit(doc)
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [_symphony(), "workflow", "validate", "--strict", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(tmp_path),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert [e["code"] for e in result["errors"]] == [code]


def test_a_registration_that_differs_from_the_manifest_fails_the_plugin_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from symphony.kernel import Kernel

    site = tmp_path / "site"
    source = textwrap.dedent(
        """
        from symphony.hookspecs import hookimpl

        @hookimpl
        def symphony_register_node_types(registry):
            registry.add("probe.count", kind="operator", inputs={"text": "text"}, outputs={"count": "text"})
        """
    )
    pkg = write_plugin_distribution(site, "symphony-probe", manifest=_DECLARED, module_source=source)
    monkeypatch.syspath_prepend(str(site))
    try:
        kernel = Kernel.create(
            use_index=False,
            search_path=[str(site)],
            plugins=["symphony_workflow.plugin"],
            config_path=tmp_path / "u.toml",
        )
        with pytest.raises(PluginError) as info:
            kernel.activate_slot("node-type:probe.count")
        record = kernel.plugin("symphony-probe")
        assert record.state.value == "activate-failed"
        assert str(pkg / "symphony.toml") in record.reason and "symphony-probe" in record.reason
        assert "outputs {'count': 'integer'} vs {'count': 'text'}" in record.reason
        assert "symphony-probe" in info.value.message
    finally:
        for name in [m for m in sys.modules if m.startswith("symphony_probe")]:
            del sys.modules[name]


def test_registry_checks_against_the_declaration_it_is_given() -> None:
    declared = NodeTypeSpec("a.b", "operator", {"x": "text"}, {"y": "json"}, provider="p", source="p.toml")
    reg = NodeTypeRegistry(declared=lambda name, plugin: declared if (name, plugin) == ("a.b", "p") else None)
    reg.add(
        "a.b",
        kind="operator",
        inputs={"x": "text"},
        outputs={"y": "json"},
        summary="other words",
        provider="p",
    )
    with pytest.raises(ConflictError) as info:
        reg.add("a.b", kind="instrument", inputs={"x": "text"}, outputs={"y": "json"}, provider="p")
    assert info.value.code == "node_types.manifest_mismatch" and "p.toml" in info.value.message
    assert reg.add("c.d", kind="operator", provider="p").name == "c.d"  # nothing declared: accepted


def test_textstats_node_type_matches_its_operator() -> None:
    """The declared ports are the operator schemas' top-level properties, with fitting types,
    and what the operator returns fills exactly the declared outputs."""
    from symphony.plugins.manifest import load_manifest
    from symphony_textstats import TextStatsOperator

    manifest = load_manifest(Path(sys.modules["symphony_textstats"].__file__).with_name("symphony.toml"))  # type: ignore[arg-type]
    specs, problems = manifest_node_types(manifest)
    assert problems == []
    spec = specs["textstats.analyze"]
    json_to_port = {
        "string": "text",
        "integer": "integer",
        "number": "number",
        "boolean": "bool",
        "object": "json",
    }
    op = TextStatsOperator
    for ports, schema in ((spec.inputs, op.input_schema), (spec.outputs, op.output_schema)):
        props = schema["properties"]
        assert set(ports) == set(props)
        assert set(schema.get("required", ())) <= set(ports)
        for name, port_type in ports.items():
            assert json_to_port[props[name]["type"]] == port_type, name
    result = op().run({"text": "one two two"})
    assert set(result) == set(spec.outputs)
    assert result["stats"]["words"] == 3


_field_values = (
    st.text(max_size=12)
    | st.booleans()
    | st.lists(st.text(max_size=8), max_size=3)
    | st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True), st.text(max_size=12), max_size=3
    )
)
_fields = st.sampled_from(["kind", "summary", "inputs", "outputs", "extra"]) | st.from_regex(
    r"[a-z_]{1,6}", fullmatch=True
)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True),
        st.dictionaries(_fields, _field_values, max_size=5),
        max_size=3,
    )
)
def test_fuzz_manifest_node_types_reports_problems_and_never_raises(entries: dict[str, Any]) -> None:
    data = {"plugin": dict(MANIFEST["plugin"]), "contributes": {"node_types": entries}}
    specs, problems = manifest_node_types(parse_manifest(data, source="fuzz.toml"))
    assert set(specs) | {p.context["type"] for p in problems} == set(entries)
    # the published schema (the manifest reference shows it) says what the reader accepts
    schema = jsonschema.Draft202012Validator(NodeTypeRegistry.manifest_schema())
    for problem in problems:
        if problem.code != "node_types.invalid_port_type":
            assert not schema.is_valid(entries[problem.context["type"]]), problem.message
    for name in specs:
        assert schema.is_valid(entries[name]), entries[name]
    assert all(isinstance(p, SymphonyError) and "fuzz.toml" in p.message for p in problems)
    for spec in specs.values():
        assert spec.kind in ("instrument", "operator", "control", "input", "output")


def test_a_type_declared_by_name_only_is_checked_against_its_registered_spec_once_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from symphony.kernel import Kernel

    site = tmp_path / "site"
    name_only = _DECLARED.split("[contributes", 1)[0]
    source = textwrap.dedent(
        """
        from symphony.hookspecs import hookimpl

        @hookimpl
        def symphony_register_node_types(registry):
            registry.add("probe.count", kind="operator", inputs={"text": "text"}, outputs={"count": "integer"})
        """
    )
    write_plugin_distribution(site, "symphony-probe", manifest=name_only, module_source=source)
    monkeypatch.syspath_prepend(str(site))
    bad = _probe_workflow(tmp_path / "bad.json", in_port="banana")
    try:
        kernel = Kernel.create(
            use_index=False,
            search_path=[str(site)],
            plugins=["symphony_workflow.plugin"],
            config_path=tmp_path / "u.toml",
        )
        service = kernel.service("workflow")
        assert service.validate(service.load(bad)).valid  # known by name; ports not known yet
        kernel.activate_slot("node-type:probe.count")
        codes = [i.code for i in service.validate(service.load(bad)).errors]
        assert codes == ["workflow.node_type.unknown_port"]
    finally:
        for name in [m for m in sys.modules if m.startswith("symphony_probe")]:
            del sys.modules[name]


def test_plugins_inspect_lists_the_declared_node_types(tmp_path: Path) -> None:
    proc = subprocess.run(
        [_symphony(), "plugins", "inspect", "textstats", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["contributes"] == {"node_types": ["textstats.analyze"]}
