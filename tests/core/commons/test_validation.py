"""symphony.commons.validation: each rule, composition, error shape, the named outside-input rules."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.commons.errors import PreValidationError, SymphonyError, ValidationError
from symphony.commons.validation import (
    CONFIG_KEY,
    MESSAGE_TYPE,
    PLUGIN_ID,
    TEMPLATE_ID,
    WORKFLOW_NAME,
    Rule,
    all_of,
    length,
    max_length,
    non_empty,
    of_type,
    pattern,
    validate,
)


def fails(rule: Rule, value: Any, field: str = "value") -> PreValidationError:
    with pytest.raises(PreValidationError) as info:
        rule.check(value, field)
    err = info.value
    assert err.stage == "pre-validation"
    assert isinstance(err, ValidationError)
    assert err.context["field"] == field
    assert err.context["rule"] == rule.description
    return err


@pytest.mark.parametrize(
    ("rule", "good", "bad", "code"),
    [
        (non_empty(), ["a", [0], {"k": 1}, 0, " "], [None, "", [], {}, ()], "non_empty"),
        (non_empty(strip=True), ["a", " a "], [" ", "\t\n", None], "non_empty"),
        (max_length(3), ["", "abc", (1, 2)], ["abcd", [1, 2, 3, 4], 5], "max_length"),
        (length(1, 2), ["a", "ab"], ["", "abc", None], "length"),
        (length(min=2), ["ab"], ["a"], "length"),
        (pattern(r"[a-z][a-z0-9_-]*"), ["a", "wf-1"], ["", "Wf", "a b", "1a", 5, "ab\n"], "pattern"),
        (pattern(re.compile(r"\d+")), ["123"], ["12a"], "pattern"),
        (of_type(str), ["x"], [1, b"x", None], "of_type"),
        (of_type(int, float), [1, 1.5, True], ["1"], "of_type"),
    ],
)
def test_rules_pass_and_fail(rule: Rule, good: list[Any], bad: list[Any], code: str) -> None:
    assert isinstance(rule, Rule)
    for value in good:
        assert rule.check(value, "field") is None
    for value in bad:
        err = fails(rule, value, "field")
        assert err.code == f"validation.pre.{code}"
        assert err.context["value"] == repr(value)[:80]
        assert "field" in err.message


def test_descriptions() -> None:
    assert non_empty().description == "non-empty"
    assert max_length(64).description == "length <= 64"
    assert length(1, 2).description == "1 <= length <= 2"
    assert pattern("a+").description == "matches 'a+'"
    assert of_type(str, int).description == "instance of str | int"


def test_value_repr_is_truncated() -> None:
    err = fails(max_length(5), "x" * 10_000)
    assert len(err.context["value"]) == 80
    assert err.context["value"].endswith("...")
    assert err.context["length"] == 10_000


def test_broken_repr_does_not_hide_failure() -> None:
    class Weird:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    err = fails(of_type(str), Weird())
    assert err.context["value"] == "<Weird>"


def test_workflow_name_chain_reports_the_first_broken_rule() -> None:
    name = all_of(non_empty(), max_length(8), pattern(r"[a-z]+"))
    assert validate("abc", name, field="name") == "abc"
    with pytest.raises(PreValidationError) as info:
        validate("", name, field="name")
    assert info.value.code == "validation.pre.non_empty"
    with pytest.raises(PreValidationError) as info:
        validate("ABCDEFGHIJ", name, field="name")
    assert info.value.code == "validation.pre.max_length"
    with pytest.raises(PreValidationError) as info:
        validate("ABC", name, field="name")
    assert info.value.code == "validation.pre.pattern"
    assert info.value.context["field"] == "name"


def test_validate_returns_value_and_checks_in_order() -> None:
    value = {"k": 1}
    assert validate(value) is value
    assert validate(value, non_empty(), max_length(1)) is value
    with pytest.raises(PreValidationError) as info:
        validate([], non_empty(), max_length(-0))
    assert info.value.code == "validation.pre.non_empty"
    assert info.value.context["field"] == "value"


def test_errors_survive_the_wire() -> None:
    from symphony.commons.errors import error_from_wire

    err = fails(max_length(1), "abc", "title")
    back = error_from_wire(json.loads(json.dumps(err.to_wire())))
    assert isinstance(back, PreValidationError)
    assert back.code == "validation.pre.max_length"
    assert back.context["field"] == "title"


@pytest.mark.parametrize(
    "build",
    [
        lambda: max_length(1.5),  # type: ignore[arg-type]
        lambda: length(-1),
        lambda: length(5, 2),
        lambda: pattern("(unclosed"),
        lambda: of_type("str"),  # type: ignore[arg-type]
    ],
)
def test_bad_rule_definitions(build: Any) -> None:
    with pytest.raises(SymphonyError) as info:
        build()
    assert info.value.code == "validation.bad_rule"


# --------------------------------------------------------------------------- named rules


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (
            PLUGIN_ID,
            ["symphony-workflow", "a", "p.x_1"],
            ["", "Upper", "-lead", "a b", "fake-n[/x]", "a" * 129, b"x", None],
        ),
        (
            MESSAGE_TYPE,
            ["demo.ping", "a", "x-y.z_1", "a" * 255],
            ["", "a..b", ".a", "a.", "a b", "a" * 256, 5],
        ),
        (
            CONFIG_KEY,
            ["logging.level", "gone_plugin", "workflow.template_paths"],
            ["", "a..b", ".a", "a b", "a\n", 1],
        ),
        (TEMPLATE_ID, ["summarize", "x.y-1"], ["", "Bad", "a/b", "a" * 129, None]),
        (WORKFLOW_NAME, ["", "My flow", "x" * 1024], ["x" * 1025, None, 3]),
    ],
)
def test_named_rules(rule: Rule, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert validate(value, rule) == value
    for value in bad:
        with pytest.raises(PreValidationError):
            rule.check(value, "input")


@given(st.one_of(st.text(max_size=300), st.binary(max_size=20), st.integers(), st.none()))
def test_named_rules_raise_only_prevalidation_errors(value: Any) -> None:
    for rule in (PLUGIN_ID, MESSAGE_TYPE, CONFIG_KEY, TEMPLATE_ID, WORKFLOW_NAME):
        try:
            rule.check(value, "input")
        except PreValidationError:
            pass


def test_message_type_rule_matches_the_bus() -> None:
    from symphony.bus._message import MAX_TYPE_LENGTH, is_valid_type

    assert MAX_TYPE_LENGTH == 255
    for value in ("demo.ping", "a" * 255, "a" * 256, "a..b", "x y", ""):
        try:
            MESSAGE_TYPE.check(value)
        except PreValidationError:
            assert not is_valid_type(value)
        else:
            assert is_valid_type(value)


def test_in_range_and_number_rules() -> None:
    from symphony.commons.errors import ValidationError
    from symphony.commons.validation import in_range, number, validate

    assert validate(5.5, number(), in_range(0, 10)) == 5.5
    assert validate(0.1, in_range(0, 10, inclusive=False)) == 0.1
    for bad in (True, "5", None, [1]):
        with pytest.raises(ValidationError):
            validate(bad, number())
    for bad in (-1, 10.01, float("nan"), 0):
        with pytest.raises(ValidationError):
            validate(bad, in_range(0, 10, inclusive=bad != 0))
    with pytest.raises(ValidationError):
        in_range(3, 1)
