"""``symphony arbitration status [--json]`` and ``symphony arbitration verify FILE``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from symphony.commons.errors import SymphonyError
from symphony_arbitration_engine.engine import ArbitrationEngine
from symphony_arbitration_engine.fairness import fairness_report
from symphony_arbitration_engine.replay import replay

__all__ = ["arbitration", "render_status"]


def _engine() -> ArbitrationEngine:
    from symphony.cli import current_kernel

    kernel = current_kernel(required=False)
    if kernel is not None:
        engine: ArbitrationEngine = kernel.service("arbitration")
        return engine
    return ArbitrationEngine()


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value >= 1e6 else f"{value:g}"


def render_status(status: dict[str, Any], report: dict[str, Any]) -> str:
    """The human form of the engine's status and fairness report."""
    cap = ", ".join(f"{k} {_amount(v)}" for k, v in status["capacity"].items() if v) or "unlimited"
    lines = [
        f"policy: {status['policy']} (preemption {'on' if status['preemption'] else 'off'})",
        f"capacity: {cap}",
        f"grants: {status['grants']}  pending: {status['pending']}  by class: "
        + " ".join(f"{k}={v}" for k, v in status["pending_by_class"].items()),
        f"fairness over {report['window']:g} s: gini(wait)={report['gini_wait']:.3f} "
        f"gini(share)={report['gini_share']:.3f} max deviation={report['max_deviation']:.1%}",
        f"owners ({len(status['owners'])}):",
    ]
    totals = {o["owner"]: o for o in report["owners"]}
    for oid, o in status["owners"].items():
        t = totals.get(oid, {})
        lines.append(
            f"  {oid:<20} {o['kind']:<6} weight={o['weight']:g} dominant={o['dominant_share']:.3f} "
            f"pending={o['pending']} requests={t.get('requests', 0)} share={t.get('share', 0):.1%} "
            f"fair={t.get('fair_share', 0):.1%}"
        )
    return "\n".join(lines)


def _fail(err: SymphonyError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": err.to_wire()}, indent=2))
    else:
        click.echo(f"error: {err}", err=True)
    sys.exit(1)


@click.group("arbitration")
def arbitration() -> None:
    """Inspect the arbitration engine and check its audit logs."""


@arbitration.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def status_cmd(as_json: bool) -> None:
    """Capacity, grants, queues per class, owners, and the fairness report."""
    try:
        engine = _engine()
        status, report = engine.status(), fairness_report(engine).to_dict()
    except SymphonyError as err:
        _fail(err, as_json)
        return
    if as_json:
        click.echo(json.dumps({"status": status, "fairness": report}, indent=2, sort_keys=True))
    else:
        click.echo(render_status(status, report))


@arbitration.command("verify")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def verify_cmd(path: str, as_json: bool) -> None:
    """Check an audit log's hash chain and replay it; exit 1 naming the first bad line or decision."""
    from symphony.commons.fs import read_text

    try:
        result = replay(read_text(path).splitlines())
    except SymphonyError as err:
        _fail(err, as_json)
        return
    if as_json:
        click.echo(json.dumps({"ok": True, "records": result.records, "decisions": result.decisions}))
    else:
        click.echo(f"{path}: ok ({result.records} records, {result.decisions} decisions replayed identically)")
