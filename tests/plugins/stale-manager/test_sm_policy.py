"""Durations and the ``[stale_manager]`` section: good values parse, bad ones name what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symphony.commons.errors import ConfigError, ValidationError
from symphony_stale_manager import StalePolicy, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(0, 0.0), (90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("36h", 129600.0),
     ("14d", 1209600.0), ("2w3d", 1468800.0), ("1y", 31536000.0), (" 1D ", 86400.0), ("0.5h", 1800.0)],
)  # fmt: skip
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["", "d", "-1", "3x", "1d 2h", "1d-2h", True, None, [], -5, 1e12, "nan", "inf"]
)
def test_bad_durations_name_the_field(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(bad, field="grace")
    assert info.value.code == "stale.duration.invalid" and info.value.context["field"] == "grace"


@given(st.one_of(st.text(max_size=80), st.floats(allow_nan=True), st.integers(), st.none(), st.booleans()))
def test_fuzz_parse_duration_only_raises_validation_errors(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValidationError:
        return
    assert 0 <= seconds <= 100 * 366 * 86400


def test_policy_from_mapping_reads_durations_and_lists() -> None:
    policy = StalePolicy.from_mapping(
        {"grace": "1h", "keep_within": 0, "keep_tags": ["gold", "keep"], "keep_last": 7}
    )
    assert (policy.grace, policy.keep_within, policy.keep_tags, policy.keep_last) == (
        3600.0,
        0.0,
        ("gold", "keep"),
        7,
    )
    assert policy.purge_after == max(policy.trash_retention, policy.grace)
    assert StalePolicy(grace=10 * 86400, trash_retention=3600).purge_after == 10 * 86400


@pytest.mark.parametrize(
    ("section", "key"),
    [({"gracee": 1}, "gracee"), ({"grace": "soon"}, "grace"), ({"keep_last": 0}, "keep_last"),
     ({"keep_last": True}, "keep_last"), ({"disk_threshold": 1.5}, "disk_threshold"),
     ({"keep_tags": "keep"}, "keep_tags"), ({"keep_tags": [""]}, "keep_tags"), ({"cold_after": -1}, "cold_after"),
     ({"disk_threshold": 0.5, "disk_check_interval": 0}, "disk_check_interval")],
)  # fmt: skip
def test_bad_sections_name_the_key(section: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        StalePolicy.from_mapping(section)
    assert info.value.code == "stale.config.invalid" and info.value.context["key"] == key
    assert f"stale_manager.{key}" in info.value.message
