"""Replay an audit log: feed its inputs to a fresh engine at the recorded times, compare decisions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from symphony.commons.errors import SymphonyError
from symphony_arbitration_engine.audit import AuditLog, verify_audit
from symphony_arbitration_engine.engine import ArbitrationEngine, config_from_dict, owner_from_dict
from symphony_arbitration_engine.errors import AuditTamperedError, ReplayMismatchError
from symphony_arbitration_engine.model import Decision, Request

__all__ = ["ReplayReport", "replay"]


@attrs.frozen
class ReplayReport:
    """What a replay checked."""

    records: int
    inputs: int
    decisions: int


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replay(lines: Iterable[str | bytes] | list[dict[str, Any]]) -> ReplayReport:
    """Verify the hash chain, re-run the inputs, and check every recorded decision.

    Raises :class:`AuditTamperedError` for a broken chain and :class:`ReplayMismatchError`
    naming the first decision that differs.
    """
    items = list(lines)
    records: list[dict[str, Any]]
    if items and isinstance(items[0], dict):
        records = [item for item in items if isinstance(item, dict)]
    else:
        records = verify_audit(item for item in items if not isinstance(item, dict))
    if not records:
        return ReplayReport(0, 0, 0)
    if records[0].get("kind") != "config":
        raise AuditTamperedError("audit log does not start with a config record", context={"line": 1})
    clock = _Clock()
    clock.now = float(records[0]["at"])
    try:
        engine = ArbitrationEngine(config_from_dict(records[0]["config"]), clock=clock, audit=AuditLog(keep=False))
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditTamperedError(f"config record is malformed: {exc}", context={"line": 1}) from None
    produced: list[Decision] = []
    engine.add_listener(produced.append)
    expected: list[dict[str, Any]] = []
    inputs = 0
    for record in records[1:]:
        kind = record["kind"]
        clock.now = float(record["at"])
        try:
            if kind == "decision":
                expected.append(record["decision"])
                continue
            inputs += 1
            if kind == "owner":
                engine.add_owner(owner_from_dict(record["owner"]))
            elif kind == "submit":
                engine.submit(Request.from_dict(record["request"]))
            elif kind == "release":
                engine.release(record["request"], spent=record.get("spent"))
            elif kind == "cancel":
                engine.cancel(record["request"])
            elif kind == "tick":
                engine.tick()
        except SymphonyError as err:
            if isinstance(err, AuditTamperedError):
                raise
            raise ReplayMismatchError(
                f"replaying record {record['seq']} ({kind}) raised: {err.message}",
                context={"seq": record["seq"], "kind": kind},
            ) from err
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditTamperedError(
                f"record {record.get('seq')} ({kind}) is malformed: {exc!r}", context={"seq": record.get("seq")}
            ) from None
    for index, (want, got) in enumerate(zip(expected, produced, strict=False)):
        have = got.to_dict()
        if have != want:
            field = next((k for k in want if want.get(k) != have.get(k)), "?")
            raise ReplayMismatchError(
                f"decision {index + 1} differs on {field!r}: recorded {want.get(field)!r}, replayed {have.get(field)!r}",
                context={"decision": index + 1, "field": field, "request": want.get("request")},
            )
    if len(expected) != len(produced):
        raise ReplayMismatchError(
            f"the log records {len(expected)} decisions but replaying gives {len(produced)}",
            context={"recorded": len(expected), "replayed": len(produced)},
        )
    return ReplayReport(len(records), inputs, len(expected))
