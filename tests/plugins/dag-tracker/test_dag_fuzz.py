"""Property tests: policy parsing rejects bad input with a SymphonyError only; backoff stays in bounds."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.commons.errors import SymphonyError
from symphony_dag_tracker import BACKOFFS, NodePolicy, RetryPolicy, TrackerSettings, check_value, policy_of

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
policy_keys = st.sampled_from(
    ["retry", "timeout", "fallback", "optional", "default", "cache", "cache_salt", "priority", "executor", "other"]
)
retry_values = st.dictionaries(
    st.sampled_from(["attempts", "backoff", "delay", "max_delay", "jitter", "on", "bogus"]),
    json_values | st.sampled_from(BACKOFFS),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(policy_keys, json_values | retry_values, max_size=5))
def test_policy_parsing_accepts_or_raises_a_symphony_error(raw: dict[str, Any]) -> None:
    try:
        policy = policy_of({"policy": raw})
    except SymphonyError as exc:
        assert exc.code == "dag.policy.invalid"
        return
    assert isinstance(policy, NodePolicy)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_a_policy_that_is_not_an_object_is_refused(raw: Any) -> None:
    try:
        policy_of({"policy": raw})
    except SymphonyError:
        return
    assert raw is None or isinstance(raw, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 50),
    st.sampled_from(BACKOFFS),
    st.floats(0, 100),
    st.floats(0, 100),
    st.floats(0, 1),
)
def test_backoff_delays_stay_within_zero_and_max_delay(
    attempt: int, backoff: str, delay: float, max_delay: float, jitter: float
) -> None:
    policy = RetryPolicy(attempts=60, backoff=backoff, delay=delay, max_delay=max_delay, jitter=jitter)
    assert 0.0 <= policy.delay_before(attempt) <= max_delay


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["max_concurrency", "type_limits", "fail_fast", "inline_max", "durable", "nope"]) | st.text(max_size=6),
        json_values,
        max_size=3,
    )
)
def test_settings_from_a_config_section(section: dict[str, Any]) -> None:
    try:
        settings = TrackerSettings.from_mapping(section)
    except SymphonyError as exc:
        assert exc.code in ("dag.settings.unknown", "dag.settings.invalid")
        return
    assert settings.max_concurrency >= 1 and isinstance(settings.fail_fast, bool)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["any", "text", "number", "integer", "bool", "json", "list[integer]", "list[list[text]]"]))
def test_value_checks_raise_a_symphony_error_or_pass(value: Any, port_type: str) -> None:
    try:
        check_value(value, port_type, node="n", port="p", direction="input")
    except SymphonyError as exc:
        assert port_type in str(exc)
