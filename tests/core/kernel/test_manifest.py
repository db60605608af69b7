from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import NotFoundError, PluginError, SymphonyError
from symphony.plugins.manifest import KINDS, MANIFEST_SCHEMA, Manifest, load_manifest, parse_manifest

GOOD = """
[plugin]
id = "symphony-demo"
version = "1.2.3"
kind = "operator"
api = ">=0.1,<0.2"
summary = "demo"
provides = ["service:demo", "node-type:demo.run"]
requires = ["symphony-base"]
after = ["symphony-other"]
activation = ["on-startup"]
permissions = ["fs:read"]
commands = ["demo", { name = "demo-admin", summary = "admin" }]
config_section = "demo"

[config_schema]
type = "object"
properties.level = { type = "integer", default = 3 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "symphony.toml"
    path.write_text(text)
    return path


def test_good_manifest_parses_every_field(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    assert m.id == "symphony-demo"
    assert m.kind == "operator"
    assert m.activation == "on-startup"
    assert m.services() == ["demo"]
    assert [c.name for c in m.commands] == ["demo", "demo-admin"]
    assert m.commands[1].summary == "admin"
    assert m.config_section == "demo"
    assert m.config_schema is not None and m.config_schema["properties"]["level"]["default"] == 3


def test_manifest_round_trips_through_to_dict(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    again = parse_manifest(m.to_dict())
    assert again == m
    assert again.config_schema == m.config_schema


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (GOOD.replace('kind = "operator"', 'kind = "gizmo"'), "plugin.kind", "unknown kind 'gizmo'"),
        (GOOD.replace('version = "1.2.3"\n', ""), "plugin", "'version' is a required property"),
        (GOOD.replace('api = ">=0.1,<0.2"', 'api = "banana"'), "plugin.api", "is not a 'version-range'"),
        (GOOD.replace('id = "symphony-demo"', 'id = "Bad Id"'), "plugin.id", "does not match"),
        (GOOD.replace('"service:demo"', '"no-colon"'), "plugin.provides[0]", "does not match"),
        (GOOD + "\n[extra]\nx = 1\n", "(top level)", "Additional properties"),
        (
            GOOD.replace('config_section = "demo"\n', ""),
            "plugin",
            "'config_section' is a required property",
        ),
    ],
)
def test_bad_manifest_names_file_key_and_rule(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PluginError) as info:
        load_manifest(path)
    err = info.value
    assert err.code == "plugin.bad_manifest"
    assert err.context["file"] == str(path)
    assert words in err.message
    if "key" in err.context:
        assert err.context["key"] == key


def test_toml_syntax_error_is_a_plugin_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as info:
        load_manifest(write(tmp_path, "[plugin\nid = 1"))
    assert info.value.context["rule"] == "toml-syntax"


def test_missing_manifest_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_manifest(tmp_path / "nope.toml")


def test_schema_lists_every_kind() -> None:
    assert MANIFEST_SCHEMA["properties"]["plugin"]["properties"]["kind"]["enum"] == list(KINDS)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_fuzz_manifest_text_only_raises_symphony_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        m = load_manifest(path)
    except SymphonyError:
        return
    assert isinstance(m, Manifest)


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["plugin", "config_schema", "x"]),
        st.dictionaries(
            st.sampled_from(
                ["id", "version", "kind", "api", "provides", "requires", "commands", "activation", "type"]
            ),
            toml_values,
        ),
    )
)
def test_fuzz_manifest_mappings_only_raise_plugin_errors(data: dict) -> None:
    try:
        parse_manifest(data, source="fuzz")
    except PluginError:
        pass


CONTRIBUTES = """
[plugin]
id = "symphony-demo"
version = "1.0.0"
kind = "operator"
api = ">=0.1,<0.2"

[contributes.node_types."demo.run"]
kind = "operator"
inputs = { text = "text" }
tags = ["a", "b"]
pure = true

[contributes.other_point.thing]
anything = "the kernel does not interpret it"
"""


def test_contributes_tables_are_kept_and_round_trip(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, CONTRIBUTES))
    assert m.contributions("node_types")["demo.run"]["inputs"] == {"text": "text"}
    assert m.contributions("other_point") == {"thing": {"anything": "the kernel does not interpret it"}}
    assert m.contributions("missing") == {}
    again = parse_manifest(m.to_dict(), trusted=True)
    assert again.contributes == m.contributes
    assert "contributes" not in load_manifest(write(tmp_path, GOOD)).to_dict()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('[contributes]\nnode_types = "flat"', "contributes.node_types"),
        ('[contributes.node_types]\n"demo.run" = 3', "contributes.node_types.demo.run"),
        ('[contributes.node_types."demo.run"]\nkind = 3', "contributes.node_types.demo.run.kind"),
        (
            '[contributes.node_types."demo.run"]\ninputs = { text = 1 }',
            "contributes.node_types.demo.run.inputs",
        ),
        (
            '[contributes.node_types."demo.run".inputs.deep]\nx = "text"',
            "contributes.node_types.demo.run.inputs",
        ),
        ('[contributes.Bad-Point.x]\ny = "z"', "contributes"),
        ('[contributes.node_types."has space"]\ny = "z"', "contributes.node_types"),
    ],
)
def test_contributes_shape_is_checked_by_the_kernel(tmp_path: Path, table: str, key: str) -> None:
    head = CONTRIBUTES.split("[contributes", 1)[0]
    with pytest.raises(PluginError) as info:
        load_manifest(write(tmp_path, head + table + "\n"))
    assert info.value.code == "plugin.bad_manifest"
    assert info.value.context["key"] == key, info.value.message


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.text(max_size=12), st.dictionaries(st.text(max_size=12), toml_values, max_size=3), max_size=3
    )
)
def test_fuzz_contributes_only_raises_plugin_errors(contributes: dict) -> None:
    data = {
        "plugin": {"id": "symphony-x", "version": "1", "kind": "operator", "api": ">=0.1"},
        "contributes": contributes,
    }
    try:
        m = parse_manifest(data, source="fuzz")
    except PluginError:
        return
    assert m.to_dict().get("contributes", {}) == contributes
