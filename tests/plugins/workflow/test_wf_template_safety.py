"""Template parameters cannot rewrite conditions, hang on patterns, or crash on deep values.

Issue 10, item 9 (workflow parts): values fill conditions as literals, never as expression
source; parameter ``pattern``s match in linear time (RE2) and unsupported syntax is a template
error; deeply nested ``--params-file`` / ``-p`` / ``--set`` values are clear errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import SymphonyError, ValidationError
from symphony_workflow import Template
from symphony_workflow._cli import workflow
from symphony_workflow._templates import Constraints, Parameter, ParamType

from .test_wf_cli import _symphony

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

CONDITIONS = {
    "code": "a.value == {{ label }}",
    "single": "a.value == '{{ label }}'",
    "double": 'a.value == "<{{ label | upper }}>"',
    "number": "a.n - {{ n }} == 0 and {{ n }} == a.n",
    "list": "a.items == {{ items }}",
    "adjacent": "{{ label }}=={{ label }}and a.value=={{ label }}",
    "expression": "{{ cond }} and false",
}


def _template(conditions: dict[str, str] = CONDITIONS, *, pattern: str | None = None) -> Template:
    params: list[dict[str, Any]] = [
        {"name": "label", "type": "string", "required": False},
        {"name": "n", "type": "number", "required": False},
        {"name": "items", "type": "array", "required": False},
        {"name": "cond", "type": "expression", "required": False},
    ]
    if pattern is not None:
        params.append(
            {"name": "code", "type": "string", "required": False, "constraints": {"pattern": pattern}}
        )
    outputs = [{"name": name, "type": "any"} for name in ("value", "n", "items")]
    nodes: list[dict[str, Any]] = [
        {"id": "a", "kind": "input", "type": "input", "outputs": outputs},
        {
            "id": "r",
            "kind": "control",
            "type": "branch",
            "inputs": [{"name": "in", "required": False}],
            "outputs": [{"name": "out"}],
        },
    ]
    edges: list[dict[str, Any]] = [
        {"source": "a", "source_port": "value", "target": "r", "target_port": "in"}
    ]
    for key, condition in conditions.items():
        nodes.append({"id": f"o_{key}", "kind": "output", "type": "output", "inputs": [{"name": "value"}]})
        edges.append(
            {
                "id": key,
                "kind": "conditional",
                "source": "r",
                "source_port": "out",
                "target": f"o_{key}",
                "target_port": "value",
                "condition": condition,
            }
        )
    return Template.from_dict(
        {
            "schema_version": "1.0",
            "id": "safety",
            "name": "Safety",
            "version": "1.0.0",
            "parameters": params,
            "workflow": {"name": "safety", "nodes": nodes, "edges": edges},
        }
    )


def _holds(template: Template, values: dict[str, Any], edge: str, outputs: dict[str, Any]) -> bool:
    wf = template.instantiate(values, node_types=set()).workflow
    expression = wf.edge(edge).expression
    assert expression is not None
    return expression.test({"a": outputs})


def test_the_reported_injection_no_longer_makes_a_condition_always_true() -> None:
    t = _template()
    hostile = "x' or true or 'y"
    assert _holds(t, {"label": hostile}, "single", {"value": "something else"}) is False
    assert _holds(t, {"label": hostile}, "single", {"value": hostile}) is True
    assert _holds(t, {"label": "true or true"}, "code", {"value": "something else"}) is False
    assert _holds(t, {"label": "true or true"}, "code", {"value": "true or true"}) is True


def test_an_expression_parameter_stays_one_sub_expression() -> None:
    # unparenthesised, "a.value == 'x' or true and false" would hold for a.value == 'x'.
    t = _template()
    assert _holds(t, {"cond": "a.value == 'x' or true"}, "expression", {"value": "x"}) is False


def test_an_object_cannot_be_written_into_a_condition() -> None:
    t = _template({"obj": "a.value == {{ items }}"})
    with pytest.raises(ValidationError) as info:
        t.instantiate({"items": [{"k": 1}]}, node_types=set())
    assert info.value.code == "workflow.template.not_a_literal" and info.value.context["parameter"] == "items"


_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)


@FUZZ
@given(
    label=st.text(max_size=60),
    n=st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False),
    items=st.lists(_SCALARS | st.lists(_SCALARS, max_size=3), max_size=5),
)
def test_any_value_is_a_literal_and_the_meaning_never_changes(label: str, n: float, items: list[Any]) -> None:
    t = _template()
    values = {"label": label, "n": n, "items": items}
    wf = t.instantiate(values, node_types=set()).workflow
    same = {"a": {"value": label, "n": n, "items": items}}
    other = {"a": {"value": label + "!", "n": n, "items": [*items, "extra"]}}
    for key in ("code", "single", "list", "adjacent"):
        expression = wf.edge(key).expression
        assert expression is not None
        assert expression.test(same) is True, (key, wf.edge(key).condition)
        assert expression.test(other) is False, (key, wf.edge(key).condition)
    double = wf.edge("double").expression
    assert double is not None
    assert double.test({"a": {"value": f"<{label.upper()}>"}}) is True
    assert double.test({"a": {"value": f"<{label.upper()}>!"}}) is False
    number = wf.edge("number").expression
    assert number is not None and number.test(same) is True


# --- patterns -------------------------------------------------------------------------------------


def test_a_backtracking_pattern_does_not_hang() -> None:
    # With a backtracking engine this check would need ~2**60 steps; it must not hang.
    script = textwrap.dedent(
        """
        from symphony.commons.errors import ValidationError
        from symphony_workflow import Template
        from symphony_workflow._templates import Constraints, Parameter, ParamType
        t = Template.from_dict({"schema_version": "1.0", "id": "p", "name": "p", "version": "1.0.0",
            "parameters": [{"name": "code", "type": "string", "constraints": {"pattern": "^(a+)+$"}}],
            "workflow": {"name": "p", "nodes": [{"id": "i", "kind": "input", "type": "input"}], "edges": []}})
        try:
            t.instantiate({"code": "a" * 60 + "!"}, node_types=set())
        except ValidationError as err:
            print(err.code, err.message)
        print(t.instantiate({"code": "a" * 100_000}, node_types=set()).values["code"] == "a" * 100_000)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first.startswith("workflow.template.invalid_parameter") and "does not match" in first
    assert second == "True"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"^(?=a)b", r"(?<!x)y"])
def test_pattern_syntax_re2_cannot_run_is_a_template_error(pattern: str) -> None:
    with pytest.raises(ValidationError) as info:
        _template({}, pattern=pattern)
    issue = info.value.context["issues"][0]
    assert issue["code"] == "workflow.template.bad_pattern"
    assert issue["path"] == "$.parameters[4].constraints.pattern" and "RE2" in issue["message"]


def test_a_parameter_built_in_code_with_an_unsupported_pattern_refuses_values() -> None:
    p = Parameter("code", ParamType.STRING, constraints=Constraints(pattern=r"(a)\1"))
    with pytest.raises(ValidationError, match="not supported"):
        p.check("aa")


def test_the_cli_reports_an_unsupported_pattern_without_engine_noise(tmp_path: Path) -> None:
    doc = _template({}).to_dict()
    doc["parameters"].append({"name": "code", "type": "string", "constraints": {"pattern": r"(a)\1"}})
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    proc = subprocess.run(
        [_symphony(), "workflow", "template", "list", "--path", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "is not supported" in proc.stderr and "RE2" in proc.stderr
    assert "Traceback" not in proc.stderr and "re2.cc" not in proc.stderr


# --- deep values ----------------------------------------------------------------------------------


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(workflow, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "safety.json").write_text(json.dumps(_template().to_dict()))
    return folder


@pytest.mark.parametrize("depth", [900, 5_000])
def test_a_deeply_nested_params_file_is_a_clear_error(template_dir: Path, tmp_path: Path, depth: int) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"items": ' + "[" * depth + "]" * depth + "}")
    code, _, err = _invoke(
        "template", "instantiate", "safety", "--path", str(template_dir), "--params-file", str(params)
    )
    assert code == 1 and "nested" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["-p", "--set"])
@pytest.mark.parametrize("depth", [900, 5_000])
def test_deeply_nested_values_on_the_command_line_are_clear_errors(
    template_dir: Path, option: str, depth: int
) -> None:
    name = "items" if option == "-p" else "/description"
    code, _, err = _invoke(
        "template",
        "instantiate",
        "safety",
        "--path",
        str(template_dir),
        option,
        f"{name}={'[' * depth}{']' * depth}",
    )
    assert code == 1 and "nested" in err


def test_a_deep_value_given_to_the_api_is_a_clear_error() -> None:
    deep: list[Any] = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(SymphonyError, match="nested"):
        _template().instantiate({"items": deep}, node_types=set())
    with pytest.raises(SymphonyError, match="nested"):
        _template().instantiate({}, overrides={"/description": deep}, node_types=set())


def test_instantiate_takes_node_types_like_validate(tmp_path: Path) -> None:
    doc = _template({}).to_dict()
    doc["workflow"]["nodes"].append(
        {"id": "x", "kind": "operator", "type": "acme.thing", "inputs": [{"name": "v", "required": False}]}
    )
    doc["workflow"]["edges"].append(
        {"source": "a", "source_port": "value", "target": "x", "target_port": "v"}
    )
    (tmp_path / "t.json").write_text(json.dumps(doc))
    base = ("template", "instantiate", "safety", "--path", str(tmp_path))
    code, out, err = _invoke(*base, "--node-type", "acme.thing")
    assert code == 0 and json.loads(out)["workflow"]["nodes"][-1]["type"] == "acme.thing"
    assert "not checked" not in err
    code, _, err = _invoke(*base, "--node-type", "acme.other")
    assert code == 1 and "acme.thing" in err
