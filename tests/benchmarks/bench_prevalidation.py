"""Pre-validation cost per check, beside a hand-written ``if`` chain doing the same check.

Target (DESIGN.md §4, L01 §2): each pre-validation check < 1 ms. Run:
``.venv/bin/python tests/benchmarks/bench_prevalidation.py``
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, time_per_call

from symphony.commons.errors import PreValidationError
from symphony.commons.validation import (
    MESSAGE_TYPE,
    PLUGIN_ID,
    all_of,
    max_length,
    non_empty,
    pattern,
    validate,
)

NUMBER = 20_000
TARGET = "< 1000 us per check"
NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")
PLUGIN_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
TYPE_RE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")


def hand_name(value: Any) -> None:
    if value is None or len(value) == 0:
        raise PreValidationError("empty", code="validation.pre.non_empty")
    if len(value) > 64:
        raise PreValidationError("too long", code="validation.pre.max_length")
    if not isinstance(value, str) or NAME_RE.fullmatch(value) is None:
        raise PreValidationError("bad name", code="validation.pre.pattern")


def hand_plugin_id(value: Any) -> None:
    if not isinstance(value, str) or not value or len(value) > 128 or PLUGIN_RE.fullmatch(value) is None:
        raise PreValidationError("bad plugin id", code="validation.pre.pattern")


def hand_type(value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or TYPE_RE.fullmatch(value) is None:
        raise PreValidationError("bad message type", code="validation.pre.pattern")


workflow_name = all_of(non_empty(), max_length(64), pattern(NAME_RE.pattern))


def passing(check: Any, value: Any) -> Any:
    return lambda: check(value)


def failing(check: Any, value: Any) -> Any:
    def run() -> None:
        try:
            check(value)
        except PreValidationError:
            return
        raise AssertionError("expected a failure")

    return run


CASES: list[tuple[str, Any, Any, Any, bool]] = [
    ("workflow_name.pass", workflow_name, hand_name, "ingest-docs_v2", True),
    ("workflow_name.fail_pattern", workflow_name, hand_name, "Ingest Docs", False),
    ("workflow_name.fail_empty", workflow_name, hand_name, "", False),
    ("plugin_id.pass", PLUGIN_ID, hand_plugin_id, "symphony-workflow", True),
    ("plugin_id.fail", PLUGIN_ID, hand_plugin_id, "fake-n[/x]", False),
    ("message_type.pass", MESSAGE_TYPE, hand_type, "workflow.node.started", True),
    ("message_type.fail", MESSAGE_TYPE, hand_type, "a..b", False),
]


def main() -> None:
    worst = 0.0
    for name, rule, hand, value, ok in CASES:
        make = passing if ok else failing
        ours = time_per_call(make(rule.check, value), number=NUMBER)
        anchor = time_per_call(make(hand, value), number=NUMBER)
        worst = max(worst, ours)
        emit(
            f"prevalidation.{name}",
            ours * 1e6,
            "us",
            baseline="hand-written if chain",
            baseline_value=anchor * 1e6,
            target=TARGET,
            check=lambda v, r: v < 1000,
        )
    # the validate() helper around the workflow-name chain.
    anchor = time_per_call(passing(hand_name, "ingest-docs"), number=NUMBER)
    ours = time_per_call(lambda: validate("ingest-docs", workflow_name, field="name"), number=NUMBER)
    emit(
        "prevalidation.validate_helper.pass",
        ours * 1e6,
        "us",
        baseline="hand-written if chain",
        baseline_value=anchor * 1e6,
        target=TARGET,
        check=lambda v, r: v < 1000,
    )
    log(f"worst pre-validation check: {worst * 1e6:.2f} us (target < 1000 us)")
    if worst >= 1e-3:
        raise SystemExit("a pre-validation check took 1 ms or more")


if __name__ == "__main__":
    main()
