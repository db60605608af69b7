"""``symphony artifacts gc | tier | trash list | trash empty``: the stale manager's commands.

They join the artifact store's ``symphony artifacts`` group (see :func:`extend_artifacts`), so
``--root`` given to the group applies to them as well. ``restore`` is the store's own command.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from symphony.commons.errors import SymphonyError
from symphony_stale_manager._manager import GcReport, StaleManager
from symphony_stale_manager._plan import Action
from symphony_stale_manager._policy import StalePolicy, parse_duration

__all__ = ["extend_artifacts", "gc_cmd", "tier_cmd", "trash_empty_cmd", "trash_list_cmd"]

_ROOT_KEY = "symphony_artifact_store.root"
"""Where the ``artifacts`` group keeps its ``--root`` option (click context meta)."""


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def _manager(as_json: bool) -> Iterator[StaleManager]:
    """The kernel's ``stale-manager`` service, or a manager over the store at ``--root``."""
    from symphony.cli import current_kernel

    kernel = current_kernel(required=False)
    root = click.get_current_context().meta.get(_ROOT_KEY)
    store = None
    try:
        if kernel is not None and root is None:
            yield kernel.service("stale-manager")
            return
        from symphony_artifact_store import ArtifactStore, StoreConfig

        if kernel is not None:
            from symphony_stale_manager.plugin import roots_of

            store = ArtifactStore(root, config=StoreConfig.from_kernel(kernel))
            yield StaleManager(store, StalePolicy.from_kernel(kernel), roots=roots_of(kernel))
        else:
            store = ArtifactStore(root)
            yield StaleManager(store)
    except SymphonyError as err:
        if as_json:
            _echo_json({"ok": False, "error": err.to_wire()})
        raise
    finally:
        if store is not None:
            store.close()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _action_lines(actions: Sequence[Action]) -> list[str]:
    return [f"{a.action:<8} {a.digest[:27]}…  {_size(a.size):>9}  {a.tier:<4}  {a.rule}" for a in actions]


def _print_report(report: GcReport) -> None:
    plan = report.plan
    for line in _action_lines(plan.actions):
        click.echo(line)
    counts = plan.counts()
    kept = ", ".join(f"{k} {v}" for k, v in sorted(plan.kept.items())) or "none"
    verb = "would" if report.dry_run else "did"
    click.echo(
        f"{plan.scanned} artifacts scanned; {verb}: trash {counts['trash']}, purge {counts['purge']},"
        f" restore {counts['restore']}, warm {counts['warm']}, cold {counts['cold']}; kept by rule: {kept}"
    )
    if not report.dry_run:
        click.echo(
            f"trashed {len(report.trashed)}, purged {len(report.purged)}, restored {len(report.restored)},"
            f" moved {len(report.moved)}, skipped {len(report.skipped)} in {report.seconds:.3f} s"
        )
        for digest, reason in report.skipped:
            click.echo(f"skipped  {digest[:27]}…  {reason}")


_json = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


@click.command("gc")
@click.option(
    "--dry-run", is_flag=True, help="Only list what would move or go, and the rule that decided it."
)
@click.option("--no-tiers", is_flag=True, help="Do not move artifacts between tiers.")
@_json
def gc_cmd(dry_run: bool, no_tiers: bool, as_json: bool) -> None:
    """Collect garbage: trash what no rule keeps, purge old trash, move idle artifacts to colder tiers."""
    with _manager(as_json) as manager:
        report = manager.gc(dry_run=dry_run, tiers=not no_tiers)
        if as_json:
            _echo_json(report.to_dict())
        else:
            _print_report(report)


@click.command("tier")
@click.option("--dry-run", is_flag=True, help="Only list what would move, and why.")
@_json
def tier_cmd(dry_run: bool, as_json: bool) -> None:
    """Move idle artifacts hot -> warm (compressed in place) -> cold (the cold root); deletes nothing."""
    with _manager(as_json) as manager:
        report = manager.gc(dry_run=dry_run, delete=False, trigger="tier")
        if as_json:
            _echo_json(report.to_dict())
        else:
            _print_report(report)


@click.command("list")
@_json
def trash_list_cmd(as_json: bool) -> None:
    """List the trash (``symphony artifacts restore DIGEST`` brings one back)."""
    with _manager(as_json) as manager:
        items = manager.trash_list()
        if as_json:
            _echo_json([a.to_dict() for a in items])
            return
        for line in _action_lines(items):
            click.echo(line.replace("purge   ", "trashed ", 1))
        click.echo(f"{len(items)} in the trash, {_size(sum(a.size for a in items))}")


@click.command("empty")
@click.option("--older-than", default=None, help="Only what was trashed longer ago than this (e.g. 7d, 36h).")
@_json
def trash_empty_cmd(older_than: str | None, as_json: bool) -> None:
    """Delete the trash for good (artifacts a rule keeps again are restored instead)."""
    with _manager(as_json) as manager:
        seconds = None if older_than is None else parse_duration(older_than, field="--older-than")
        purged = manager.empty_trash(older_than=seconds)
        if as_json:
            _echo_json({"purged": purged})
            return
        for digest in purged:
            click.echo(f"purged {digest}")
        click.echo(f"{len(purged)} purged")


class TrashGroup(click.Group):
    """``trash list``, ``trash empty``; any other arguments go to the store's own ``trash NAME...``."""

    def __init__(self, fallback: click.Command | None) -> None:
        super().__init__(
            "trash",
            help="List or empty the trash: `trash list`, `trash empty`; `trash NAME...` moves artifacts to it.",
            context_settings={"ignore_unknown_options": True},
        )
        self.fallback = fallback
        self.add_command(trash_list_cmd)
        self.add_command(trash_empty_cmd)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and self.fallback is not None:
            return "trash", self.fallback, args
        return super().resolve_command(ctx, args)


def extend_artifacts(group: click.Group) -> None:
    """Add ``gc``, ``tier`` and ``trash list|empty`` to the ``symphony artifacts`` group (idempotent).

    The store's ``trash NAME...`` keeps working: ``trash`` becomes a group whose unknown first
    argument is handed to it (``trash -- list`` trashes an artifact or ref named ``list``).
    """
    group.add_command(gc_cmd)
    group.add_command(tier_cmd)
    current = group.commands.get("trash")
    if not isinstance(current, TrashGroup):
        group.add_command(TrashGroup(current))
