"""The condition expression language: parsing, evaluation, errors with columns, fuzzing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import ValidationError
from symphony_workflow._expr import MAX_DEPTH, MAX_LENGTH, Expression, parse, truthy

from .workflow_strategies import json_values

OUTPUTS = {
    "classify": {
        "label": "bug",
        "confidence": 0.91,
        "scores": [0.1, 0.9],
        "meta": {"lang": "en", "tags": ["a", "b"]},
    },
    "count": {"n": 7, "zero": 0, "flag": True, "none": None, "text": "hello world"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("classify.label == 'bug'", True),
        ('classify.label == "bug" and classify.confidence >= 0.9', True),
        ("classify.confidence > 0.95 or count.n == 7", True),
        ("not count.flag", False),
        ("count.n + 3 * 2", 13),
        ("(count.n + 3) * 2", 20),
        ("count.n / 2", 3.5),
        ("count.n % 4", 3),
        ("-count.n", -7),
        ("count.n - -3", 10),
        ("classify.scores[1]", 0.9),
        ("classify.scores[-1] > classify.scores[0]", True),
        ("classify.meta.lang", "en"),
        ("classify.meta['lang'] == 'en'", True),
        ("'b' in classify.meta.tags", True),
        ("'x' not in classify.meta.tags", True),
        ("'lang' in classify.meta", True),
        ("'world' in count.text", True),
        ("count.none == null", True),
        ("count.zero == 0 and count.zero != false", True),
        ("[1, 2, count.n]", [1, 2, 7]),
        ("'a' + 'b'", "ab"),
        ("[1] + [2]", [1, 2]),
        ("1e3 > 999", True),
        ("count.text < 'z'", True),
        ("classify.label in ['bug', 'feature']", True),
        ("count.flag and count.n", 7),
        ("count.zero or 'fallback'", "fallback"),
        ("true", True),
        ("'it\\'s'", "it's"),
    ],
)
def test_evaluates(text: str, expected: Any) -> None:
    assert Expression.parse(text).evaluate(OUTPUTS) == expected


def test_references_and_columns() -> None:
    expr = Expression.parse("a.x > 1 and b.y.z[0] == 'q'")
    assert expr.references() == {("a", "x"), ("b", "y")}
    assert [(r.node, r.col) for r in expr.refs()] == [("a", 1), ("b", 13)]


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("a.x ==", 7, "end of expression"),
        ("a.x == 'open", 8, "unterminated"),
        ("a.x == 1 2", 10, "unexpected"),
        ("a.x $ 1", 5, "unexpected character"),
        ("a < b.x", 1, "reference"),
        ("a.x < b.y < c.z", 11, "chained"),
        ("(a.x", 5, "expected ')'"),
        ("a.", 3, "port name"),
        ("", 1, "empty"),
        ("a.x == 'bad \\q'", 13, "escape"),
        ("and", 1, "keyword"),
        ("[1, 2", 6, "expected ']'"),
        ("1e999 > 0", 1, "out of range"),
    ],
)
def test_parse_errors_name_the_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(text)
    err = info.value
    assert err.code == "expression.syntax"
    assert err.context["column"] == column
    assert fragment in err.message


def test_nesting_and_length_limits() -> None:
    with pytest.raises(ValidationError, match="nested too deeply"):
        parse("(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5))
    with pytest.raises(ValidationError, match="nested too deeply"):
        parse("+".join(["1"] * (MAX_DEPTH + 5)))
    with pytest.raises(ValidationError, match="longer than"):
        parse("1" * (MAX_LENGTH + 1))
    with pytest.raises(ValidationError, match="nested too deeply"):
        parse("not " * (MAX_DEPTH + 2) + "true")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("missing.port", "expression.missing_output"),
        ("count.nope", "expression.missing_output"),
        ("count.n / count.zero", "expression.division_by_zero"),
        ("count.text - 1", "expression.type_error"),
        ("count.text < 3", "expression.type_error"),
        ("count.flag + 1", "expression.type_error"),
        ("classify.meta.nope", "expression.missing_field"),
        ("classify.scores[5]", "expression.missing_field"),
        ("classify.scores['a']", "expression.type_error"),
        ("count.n.x", "expression.type_error"),
        ("1 in count.n", "expression.type_error"),
        ("-'a'", "expression.type_error"),
    ],
)
def test_evaluation_errors_are_validation_errors(text: str, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        Expression.parse(text).evaluate(OUTPUTS)
    assert info.value.code == code
    assert isinstance(info.value.context["column"], int)


def test_truthiness_is_json_truthiness() -> None:
    assert [truthy(v) for v in (None, False, 0, 0.0, "", [], {})] == [False] * 7
    assert all(truthy(v) for v in (True, 1, -0.5, "x", [0], {"a": None}))
    assert Expression.parse("count.zero").test(OUTPUTS) is False
    assert Expression.parse("classify.scores").test(OUTPUTS) is True


def test_bools_are_not_numbers() -> None:
    assert Expression.parse("true == 1").evaluate({}) is False
    with pytest.raises(ValidationError):
        Expression.parse("true < 2").evaluate({})


def test_huge_numbers_overflow_cleanly() -> None:
    big = "9" * 40
    with pytest.raises(ValidationError) as info:
        Expression.parse(" * ".join([big] * 8)).evaluate({})
    assert info.value.code == "expression.overflow"


_EXPR_ALPHABET = st.sampled_from(
    [*"ab.x_ 0123456789+-*/%()[]<>=!,'\"\\", "and", "or", "not", "in", "true", "null"]
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.lists(_EXPR_ALPHABET, max_size=30).map(" ".join)))
def test_parser_fuzz_raises_only_validation_errors(text: str) -> None:
    try:
        expr = parse(text)
    except ValidationError as err:
        assert isinstance(err.context.get("column"), int)
        return
    assert expr.text == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_EXPR_ALPHABET, min_size=1, max_size=25).map(" ".join),
    st.dictionaries(
        st.sampled_from(["a", "b"]), st.dictionaries(st.sampled_from(["x", "y"]), json_values), max_size=2
    ),
)
def test_evaluator_fuzz_raises_only_validation_errors(text: str, outputs: dict[str, Any]) -> None:
    try:
        expr = parse(text)
    except ValidationError:
        return
    try:
        expr.evaluate(outputs)
    except ValidationError:
        pass


def test_deeply_nested_values_do_not_crash_comparison() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValidationError) as info:
        Expression.parse("a.x == a.y").evaluate({"a": {"x": deep, "y": deep}})
    assert info.value.code == "expression.too_deep"
