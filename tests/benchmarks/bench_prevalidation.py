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
    all_of,
    any_of,
    in_range,
    max_length,
    non_empty,
    of_type,
    one_of,
    optional,
    pattern,
    timed,
    validate,
)

NUMBER = 20_000
TARGET = "< 1000 us per check"
NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")


def hand_name(value: Any) -> None:
    if value is None or len(value) == 0:
        raise PreValidationError("empty", code="validation.pre.non_empty")
    if len(value) > 64:
        raise PreValidationError("too long", code="validation.pre.max_length")
    if not isinstance(value, str) or NAME_RE.fullmatch(value) is None:
        raise PreValidationError("bad name", code="validation.pre.pattern")


def hand_port(value: Any) -> None:
    if not isinstance(value, int):
        raise PreValidationError("not int", code="validation.pre.of_type")
    if not (1 <= value <= 65535):
        raise PreValidationError("out of range", code="validation.pre.in_range")


def hand_codec(value: Any) -> None:
    if value is not None and value not in ("json", "msgpack", "cbor"):
        raise PreValidationError("unknown codec", code="validation.pre.one_of")


def hand_id(value: Any) -> None:
    if isinstance(value, int):
        return
    if isinstance(value, str) and value.isdigit():
        return
    raise PreValidationError("bad id", code="validation.pre.any_of")


workflow_name = all_of(non_empty(), max_length(64), pattern(NAME_RE.pattern))
port = all_of(of_type(int), in_range(1, 65535))
codec = optional(one_of("json", "msgpack", "cbor"))
ident = any_of(of_type(int), pattern(r"\d+"))


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
    ("port.pass", port, hand_port, 8080, True),
    ("port.fail_range", port, hand_port, 70000, False),
    ("codec.optional_one_of.pass", codec, hand_codec, "msgpack", True),
    ("id.any_of.pass_second", ident, hand_id, "12345", True),
    ("id.any_of.fail", ident, hand_id, "x1", False),
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
    # validate() helper and the timed() wrapper around the workflow-name chain.
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
    wrapped = timed(workflow_name, budget_ms=1.0)
    ours = time_per_call(passing(wrapped.check, "ingest-docs"), number=NUMBER)
    worst = max(worst, ours)
    emit(
        "prevalidation.timed_wrapper.pass",
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
