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


def _fail(err: SymphonyError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": err.to_wire()}, indent=2, default=str))
    else:
        lines = [f"error: {plain(err.message, newlines=True)}"]
        for key, value in err.context.items():
            if key not in ("issues", "traceback", "installed"):
                lines.append(f"  {plain(key)}: {plain(value)}")
        if err.hint:
            lines.append(f"  hint: {plain(err.hint)}")
        lines.append(f"  code: {plain(err.code)}")
        click.echo("\n".join(lines), err=True)
    sys.exit(EXIT_FAILED)


def _open_kernel(state: CliState) -> Any:
    from symphony.kernel import Kernel

    return Kernel.open(state.config_path, env=state.env, strict=state.strict, autoload=state.autoload)


def build_request(conductor: Any, target: str | None, inputs: Sequence[str], params: Sequence[str],
                  template_version: str | None, resume: str | None) -> Any:
    """A :class:`RunRequest` from the command line: TARGET is a workflow file when such a file
    exists, else a template id; ``--param`` text is typed by the template's parameter types."""
    from symphony_conductor._request import RunRequest, coerce_parameter, split_assignment

    values: dict[str, Any] = {}
    for text in inputs:
        node, raw = split_assignment(text, "input")
        values[node] = conductor.read_input(raw[1:]) if raw.startswith("@") else raw
    if resume is not None and target is None:
        return RunRequest(resume=resume, inputs=values)
    if target is None:
        raise click.UsageError("give a workflow file or a template id (or --resume RUN_ID)")
    is_file = Path(target).is_file() or target.endswith((".json", ".msgpack", ".bin"))
    if is_file:
        if params:
            raise click.UsageError("--param fills a template; TARGET is a workflow file")
        return RunRequest(workflow=target, inputs=values, resume=resume)
    template = conductor.workflows.templates.get(target, template_version)
    typed = dict(
        (name, coerce_parameter(template, name, raw))
        for name, raw in (split_assignment(p, "parameter") for p in params)
    )
    return RunRequest(template=target, template_version=template_version, params=typed, inputs=values, resume=resume)


async def _watch(kernel: Any, conductor: Any, plan: Any, as_json: bool) -> int:
    import anyio

    from symphony_conductor._view import RunView

    console = None
    live = False
    if not as_json:
        from rich.console import Console

        console = Console()
        live = bool(console.is_terminal)
    view = RunView(plan.run_id, live=live, echo=click.echo if not as_json else (lambda _line: None))
    with kernel.bus.subscribe("run.#", buffer=100_000, policy="drop-oldest") as sub:
        run = await conductor.submit(plan)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:

                async def on_signal() -> None:
                    async for _ in signals:
                        conductor.interrupt(run.id)
                        return

                tg.start_soon(on_signal)
                if live:
                    from rich.live import Live

                    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as screen:
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
@click.option("--input", "-i", "inputs", multiple=True, metavar="NODE=VALUE|NODE=@FILE",
              help="A value for an input node (repeatable); @FILE reads the file.")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A template parameter (repeatable), typed by the template.")
@click.option("--version", "template_version", default=None, metavar="CONSTRAINT",
              help="Template version constraint (e.g. ^1.1); default the latest.")
@click.option("--resume", default=None, metavar="RUN_ID", help="Finish an interrupted or killed run.")
@click.option("--json", "as_json", is_flag=True, help="Print the final run status as JSON (no live view).")
def run(target: str | None, inputs: tuple[str, ...], params: tuple[str, ...], template_version: str | None,
        resume: str | None, as_json: bool) -> None:
    """Run TARGET (a workflow file or a template id) and show it live.

    Ends with a summary and the outputs (small values printed, artifacts by digest). Exit
    status: 0 completed, 1 failed, 130 interrupted (Ctrl-C prints how to resume).
    """
    import anyio

    state = _state()

    async def main() -> int:
        async with _open_kernel(state) as kernel:
            conductor = await kernel.aservice("conductor")
            try:
                request = build_request(conductor, target, inputs, params, template_version, resume)
                plan = conductor.prepare(request)
            except SymphonyError as err:
                _fail(err, as_json)
            for warning in plan.warnings:
                if not as_json:
                    click.echo(f"warning: {plain(warning)}", err=True)
            return await _watch(kernel, conductor, plan, as_json)

    sys.exit(anyio.run(main))


@click.group("runs")
def runs() -> None:
    """List, show, follow and steer runs."""
