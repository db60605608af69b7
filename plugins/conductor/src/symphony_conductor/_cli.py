"""``symphony run`` and ``symphony runs``: run workflows through the conductor and watch them.

``symphony run`` opens a running kernel of its own (like ``symphony serve``), asks the
conductor to run the workflow, and shows the run's ``run.*`` events: a live table on a
terminal, one line per node change otherwise. It exits 0 when the run completed, 1 when it
failed or could not start, and 130 after Ctrl-C, which interrupts the run (running nodes are
cancelled, nothing is left running) and prints the command that resumes it.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from symphony.cli import CliState, plain
from symphony.commons.errors import SymphonyError

__all__ = ["run", "runs"]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _state() -> CliState:
    ctx = click.get_current_context()
    state = ctx.find_object(CliState)
    return state if state is not None else CliState()


_SAID_IN_MESSAGE = frozenset({"issues", "traceback", "installed", "missing", "nodes"})
"""Context keys an error's message already spells out (left out of the lines under it)."""


def _fail(err: SymphonyError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": err.to_wire()}, indent=2, default=str))
    else:
        lines = [f"error: {plain(err.message, newlines=True)}"]
        for key, value in err.context.items():
            if key not in _SAID_IN_MESSAGE and value not in (None, "", [], {}):
                lines.append(f"  {plain(key)}: {plain(value)}")
        if err.hint:
            lines.append(f"  hint: {plain(err.hint)}")
        lines.append(f"  code: {plain(err.code)}")
        click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_FAILED)


def _open_kernel(state: CliState) -> Any:
    from symphony.kernel import Kernel

    return Kernel.open(state.config_path, env=state.env, strict=state.strict, autoload=state.autoload)


def build_request(
    conductor: Any,
    target: str | None,
    inputs: Sequence[str],
    params: Sequence[str],
    template_version: str | None,
    resume: str | None,
    priority: str = "normal",
) -> Any:
    """A :class:`RunRequest` from the command line: TARGET is a workflow file when such a file
    exists, else a template id; ``--param`` text is typed by the template's parameter types."""
    from symphony_conductor._request import RunRequest, coerce_parameter, split_assignment

    if resume is not None:
        if inputs or params:
            raise click.UsageError(
                "--resume finishes a run with its own inputs and parameters; drop --input/--param"
            )
        is_file = target is not None and Path(target).is_file()
        return RunRequest(workflow=target if is_file else None, resume=resume, priority=priority)
    values: dict[str, Any] = {}
    for text in inputs:
        node, raw = split_assignment(text, "input")
        values[node] = conductor.read_input(raw[1:]) if raw.startswith("@") else raw
    if target is None:
        raise click.UsageError("give a workflow file or a template id (or --resume RUN_ID)")
    is_file = Path(target).is_file() or target.endswith((".json", ".msgpack", ".bin"))
    if is_file:
        if params:
            raise click.UsageError("--param fills a template; TARGET is a workflow file")
        return RunRequest(workflow=target, inputs=values, priority=priority)
    template = conductor.workflows.templates.get(target, template_version)
    typed = dict(
        (name, coerce_parameter(template, name, raw))
        for name, raw in (split_assignment(p, "parameter") for p in params)
    )
    return RunRequest(
        template=target, template_version=template_version, params=typed, inputs=values, priority=priority
    )


async def _watch(kernel: Any, conductor: Any, run: Any, as_json: bool) -> int:
    """Show ``run`` (just started: call this before awaiting anything else) until it ends;
    return the exit status."""
    import anyio

    from symphony_conductor._view import RunView

    console = None
    live = False
    if not as_json:
        from rich.console import Console

        console = Console()
        live = bool(console.is_terminal)
    view = RunView(
        run.id,
        live=live,
        echo=click.echo if not as_json else (lambda _line: None),
        nodes={n.id: n.type for n in run.plan.workflow.nodes.values()},
        workflow=run.plan.workflow.name,
    )
    with kernel.bus.subscribe("run.#", buffer=100_000, policy="drop-oldest") as sub:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:

                async def on_signal() -> None:
                    async for _ in signals:
                        conductor.interrupt(run.id)
                        return

                tg.start_soon(on_signal)
                if live:
                    from rich.live import Live

                    with Live(
                        view.render(), console=console, refresh_per_second=8, transient=False
                    ) as screen:
                        await _pump(sub, view, run, lambda: screen.update(view.render()))
                else:
                    await _pump(sub, view, run, lambda: None)
                tg.cancel_scope.cancel()
    await run.done.wait()
    status = run.status()
    if view.final is None:
        view.feed("run.finished", {"run_id": run.id, **status})
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str, ensure_ascii=False))
    else:
        for line in view.summary_lines():
            click.echo(line)
        if run.interrupted:
            click.echo(f"interrupted: nothing is left running; resume with: symphony run --resume {run.id}")
    if run.interrupted:
        return EXIT_INTERRUPTED
    return 0 if run.state == "completed" else EXIT_FAILED


async def _pump(sub: Any, view: Any, run: Any, refresh: Any) -> None:
    import anyio

    while not run.done.is_set():
        with anyio.move_on_after(0.25):
            msg = await sub.receive()
            view.feed(msg.type, msg.payload or {})
        refresh()
    while (msg := sub.receive_nowait()) is not None:
        view.feed(msg.type, msg.payload or {})
    refresh()


@click.command("run")
@click.argument("target", required=False)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="NODE=VALUE|NODE=@FILE",
    help="A value for an input node (repeatable); @FILE reads the file.",
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A template parameter (repeatable), typed by the template.",
)
@click.option(
    "--version",
    "template_version",
    default=None,
    metavar="CONSTRAINT",
    help="Template version constraint (e.g. ^1.1); default the latest.",
)
@click.option("--resume", default=None, metavar="RUN_ID", help="Finish an interrupted or killed run.")
@click.option(
    "--priority",
    type=click.Choice(["critical", "high", "normal", "low", "background"]),
    default="normal",
    show_default=True,
    help="Arbitration class of the run's instrument nodes (models from the pool).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final run status as JSON (no live view).")
@click.option(
    "--server",
    default=None,
    metavar="URL",
    help="Run in the served kernel at URL (unix:///PATH or tcp://HOST:PORT) instead of here.",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run in the served kernel on this Unix socket (as given to `symphony serve --socket`).",
)
def run(
    target: str | None,
    inputs: tuple[str, ...],
    params: tuple[str, ...],
    template_version: str | None,
    resume: str | None,
    priority: str,
    as_json: bool,
    server: str | None,
    socket_path: Path | None,
) -> None:
    """Run TARGET (a workflow file or a template id) and show it live.

    Ends with a summary and the outputs (small values printed, artifacts by digest). Exit
    status: 0 completed, 1 failed, 130 interrupted (Ctrl-C prints how to resume).
    """
    import anyio

    from symphony_conductor._remote_run import build_payload, remote_url, run_remote

    url = remote_url(server, socket_path)
    if url is not None:
        try:
            payload = build_payload(target, inputs, params, template_version, resume)
        except SymphonyError as err:
            _fail(err, as_json)
        sys.exit(run_remote(url, payload, as_json, _fail, user_url=server is not None))
    state = _state()

    async def main() -> int:
        async with _open_kernel(state) as kernel:
            conductor = await kernel.aservice("conductor")
            try:
                request = build_request(conductor, target, inputs, params, template_version, resume, priority)
                plan = conductor.prepare(request) if resume is None else None
                if resume is not None:
                    started = await conductor.resume(resume, workflow=request.workflow, priority=priority)
                else:
                    started = await conductor.submit(plan)
            except SymphonyError as err:
                _fail(err, as_json)
            for warning in started.plan.warnings:
                if not as_json:
                    click.echo(f"warning: {plain(warning)}", err=True)
            return await _watch(kernel, conductor, started, as_json)

    sys.exit(anyio.run(main))


@click.group("runs")
def runs() -> None:
    """List, show, follow and steer runs."""


def _json_option(fn: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(fn)


def _with_conductor(as_json: bool, body: Any) -> Any:
    """Run ``await body(kernel, conductor)`` in a running kernel; errors end the command (exit 1)."""
    import anyio

    state = _state()

    async def main() -> Any:
        async with _open_kernel(state) as kernel:
            conductor = await kernel.aservice("conductor")
            try:
                return await body(kernel, conductor)
            except SymphonyError as err:
                _fail(err, as_json)

    return anyio.run(main)


def _when(stamp: Any) -> str:
    if not stamp:
        return ""
    import datetime

    return datetime.datetime.fromtimestamp(float(stamp)).strftime("%Y-%m-%d %H:%M:%S")


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal, tab-separated lines otherwise; every cell escaped."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(plain(c) for c in row))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(Text(plain(c)) for c in row))
    console.print(table)


@runs.command("list")
@click.option(
    "--state", default=None, help="Only runs in this state (completed, failed, cancelled, running...)."
)
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="How many runs."
)
@_json_option
def runs_list(state: str | None, limit: int, as_json: bool) -> None:
    """The most recent runs, newest first."""
    from symphony_conductor._view import format_seconds

    async def body(kernel: Any, conductor: Any) -> list[dict[str, Any]]:
        return list(conductor.list_runs(state=state, limit=limit))

    rows = _with_conductor(as_json, body)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    _table(
        ["run", "workflow", "state", "started", "time"],
        [
            [
                r["run_id"],
                r.get("workflow") or "",
                r["state"],
                _when(r.get("started_at")),
                format_seconds(r.get("duration")),
            ]
            for r in rows
        ],
    )


@runs.command("show")
@click.argument("run_id")
@_json_option
def runs_show(run_id: str, as_json: bool) -> None:
    """A run's state, error and nodes (from its checkpoint log)."""

    async def body(kernel: Any, conductor: Any) -> dict[str, Any]:
        return dict(conductor.status(run_id))

    status = _with_conductor(as_json, body)
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
        return
    click.echo(f"run {plain(status['run_id'])}: {plain(status.get('workflow'))} {status['state']}")
    click.echo(
        f"  started {_when(status.get('started_at'))}, last change {_when(status.get('finished_at') or '')}".rstrip(
            ", "
        )
    )
    if status.get("error"):
        click.echo(f"  error: {plain(status['error'], newlines=True)}")
    nodes = status.get("nodes") or {}
    _table(
        ["node", "state", "attempt", "error"],
        [
            [n, str(r.get("state")), str(r.get("attempt") or ""), str(r.get("error") or "")]
            for n, r in nodes.items()
        ],
    )
    if status["state"] not in ("completed", "failed", "cancelled"):
        click.echo(f"resume with: symphony run --resume {status['run_id']}")


@runs.command("logs")
@click.argument("run_id")
@_json_option
def runs_logs(run_id: str, as_json: bool) -> None:
    """Every transition of a run's checkpoint log, in order."""

    async def body(kernel: Any, conductor: Any) -> list[dict[str, Any]]:
        return list(conductor.logs(run_id))

    entries = _with_conductor(as_json, body)
    if as_json:
        click.echo(json.dumps(entries, indent=2, default=str))
        return
    for e in entries:
        detail = ""
        if isinstance(e.get("data"), dict) and e["data"].get("error"):
            detail = f"  {str(e['data']['error']).splitlines()[0]}"
        attempt = f" (attempt {e['attempt']})" if e.get("attempt", 0) > 1 else ""
        click.echo(plain(f"{e['seq']:>5}  {e['node'] or '(run)'}  {e['event']}{attempt}{detail}"))


@runs.command("output")
@click.argument("run_id")
@click.argument("node")
@click.option(
    "--output",
    "-o",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the value to this file (bytes as they are, text as UTF-8, other values as JSON).",
)
def runs_output(run_id: str, node: str, target: Path | None) -> None:
    """Print the value output node NODE of a run produced (text as is, other values as JSON)."""

    async def body(kernel: Any, conductor: Any) -> Any:
        return conductor.output(run_id, node)

    value = _with_conductor(False, body)
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = (json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    if target is not None:
        from symphony.commons.fs import atomic_write

        atomic_write(target, data)
        click.echo(f"wrote {plain(target)} ({len(data)} bytes)")
    elif isinstance(value, bytes | bytearray):
        sys.stdout.buffer.write(data)
    else:
        click.echo(plain(data.decode("utf-8"), newlines=True), nl=not data.endswith(b"\n"))


async def _served_control(kernel: Any, run_id: str, command: str, node: str | None) -> dict[str, Any] | None:
    """``run.control`` through the served kernel on the configured socket; ``None`` if none listens."""
    from symphony_bus_remote import BusClient, served_socket

    path = served_socket(kernel.config.get("bus.socket"))
    if not path.exists():
        return None

    payload: dict[str, Any] = {"run_id": run_id, "command": command}
    if node is not None:
        payload["node"] = node
    try:
        async with BusClient.connect(f"unix://{path}", reconnect=False) as client:
            reply = await client.request("run.control", payload, timeout=30)
    except SymphonyError as err:
        if err.code in ("conductor.run_not_found",) or err.code.startswith("transport."):
            return None
        raise
    return dict(reply.payload)


def _steer(run_id: str, command: str, node: str | None, as_json: bool) -> None:
    async def body(kernel: Any, conductor: Any) -> dict[str, Any]:
        from symphony.commons.errors import ConflictError

        served = await _served_control(kernel, run_id, command, node)
        if served is not None:
            return served
        status = conductor.status(run_id)  # NotFoundError naming the recent runs
        raise ConflictError(
            f"run {run_id} is not running in a served kernel (it is {status['state']}); "
            f"`symphony runs {command}` steers runs of `symphony serve` over its bus",
            code="conductor.run_not_live",
            context={"run_id": run_id, "state": status["state"]},
            hint=f"a run of `symphony run` stops with Ctrl-C in its terminal; "
            f"`symphony run --resume {run_id}` finishes an interrupted one",
        )

    _accepted(run_id, command, _with_conductor(as_json, body), as_json)


def _accepted(run_id: str, what: str, status: dict[str, Any], as_json: bool) -> None:
    """Report a steering command the served kernel accepted, with the run's state now."""
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str))
    else:
        click.echo(f"run {plain(run_id)}: {plain(what)} accepted; now {status.get('state')}")


@runs.command("pause")
@click.argument("run_id")
@_json_option
def runs_pause(run_id: str, as_json: bool) -> None:
    """Pause a run of the served kernel: running nodes finish, nothing new starts."""
    _steer(run_id, "pause", None, as_json)


@runs.command("cancel")
@click.argument("run_id")
@_json_option
def runs_cancel(run_id: str, as_json: bool) -> None:
    """Cancel a run of the served kernel (its running nodes are cancelled)."""
    _steer(run_id, "cancel", None, as_json)


@runs.command("resume")
@click.argument("run_id")
@_json_option
def runs_resume(run_id: str, as_json: bool) -> None:
    """Resume a paused run of the served kernel, or finish an interrupted run here (live view)."""

    async def body(kernel: Any, conductor: Any) -> int:
        served = await _served_control(kernel, run_id, "resume", None)
        if served is not None:
            _accepted(run_id, "resume", served, as_json)
            return 0
        run = await conductor.resume(run_id)
        return await _watch(kernel, conductor, run, as_json)

    sys.exit(_with_conductor(as_json, body))


@runs.command("retry")
@click.argument("run_id")
@click.argument("node")
@_json_option
def runs_retry(run_id: str, node: str, as_json: bool) -> None:
    """Retry NODE of a run: in the served kernel while it runs, else finish the failed run here
    (completed nodes come from the memo, NODE runs again)."""

    async def body(kernel: Any, conductor: Any) -> int:
        served = await _served_control(kernel, run_id, "retry-node", node)
        if served is not None:
            _accepted(run_id, f"retry of {node}", served, as_json)
            return 0
        run = await conductor.retry(run_id, node)
        return await _watch(kernel, conductor, run, as_json)

    sys.exit(_with_conductor(as_json, body))
