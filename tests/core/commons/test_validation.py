"""symphony.commons.validation: each rule, composition, error shape, the timing wrapper."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from symphony.commons.errors import PreValidationError, SymphonyError, ValidationError
from symphony.commons.log import configure_logging, reset_logging
from symphony.commons.validation import (
    Rule,
    all_of,
    any_of,
    in_range,
    length,
    max_length,
    min_length,
    non_empty,
    of_type,
    one_of,
    optional,
    pattern,
    predicate,
    timed,
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
        (min_length(2), ["ab", [1, 2, 3]], ["a", [], 5], "min_length"),
        (max_length(3), ["", "abc", (1, 2)], ["abcd", [1, 2, 3, 4], 5], "max_length"),
        (length(1, 2), ["a", "ab"], ["", "abc", None], "length"),
        (length(min=2), ["ab"], ["a"], "length"),
        (in_range(0, 10), [0, 10, 5.5], [-1, 10.01, float("nan"), "5", None], "in_range"),
        (in_range(0, 10, inclusive=False), [0.1, 9], [0, 10], "in_range"),
        (in_range(min=1), [1, 10**9], [0], "in_range"),
        (in_range(max=1.5), [-5, 1.5], [2], "in_range"),
        (pattern(r"[a-z][a-z0-9_-]*"), ["a", "wf-1"], ["", "Wf", "a b", "1a", 5, "ab\n"], "pattern"),
        (pattern(re.compile(r"\d+")), ["123"], ["12a"], "pattern"),
        (one_of("json", "msgpack"), ["json", "msgpack"], ["xml", None, ["json"]], "one_of"),
        (one_of([1], {"a": 1}), [[1], {"a": 1}], [[2], 1], "one_of"),
        (of_type(str), ["x"], [1, b"x", None], "of_type"),
        (of_type(int, float), [1, 1.5, True], ["1"], "of_type"),
        (predicate(lambda v: v % 2 == 0, "even"), [0, 2], [1, "x"], "predicate"),
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
    assert min_length(3).description == "length >= 3"
    assert max_length(64).description == "length <= 64"
    assert length(1, 2).description == "1 <= length <= 2"
    assert in_range(0, 1).description == "0 <= value <= 1"
    assert in_range(0, 1, inclusive=False).description == "0 < value < 1"
    assert pattern("a+").description == "matches 'a+'"
    assert one_of("a", "b").description == "one of ['a', 'b']"
    assert of_type(str, int).description == "instance of str | int"
    assert optional(max_length(2)).description == "None or length <= 2"


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


def test_predicate_exceptions() -> None:
    def explode(value: Any) -> bool:
        raise KeyError("boom")

    err = fails(predicate(explode, "never"), 1)
    assert "KeyError" in err.message

    def symphony_failure(value: Any) -> bool:
        raise ValidationError("owned elsewhere", code="x.y")

    with pytest.raises(ValidationError) as info:
        predicate(symphony_failure, "passes through").check(1)
    assert info.value.code == "x.y"


def test_all_of_stops_at_first_failure_in_order() -> None:
    calls: list[str] = []

    def spy(name: str, ok: bool) -> Rule:
        def fn(value: Any) -> bool:
            calls.append(name)
            return ok

        return predicate(fn, name)

    rule = all_of(spy("first", True), spy("second", False), spy("third", False))
    with pytest.raises(PreValidationError) as info:
        rule.check(1, "f")
    assert calls == ["first", "second"]
    assert info.value.context["rule"] == "second"
    assert info.value.code == "validation.pre.predicate"
    assert rule.description == "first and second and third"


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


def test_any_of_collects_every_reason() -> None:
    rule = any_of(of_type(int), pattern(r"\d+"))
    assert rule.check(5) is None
    assert rule.check("42") is None
    err = fails(rule, "x")
    assert err.code == "validation.pre.any_of"
    assert len(err.context["reasons"]) == 2
    assert "instance of int" in err.message and "matches" in err.message


def test_optional() -> None:
    rule = optional(min_length(2))
    assert rule.check(None) is None
    assert rule.check("ab") is None
    with pytest.raises(PreValidationError) as info:
        rule.check("a")
    assert info.value.code == "validation.pre.min_length"
    assert info.value.context["rule"] == "length >= 2"


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
        lambda: min_length(-1),
        lambda: max_length(1.5),  # type: ignore[arg-type]
        lambda: length(5, 2),
        lambda: in_range(5, 2),
        lambda: in_range("a", 2),
        lambda: pattern("(unclosed"),
        lambda: one_of(),
        lambda: of_type("str"),  # type: ignore[arg-type]
        lambda: predicate("nope", "x"),  # type: ignore[arg-type]
        lambda: any_of(),
    ],
)
def test_bad_rule_definitions(build: Any) -> None:
    with pytest.raises(SymphonyError) as info:
        build()
    assert info.value.code == "validation.bad_rule"


# --------------------------------------------------------------------------- timed


@pytest.fixture
def json_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "v.jsonl"
    reset_logging()
    configure_logging(console=False, json_file=path)
    yield path
    reset_logging()


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_timed_warns_when_over_budget(json_log: Path) -> None:
    slow = predicate(lambda v: time.sleep(0.003) is None, "slow check")
    rule = timed(slow, budget_ms=1.0)
    assert rule.description == "slow check"
    rule.check("x", "title")
    (event,) = _events(json_log)
    assert event["event"] == "pre-validation over budget"
    assert event["level"] == "warning"
    assert event["rule"] == "slow check"
    assert event["field"] == "title"
    assert event["budget_ms"] == 1.0
    assert event["elapsed_ms"] >= 3.0


def test_timed_is_silent_within_budget_and_passes_failures_through(json_log: Path) -> None:
    rule = timed(max_length(3), budget_ms=1000.0)
    rule.check("abc")
    with pytest.raises(PreValidationError) as info:
        rule.check("abcd")
    assert info.value.code == "validation.pre.max_length"
    assert _events(json_log) == []


def test_timed_warns_even_when_the_slow_check_fails(json_log: Path) -> None:
    def slow_fail(value: Any) -> bool:
        time.sleep(0.003)
        return False

    with pytest.raises(PreValidationError):
        timed(predicate(slow_fail, "slow fail"), budget_ms=0.5).check(1)
    assert [e["event"] for e in _events(json_log)] == ["pre-validation over budget"]
