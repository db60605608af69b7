"""The CLI's one text helper and the manifest checker, fuzzed: outside text never reaches the
terminal as control characters, and a manifest of any shape yields PluginErrors, nothing else."""

from __future__ import annotations

import unicodedata
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.cli import plain
from symphony.commons.errors import PluginError
from symphony.plugins.manifest import manifest_problems, parse_manifest


@given(st.text())
def test_plain_leaves_no_control_character(text: str) -> None:
    out = plain(text)
    assert not any(unicodedata.category(ch) == "Cc" for ch in out)
    assert "\u202e" not in out and "\u2066" not in out  # no bidi overrides either
    kept = plain(text, newlines=True)
    assert kept.count("\n") == text.count("\n")
    assert all(unicodedata.category(ch) != "Cc" for ch in kept.replace("\n", ""))


def test_plain_escapes_visibly_and_keeps_markup_as_text() -> None:
    assert plain("a\x1b[2Jb\tc\x07") == "a\\x1b[2Jb\\tc\\x07"
    assert plain("fake-n[/x] [bold]x[/bold]") == "fake-n[/x] [bold]x[/bold]"
    assert plain(None) == ""


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
plugin_tables = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
        "version": json_values,
        "kind": json_values | st.sampled_from(["service", "operator", "gizmo"]),
        "api": json_values | st.sampled_from([">=0.1,<0.2", "nope", ">=3"]),
        "provides": json_values,
        "commands": json_values,
        "config_section": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional={"plugin": plugin_tables | json_values, "config_schema": json_values}))
def test_any_manifest_yields_plugin_errors_and_nothing_else(data: dict[str, Any]) -> None:
    problems = manifest_problems(data, source="fuzz.toml")
    assert all(isinstance(p, PluginError) and p.code == "plugin.bad_manifest" for p in problems)
    try:
        parse_manifest(data, source="fuzz.toml")
    except PluginError as exc:
        assert problems and exc.context["errors"] == len(problems)
    else:
        assert not problems
