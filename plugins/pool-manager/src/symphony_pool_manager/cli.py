"""``symphony pool status [--json]``: budgets, models and metrics of the ``pool-manager`` service."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from symphony.commons.errors import SymphonyError
from symphony_pool_manager.pool import ModelPool

__all__ = ["pool", "render_status"]


def _pool() -> ModelPool:
    from symphony.cli import current_kernel

    kernel = current_kernel(required=False)
    if kernel is not None:
        service: ModelPool = kernel.service("pool-manager")
        return service
    return ModelPool()


def _size(value: int | None) -> str:
    if value is None:
        return "unlimited"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def render_status(status: dict[str, Any]) -> str:
    """The human form of :meth:`ModelPool.status`."""
    budgets = status["budgets"]
    lines = [
        "budgets:",
        f"  memory      {_size(budgets['memory']['used'])} used of {_size(budgets['memory']['limit'])}",
        f"  gpu memory  {_size(budgets['gpu_memory']['used'])} used of {_size(budgets['gpu_memory']['limit'])}",
        f"  models      {budgets['count']['used']} loaded of {budgets['count']['limit'] or 'unlimited'}",
    ]
    models = status["models"]
    lines.append(f"models ({len(models)}):")
    if not models:
        lines.append("  (none registered)")
    for m in models:
        lines.append(
            f"  {m['key']:<24} {m['state']:<8} leases={m['leases']} keep_alive={m['keep_alive']} "
            f"priority={m['priority']} charged={_size(m['charged']['memory'])} health={m['health']} "
            f"loads={m['loads']} hits={m['hits']}"
        )
    metrics = status["metrics"]
    rate = metrics["hit_rate"]
    lines.append(
        f"metrics: hits={metrics['hits']} misses={metrics['misses']} "
        f"hit_rate={'-' if rate is None else f'{rate:.1%}'} loads={metrics['loads']} "
        f"load_failures={metrics['load_failures']} evictions={sum(metrics['evictions'].values())}"
    )
    for name, stats in status["predictors"].items():
        lines.append(
            f"predictor {name}: predictions={stats['predictions']} prewarmed={stats['prewarmed']} "
            f"correct={stats['correct']} cold_starts_avoided={stats['cold_starts_avoided']}"
        )
    return "\n".join(lines)


@click.group("pool")
def pool() -> None:
    """Inspect the model pool (the pool-manager service)."""


@pool.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
def status_cmd(as_json: bool) -> None:
    """Budgets, each model's state, leases and keep-alive, and hit/load/eviction metrics."""
    try:
        snapshot = _pool().status()
    except SymphonyError as err:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": err.to_wire()}, indent=2))
        else:
            click.echo(f"error: {err}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(snapshot, indent=2, sort_keys=True))
    else:
        click.echo(render_status(snapshot))
