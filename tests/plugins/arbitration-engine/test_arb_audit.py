"""Audit log, replay, determinism and DRF capacity as properties; tampering is detected."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony.commons.errors import SymphonyError
from symphony_arbitration_engine import (
    ArbitrationConfig,
    ArbitrationEngine,
    AuditLog,
    AuditTamperedError,
    Owner,
    ReplayMismatchError,
    Request,
    Resources,
    read_audit,
    replay,
    verify_audit,
)
from symphony_arbitration_engine.audit import _digest
from symphony_arbitration_engine.cli import arbitration

CAPACITY = Resources(memory=64, cpu_slots=8, model_instances=3)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.integers(0, 4),  # owner
            st.sampled_from(["critical", "high", "normal", "low", "background"]),
            st.integers(0, 10),  # cpu
            st.integers(0, 70),  # memory
            st.sampled_from([None, "m1", "m2"]),
        ),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("advance"), st.floats(0, 100)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
    ),
    max_size=60,
)


def run_ops(steps: list[tuple[Any, ...]], *, audit: AuditLog | None = None, preemption: bool = True) -> tuple[
    ArbitrationEngine, list[dict[str, Any]]
]:
    clock = Clock()
    eng = ArbitrationEngine(
        ArbitrationConfig(capacity=CAPACITY, preemption=preemption, aging=30, max_pending=20),
        clock=clock,
        audit=audit if audit is not None else True,
    )
    decisions: list[dict[str, Any]] = []
    eng.add_listener(lambda d: decisions.append(d.to_dict()))
    for i in range(5):
        eng.add_owner(Owner(f"o{i}", weight=1 + i % 3, calls_per_minute=0))
    for step in steps:
        if step[0] == "submit":
            _, owner, prio, cpu, mem, model = step
            demand = {"cpu_slots": cpu, "memory": mem, "model_instances": 1 if model else 0}
            eng.submit(Request.make(f"o{owner}", demand, priority=prio, model=model))
        elif step[0] == "release":
            grants = eng.grants()
            if grants:
                eng.release(grants[step[1] % len(grants)])
        elif step[0] == "cancel":
            pending = eng.pending()
            if pending:
                eng.cancel(pending[step[1] % len(pending)])
        else:
            clock.now += step[1]
            eng.tick()
        used = eng.status()["used"]
        for name, cap in CAPACITY.to_dict().items():
            assert used[name] <= cap + 1e-9, (name, used)
    return eng, decisions


@settings(max_examples=60, deadline=None)
@given(ops)
def test_allocations_never_exceed_capacity_and_decisions_are_deterministic(steps: list[tuple[Any, ...]]) -> None:
    first, decisions = run_ops(steps)
    second, again = run_ops(steps)
    assert decisions == again
    assert first.audit is not None and second.audit is not None
    assert [r["hash"] for r in first.audit.records] == [r["hash"] for r in second.audit.records]
    report = replay(list(first.audit.lines()))
    assert report.decisions == len(decisions)


def _log(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path)
    steps: list[tuple[Any, ...]] = [
        ("submit", 0, "normal", 6, 10, None),
        ("submit", 1, "high", 4, 10, "m1"),
        ("submit", 2, "background", 2, 10, "m1"),
        ("advance", 5.0),
        ("release", 0),
        ("submit", 3, "low", 1, 1, None),
    ]
    run_ops(steps, audit=audit)
    audit.close()
    lines = path.read_text().splitlines()
    return path, lines


def test_audit_file_verifies_and_replays(tmp_path: Path) -> None:
    path, lines = _log(tmp_path)
    records = read_audit(path)
    assert [r["kind"] for r in records[:2]] == ["config", "owner"]
    assert records[0]["prev"] == "0" * 64 and all(r["prev"] == p["hash"] for p, r in itertools.pairwise(records))
    report = replay(lines)
    assert report.records == len(lines) and report.decisions >= 5
    # reopening appends to the same chain
    audit = AuditLog(path)
    audit.append("tick", 99.0)
    audit.close()
    assert len(read_audit(path)) == len(lines) + 1


@pytest.mark.parametrize("how", ["edit", "delete", "swap", "garbage", "rehash-one"])
def test_tampering_is_detected(tmp_path: Path, how: str) -> None:
    _, lines = _log(tmp_path)
    target = next(i for i, line in enumerate(lines) if '"outcome":"granted"' in line.replace(" ", ""))
    if how == "edit":
        lines[target] = lines[target].replace('"granted"', '"denied"')
    elif how == "delete":
        del lines[target]
    elif how == "swap":
        lines[target], lines[target + 1] = lines[target + 1], lines[target]
    elif how == "garbage":
        lines[target] = lines[target][:20]
    elif how == "rehash-one":  # fix the edited line's own hash: the next line's prev no longer matches
        record = json.loads(lines[target])
        record["decision"]["outcome"] = "denied"
        del record["hash"]
        record["hash"] = _digest(record)
        lines[target] = json.dumps(record)
    with pytest.raises(AuditTamperedError) as info:
        replay(lines)
    assert info.value.context["line"] in (target + 1, target + 2)


def test_a_forged_but_rechained_log_fails_the_replay(tmp_path: Path) -> None:
    _, lines = _log(tmp_path)
    records = [json.loads(line) for line in lines]
    target = next(i for i, r in enumerate(records) if r["kind"] == "decision" and r["decision"]["outcome"] == "granted")
    records[target]["decision"]["rationale"] = "because I said so"
    prev = "0" * 64
    for r in records:  # the forger recomputes the whole chain
        r["prev"] = prev
        r.pop("hash")
        r["hash"] = prev = _digest(r)
    forged = [json.dumps(r) for r in records]
    assert len(verify_audit(forged)) == len(forged)
    with pytest.raises(ReplayMismatchError) as info:
        replay(forged)
    assert info.value.context["field"] == "rationale"


@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40)), max_size=5))
def test_verify_raises_only_symphony_errors(lines: list[Any]) -> None:
    try:
        verify_audit(lines)
        replay(lines)
    except SymphonyError:
        pass


def test_cli_verify(tmp_path: Path) -> None:
    path, lines = _log(tmp_path)
    result = CliRunner().invoke(arbitration, ["verify", str(path)], catch_exceptions=False)
    assert result.exit_code == 0 and "replayed identically" in result.stdout
    lines[2] = lines[2].replace("o1", "o9")
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(arbitration, ["verify", "--json", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "arbitration.audit.tampered"


values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**20), st.floats(), st.text(max_size=8),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=6), st.floats(), max_size=3),
)


@given(st.dictionaries(st.sampled_from(["id", "owner", "demand", "priority", "deadline", "model", "x"]), values))
def test_request_from_dict_raises_only_symphony_errors(data: dict[str, Any]) -> None:
    try:
        Request.from_dict(data)
    except SymphonyError:
        pass


@given(
    st.dictionaries(
        st.sampled_from(["capacity", "policy", "preemption", "aging", "max_pending", "window", "owners", "cost_limit"]),
        st.one_of(values, st.dictionaries(st.text(max_size=5), st.dictionaries(
            st.sampled_from(["kind", "weight", "quota", "calls_per_minute", "burst"]), values), max_size=2)),
    )
)
def test_config_from_mapping_raises_only_symphony_errors(section: dict[str, Any]) -> None:
    try:
        ArbitrationConfig.from_mapping(section)
    except SymphonyError:
        pass
