"""``symphony artifacts``: put, get, list, show, lineage, refs, verify, trash and restore.

Commands that print something a machine would read take ``--json``. The store is the kernel's
``artifact-store`` service (configured by ``[artifact_store]``), or the one at ``--root``.
Errors are SymphonyErrors: ``symphony`` prints them and exits 1 (with ``--json``, the error's
wire form is printed on stdout first).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from symphony.commons.errors import SymphonyError
from symphony_artifact_store._digest import Digest
from symphony_artifact_store._model import ArtifactInfo, LineageEdge, StoreConfig
from symphony_artifact_store._store import ArtifactStore

__all__ = ["artifacts"]

F = TypeVar("F", bound=Callable[..., Any])


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(fn)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


_ROOT_KEY = "symphony_artifact_store.root"
_WHOLE_GET_MAX = 64 << 20
"""Up to this size ``get`` to stdout reads and checks the whole artifact before writing it."""


@contextmanager
def _store(as_json: bool = False) -> Iterator[ArtifactStore]:
    """The store for this command; with ``--json`` an error is printed as JSON before it propagates."""
    root = click.get_current_context().meta.get(_ROOT_KEY)
    store: ArtifactStore | None = None
    owned = True
    try:
        store, owned = _open(root)
        yield store
    except SymphonyError as err:
        if as_json:
            _echo_json({"ok": False, "error": err.to_wire()})
        raise
    finally:
        if store is not None and owned:
            store.close()


def _open(root: str | None) -> tuple[ArtifactStore, bool]:
    """The store and whether this command owns it (the kernel's service is closed by the kernel)."""
    from symphony.cli import current_kernel

    kernel = current_kernel(required=False)
    if root is not None:
        config = StoreConfig.from_kernel(kernel) if kernel is not None else None
        return ArtifactStore(root, config=config), True
    if kernel is not None:
        return kernel.service("artifact-store"), False
    return ArtifactStore(), True


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@click.group("artifacts")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="Store root (default: [artifact_store] root, else the platform data dir).",
)
@click.pass_context
def artifacts(ctx: click.Context, root: str | None) -> None:
    """Store, read, list and verify artifacts; show lineage and refs."""
    ctx.meta[_ROOT_KEY] = root


@artifacts.command("put")
@click.argument("source", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--tag", "tags", multiple=True, help="Tag to add (repeatable).")
@click.option("--media-type", default=None, help="Media type, e.g. text/plain.")
@click.option("--parent", "parents", multiple=True, help="Digest this artifact was made from (repeatable).")
@click.option("--ref", default=None, help="Point this ref at the stored artifact.")
@click.option("--compress/--no-compress", default=None, help="Force zstd on or off (default: by media type).")
@click.option("--hardlink", is_flag=True, help="Import a file by hard link (it becomes read-only).")
@_json_option
def put_cmd(
    source: str,
    tags: tuple[str, ...],
    media_type: str | None,
    parents: tuple[str, ...],
    ref: str | None,
    compress: bool | None,
    hardlink: bool,
    as_json: bool,
) -> None:
    """Store a file (or stdin with -) and print its digest."""
    with _store(as_json) as store:
        data: Any = sys.stdin.buffer if source == "-" else source
        digest = store.put(
            data, media_type=media_type, tags=tags, parents=parents, compress=compress,
            link="hardlink" if hardlink else "auto", ref=ref,
        )  # fmt: skip
        if as_json:
            _echo_json({"ok": True, "digest": str(digest), "size": digest.size, "ref": ref})
        else:
            click.echo(str(digest))


@artifacts.command("get")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write to this file.")
@click.option("--no-verify", is_flag=True, help="Skip the digest check (verify_on_read decides otherwise).")
@_json_option
def get_cmd(name: str, output: str | None, no_verify: bool, as_json: bool) -> None:
    """Write an artifact (DIGEST, prefix or REF) to stdout or to -o PATH."""
    verify = False if no_verify else None
    with _store(as_json) as store:
        digest = store.resolve(name)
        if output is not None:
            store.get_to(digest, output, verify=verify)
            if as_json:
                _echo_json({"ok": True, "digest": str(digest), "path": output})
            return
        out = sys.stdout.buffer
        if digest.size <= _WHOLE_GET_MAX:  # checked before a byte is written
            out.write(store.get(digest, verify=verify))
        else:  # streamed: a corrupt object fails at its end, with a non-zero exit
            with store.open(digest, verify=verify) as reader:
                for chunk in reader:
                    out.write(chunk)
        out.flush()


@artifacts.command("ls")
@click.option("--tag", "tags", multiple=True, help="Only artifacts with this tag (repeatable: all of them).")
@click.option("--media-type", default=None, help="Only this media type (or type/*).")
@click.option("--workflow", default=None, help="Only artifacts produced by this workflow.")
@click.option("--run", "run_id", default=None, help="Only artifacts produced by this run.")
@click.option("--trashed", is_flag=True, help="List the trash instead.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@_json_option
def ls_cmd(
    tags: tuple[str, ...],
    media_type: str | None,
    workflow: str | None,
    run_id: str | None,
    trashed: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """List artifacts, oldest first."""
    with _store(as_json) as store:
        producer = {"workflow": workflow, "run": run_id} if (workflow or run_id) else None
        infos = store.list(
            tags=tags,
            media_type=media_type,
            producer=producer,
            state="trashed" if trashed else "present",
            limit=limit,
        )
        if as_json:
            _echo_json([i.to_dict() for i in infos])
            return
        for info in infos:
            tags_text = ",".join(info.tags) or "-"
            click.echo(
                f"{info.digest.short}  {_size(info.size):>10}  {info.media_type:<24}  {_when(info.created)}  {tags_text}"
            )


def _show_lines(info: ArtifactInfo, refs: list[str], children: list[Digest]) -> list[str]:
    lines = [
        f"digest:      {info.digest}",
        f"size:        {info.size} ({_size(info.size)}), stored {info.stored_size}",
        f"media type:  {info.media_type}",
        f"storage:     {'inline' if info.inline else info.tier}, {info.encoding}",
        f"state:       {info.state}{' (pinned)' if info.pinned else ''}",
        f"created:     {_when(info.created)}",
        f"last put:    {_when(info.last_put)} ({info.put_count} put{'' if info.put_count == 1 else 's'})",
        f"accessed:    {_when(info.accessed)}",
        f"tags:        {', '.join(info.tags) or '-'}",
    ]
    if info.producer is not None:
        p = info.producer
        lines.append(f"producer:    workflow={p.workflow or '-'} run={p.run or '-'} node={p.node or '-'}")
    if info.meta:
        lines.append(f"meta:        {json.dumps(dict(info.meta), sort_keys=True)}")
    lines.append(f"refs:        {', '.join(refs) or '-'}")
    lines.append(f"parents:     {', '.join(str(p) for p in info.parents) or '-'}")
    lines.append(f"children:    {', '.join(str(c) for c in children) or '-'}")
    return lines


@artifacts.command("show")
@click.argument("name")
@_json_option
def show_cmd(name: str, as_json: bool) -> None:
    """Show an artifact's metadata, refs and direct lineage."""
    with _store(as_json) as store:
        info = store.info(name)
        refs = [r.name for r in store.refs() if r.digest == info.digest]
        children = store.children(info.digest)
        if as_json:
            _echo_json({**info.to_dict(), "refs": refs, "children": [str(c) for c in children]})
            return
        click.echo("\n".join(_show_lines(info, refs, children)))


@artifacts.command("lineage")
@click.argument("name")
@click.option("--down", is_flag=True, help="Walk to what was made from it (default: what it was made from).")
@click.option("--depth", type=click.IntRange(min=1), default=None, help="At most this many steps.")
@_json_option
def lineage_cmd(name: str, down: bool, depth: int | None, as_json: bool) -> None:
    """Print an artifact's lineage as a tree."""
    with _store(as_json) as store:
        digest = store.resolve(name)
        edges = store.lineage(digest, direction="down" if down else "up", max_depth=depth)
        if as_json:
            _echo_json(
                {
                    "digest": str(digest),
                    "direction": "down" if down else "up",
                    "edges": [e.to_dict() for e in edges],
                }
            )
            return
        click.echo(str(digest))
        for line in _tree(digest, edges, down):
            click.echo(line)


def _tree(root: Digest, edges: list[LineageEdge], down: bool) -> list[str]:
    nexts: dict[Digest, list[Digest]] = {}
    for e in edges:
        src, dst = (e.parent, e.child) if down else (e.child, e.parent)
        nexts.setdefault(src, []).append(dst)
    lines: list[str] = []
    seen = {root}

    def walk(node: Digest, prefix: str) -> None:
        items = nexts.get(node, [])
        for i, item in enumerate(items):
            last = i == len(items) - 1
            again = item in seen
            lines.append(f"{prefix}{'└── ' if last else '├── '}{item}{' (see above)' if again else ''}")
            if not again:
                seen.add(item)
                walk(item, prefix + ("    " if last else "│   "))

    walk(root, "")
    return lines


@artifacts.group("refs", invoke_without_command=True)
@click.option("--prefix", default=None, help="Only refs starting with this.")
@_json_option
@click.pass_context
def refs_cmd(ctx: click.Context, prefix: str | None, as_json: bool) -> None:
    """List refs (or use a subcommand: set, history, delete)."""
    if ctx.invoked_subcommand is not None:
        return
    with _store(as_json) as store:
        entries = store.refs(prefix)
        if as_json:
            _echo_json([e.to_dict() for e in entries])
            return
        for e in entries:
            click.echo(f"{e.name}  {e.digest}  v{e.version}  {_when(e.time)}")


@refs_cmd.command("set")
@click.argument("name")
@click.argument("target")
@click.option("--expect", default=None, help="Only if the ref currently points here (compare-and-set).")
@click.option("--create", "create_only", is_flag=True, help="Only if the ref does not exist yet.")
@click.option("-m", "--message", default="", help="Why it moved (kept in the history).")
@_json_option
def refs_set_cmd(
    name: str, target: str, expect: str | None, create_only: bool, message: str, as_json: bool
) -> None:
    """Point ref NAME at TARGET (a digest, prefix or another ref)."""
    with _store(as_json) as store:
        entry = store.set_ref(name, target, if_match=expect, create_only=create_only, message=message)
        if as_json:
            _echo_json(entry.to_dict())
        else:
            click.echo(f"{entry.name} -> {entry.digest} (v{entry.version})")


@refs_cmd.command("history")
@click.argument("name")
@_json_option
def refs_history_cmd(name: str, as_json: bool) -> None:
    """Every version of ref NAME, oldest first."""
    with _store(as_json) as store:
        entries = store.ref_history(name)
        if as_json:
            _echo_json([e.to_dict() for e in entries])
            return
        for e in entries:
            note = f"  {e.message}" if e.message else ""
            click.echo(f"v{e.version}  {e.digest}  {_when(e.time)}{note}")


@refs_cmd.command("delete")
@click.argument("name")
@click.option("--expect", default=None, help="Only if the ref currently points here.")
def refs_delete_cmd(name: str, expect: str | None) -> None:
    """Remove ref NAME (its history stays)."""
    with _store() as store:
        store.delete_ref(name, if_match=expect)


@artifacts.command("verify")
@click.option("--quick", is_flag=True, help="Check presence and sizes only, without hashing.")
@click.option("--repair", is_flag=True, help="Adopt orphaned objects that are intact; remove the rest.")
@_json_option
@click.pass_context
def verify_cmd(ctx: click.Context, quick: bool, repair: bool, as_json: bool) -> None:
    """Check every object; exit 1 if something is missing, corrupt or orphaned."""
    with _store(as_json) as store:
        report = store.verify(hash=not quick, repair=repair)
        if as_json:
            _echo_json(report.to_dict())
        else:
            click.echo(f"checked {report.checked} artifacts: {'ok' if report.ok else 'PROBLEMS'}")
            for label, items in (
                ("missing", report.missing),
                ("corrupt", report.corrupt),
                ("orphaned", report.orphaned),
            ):
                for item in items:
                    click.echo(f"  {label}: {item}")
            for line in report.repaired:
                click.echo(f"  {line}")
        if not report.ok:
            ctx.exit(1)


@artifacts.command("trash")
@click.argument("names", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Trash pinned artifacts too.")
@_json_option
def trash_cmd(names: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Move artifacts to the trash (restore brings them back until the trash is emptied)."""
    with _store(as_json) as store:
        done = store.trash_many([store.resolve(n) for n in names], force=force)
        if as_json:
            _echo_json({"trashed": [str(d) for d in done]})
        else:
            for d in done:
                click.echo(f"trashed {d}")


@artifacts.command("restore")
@click.argument("names", nargs=-1, required=True)
@_json_option
def restore_cmd(names: tuple[str, ...], as_json: bool) -> None:
    """Bring artifacts back from the trash."""
    with _store(as_json) as store:
        restored = [str(store.resolve(n)) for n in names if store.restore(n)]
        if as_json:
            _echo_json({"restored": restored})
        else:
            for d in restored:
                click.echo(f"restored {d}")


@artifacts.command("stats")
@_json_option
def stats_cmd(as_json: bool) -> None:
    """Counts: artifacts, bytes, stored bytes, tiers, trash, deduplication."""
    with _store(as_json) as store:
        stats = store.stats()
        if as_json:
            _echo_json(stats.to_dict())
            return
        click.echo(f"artifacts:   {stats.objects} ({stats.inline} inline)")
        click.echo(f"bytes:       {_size(stats.bytes)}, stored {_size(stats.stored_bytes)}")
        click.echo(f"tiers:       {', '.join(f'{k} {v}' for k, v in stats.by_tier.items())}")
        click.echo(f"trash:       {stats.trashed} ({_size(stats.trashed_bytes)})")
        click.echo(f"dedup saved: {_size(stats.dedup_saved_bytes)} over {stats.puts} puts")
