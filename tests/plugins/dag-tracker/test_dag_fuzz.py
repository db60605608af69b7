"""Property tests: retry waits stay in bounds; bad scheduling hints and settings raise a SymphonyError only."""

from __future__ import annotations

from typing import Any

import dag_nodes
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.commons.errors import SymphonyError
from symphony_dag_tracker import DagTracker, TrackerSettings, check_value, retry_wait
from symphony_workflow import Node, NodePolicy, Workflow

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
# checkpoints off: the tracker writes nothing, so one serves every example
_TRACKER = DagTracker("unused-state", node_types=dag_nodes.registry(), settings=TrackerSettings(checkpoints=False))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 100),
    st.sampled_from(("constant", "linear", "exponential")),
    st.floats(0, 100),
    st.floats(0, 100),
    st.floats(0, 1),
)
def test_retry_waits_stay_within_the_jitter_band_below_max_delay(
    retry: int, backoff: str, delay: float, extra: float, jitter: float
) -> None:
    policy = NodePolicy(retries=100, backoff=backoff, retry_delay=delay, retry_max_delay=delay + extra,
                        retry_jitter=jitter)
    wait = retry_wait(policy, retry)
    assert policy.delay(retry) * (1 - jitter) - 1e-9 <= wait <= policy.delay(retry) <= delay + extra


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_priority_hint_is_a_number_or_a_symphony_error(raw: Any) -> None:
    wf = Workflow("p", nodes=[Node.operator("n", "noop", metadata={"priority": raw})])
    try:
        _TRACKER.prepare(wf)
    except SymphonyError as exc:
        assert exc.code == "dag.node.invalid_hint" and exc.context["field"] == "metadata.priority"
        return
    assert isinstance(raw, int | float) and not isinstance(raw, bool)


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
