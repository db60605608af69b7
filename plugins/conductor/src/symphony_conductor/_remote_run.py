"""``symphony run --server URL``: run a workflow in a served kernel (``symphony serve``).

The workflow file and the ``--input NODE=@FILE`` files are read here and sent as a document
and values in a ``run.submit`` request; a template id travels with its parameters as text.
Progress comes from the server's ``run.*`` events (subscribed before submitting) and
``run.status``; the view, summary and exit codes are those of a local run. Ctrl-C sends
``run.control`` cancel and prints how to resume on the server.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from symphony.cli import plain
from symphony.commons.errors import SymphonyError, TransportError, ValidationError, sole_exception

__all__ = ["remote_url", "run_remote"]

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

_URL_ERRORS = frozenset({"transport.bad_url", "transport.unknown_scheme", "transport.unix.path_too_long"})
_GONE = frozenset(
    {"transport.peer_lost", "transport.disconnected", "bus.subscription_closed", "transport.connect_failed"}
)
_POLL_SECONDS = 2.0
"""How long the event stream may stay quiet before ``run.status`` is asked (a lost event)."""


def remote_url(server: str | None, socket_path: Path | None) -> str | None:
    """The server URL ``--server``/``--socket`` name (``None`` for a local run); both is a usage error."""
    if server is not None and socket_path is not None:
        raise click.UsageError("give either --server or --socket, not both")
    if socket_path is not None:
        return f"unix://{socket_path.absolute()}"
    if server is not None and "://" not in server:
        raise click.BadParameter(
            f"{server!r} is not a server URL: write unix:///path/to.sock (or use --socket PATH) or "
            "tcp://HOST:PORT",
            param_hint="'--server'",
        )
    return server


def _document(target: str) -> dict[str, Any]:
    """The workflow document of file ``target`` (JSON), read on this side."""
    from symphony.commons.fs import read_bytes
    from symphony_conductor._conductor import DEFAULT_MAX_INPUT_BYTES

    data = read_bytes(target, max_size=DEFAULT_MAX_INPUT_BYTES)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError(
            f"{target} is not a JSON workflow document: {exc}",
            code="conductor.remote.bad_workflow",
            context={"path": target},
            hint="a served kernel is sent the workflow as JSON; "
            "`symphony workflow convert` writes a binary one as JSON",
        ) from None
    if not isinstance(doc, dict):
        raise ValidationError(
            f"{target} is not a workflow document (a JSON object)",
            code="conductor.remote.bad_workflow",
            context={"path": target},
        )
    return doc


def build_payload(
    target: str | None,
    inputs: Sequence[str],
    params: Sequence[str],
    template_version: str | None,
    resume: str | None,
) -> dict[str, Any]:
    """The ``run.submit`` payload of the command line (files read here)."""
    from symphony.commons.fs import read_bytes
    from symphony_conductor._conductor import DEFAULT_MAX_INPUT_BYTES
    from symphony_conductor._request import split_assignment

    if resume is not None:
        if inputs or params:
            raise click.UsageError(
                "--resume finishes a run with its own inputs and parameters; drop --input/--param"
            )
        payload: dict[str, Any] = {"resume": resume}
        if target is not None and Path(target).is_file():
            payload["workflow"] = _document(target)
        return payload
    if target is None:
        raise click.UsageError("give a workflow file or a template id (or --resume RUN_ID)")
    values: dict[str, Any] = {}
    for text in inputs:
        node, raw = split_assignment(text, "input")
        values[node] = read_bytes(raw[1:], max_size=DEFAULT_MAX_INPUT_BYTES) if raw.startswith("@") else raw
    if Path(target).is_file() or target.endswith((".json", ".msgpack", ".bin")):
        if params:
            raise click.UsageError("--param fills a template; TARGET is a workflow file")
        return {"workflow": _document(target), "inputs": values}
    payload = {
        "template": target,
        "param_text": dict(split_assignment(p, "parameter") for p in params),
        "inputs": values,
    }
    if template_version is not None:
        payload["template_version"] = template_version
    return payload


async def _follow(client: Any, sub: Any, view: Any, run_id: str, refresh: Any) -> None:
    """Feed ``run.*`` events to ``view`` until the run finished (``run.status`` settles a quiet stream)."""
    from symphony.commons.errors import OperationTimeoutError

    while view.final is None:
        try:
            msg = await sub.receive(timeout=_POLL_SECONDS)
        except OperationTimeoutError:
            status = (await client.request("run.status", {"run_id": run_id}, timeout=30)).payload
            if not status.get("live", True):
                return
            continue
        view.feed(msg.type, msg.payload or {})
        refresh()


async def _watch(client: Any, sub: Any, run_id: str, url: str, as_json: bool) -> int:
    import anyio

    from symphony_conductor._view import RunView

    status = (await client.request("run.status", {"run_id": run_id}, timeout=30)).payload
    console = None
    live = False
    if not as_json:
        from rich.console import Console

        console = Console()
        live = bool(console.is_terminal)
    view = RunView(
        run_id,
        live=live,
        echo=click.echo if not as_json else (lambda _line: None),
        nodes={n: str(r.get("type", "")) for n, r in (status.get("nodes") or {}).items()},
        workflow=str(status.get("workflow") or ""),
    )
    cancelled = False
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def on_signal() -> None:
                nonlocal cancelled
                async for _ in signals:
                    cancelled = True
                    try:
                        await client.request(
                            "run.control", {"run_id": run_id, "command": "cancel"}, timeout=30
                        )
                    except SymphonyError as err:
                        if err.code != "conductor.run_finished":
                            raise
                    return

            tg.start_soon(on_signal)
            if live:
                from rich.live import Live

                with Live(view.render(), console=console, refresh_per_second=8, transient=False) as screen:
                    await _follow(client, sub, view, run_id, lambda: screen.update(view.render()))
            else:
                await _follow(client, sub, view, run_id, lambda: None)
            tg.cancel_scope.cancel()
    status = dict((await client.request("run.status", {"run_id": run_id}, timeout=30)).payload)
    if view.final is None:
        view.feed("run.finished", {"run_id": run_id, **status})
    if as_json:
        click.echo(json.dumps(status, indent=2, default=str, ensure_ascii=False))
    else:
        for line in view.summary_lines():
            click.echo(line)
        if cancelled:
            click.echo(
                f"interrupted: the run is cancelled on the server; resume with: "
                f"symphony run --resume {run_id} --server {url}"
            )
    if cancelled:
        return EXIT_INTERRUPTED
    return 0 if status.get("state") == "completed" else EXIT_FAILED


def run_remote(
    url: str,
    payload: dict[str, Any],
    as_json: bool,
    fail: Callable[[SymphonyError, bool], NoReturn],
    user_url: bool,
) -> int:
    """Submit ``payload`` to the server at ``url`` and follow the run; return the exit status.

    ``fail(err, as_json)`` reports an error and exits 1; a malformed URL the user gave is a
    usage error (exit 2); a server that goes away is an error naming it (exit 1).
    """
    import anyio

    from symphony_bus_remote import BusClient

    async def main() -> int:
        async with BusClient.connect(url, reconnect=False, name="symphony-run", default_timeout=30) as client:
            async with client.subscribe("run.#", buffer=100_000, policy="drop-oldest") as sub:
                reply = await client.request("run.submit", payload, timeout=60)
                run_id = str(reply.payload["run_id"])
                return await _watch(client, sub, run_id, url, as_json)

    try:
        return int(anyio.run(main))
    except BaseExceptionGroup as group:  # the task group following the run wraps what crossed it
        err = sole_exception(group)
        if not isinstance(err, SymphonyError):
            raise
        _report(err, url, as_json, fail, user_url)
    except SymphonyError as err:
        _report(err, url, as_json, fail, user_url)


def _report(
    err: SymphonyError,
    url: str,
    as_json: bool,
    fail: Callable[[SymphonyError, bool], NoReturn],
    user_url: bool,
) -> NoReturn:
    if err.code in _URL_ERRORS and user_url:
        raise click.BadParameter(err.message, param_hint="'--server'") from None
    if err.code in _GONE:
        fail(
            TransportError(
                f"the server went away: {err.context.get('reason') or err.message}",
                code="conductor.remote.server_gone",
                context={"url": plain(url)},
                hint="is `symphony serve` still running? `symphony runs list` on the server "
                "shows what became of the run",
            ),
            as_json,
        )
    fail(err, as_json)
