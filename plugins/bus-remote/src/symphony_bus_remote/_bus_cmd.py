"""``symphony bus``: send, request and monitor messages on a running ``symphony serve``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from symphony.cli import CliState, echo_json


def _payload(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        from symphony.commons.errors import ValidationError

        raise ValidationError(
            f"PAYLOAD is not JSON: {exc}",
            code="cli.bad_payload",
            context={"payload": text[:200]},
            hint='quote it for the shell, e.g. \'{"name": "ada"}\'',
        ) from None


def _client_kwargs(
    state: CliState, url: str | None, token_file: str | None, codec: str | None
) -> dict[str, Any]:
    from symphony_bus_remote._serve_cmd import served_socket

    kernel = state.kernel()  # transports come from the kernel: disabled plugins stay disabled
    if url is None:
        url = f"unix://{served_socket(kernel.config.get('bus.socket'))}"
    options: dict[str, Any] = {}
    if token_file:
        options["token_file"] = token_file
    kwargs: dict[str, Any] = {
        "url": url,
        "options": options,
        "reconnect": False,
        "name": "symphony-cli",
        "kernel": kernel,
    }
    if codec:
        kwargs["codec"] = codec
    return kwargs


@click.group()
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Unix socket of the server, as given to `symphony serve --socket` (default: bus.socket, "
    "else the platform default).",
)
@click.option(
    "--url",
    default=None,
    help="Server URL instead: unix:///PATH or tcp://HOST:PORT (with --token-file).",
)
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), help="Token for tcp:// servers.")
@click.option(
    "--codec", type=click.Choice(["msgpack", "json"]), default=None, help="Wire codec (default msgpack)."
)
@click.pass_context
def bus(
    ctx: click.Context, socket_path: Path | None, url: str | None, token_file: str | None, codec: str | None
) -> None:
    """Send, request and monitor messages on a running `symphony serve`, and list what it answers.

    A client notices a server that stopped or died (closed socket, or silence past the heartbeat
    timeout) and exits with an error saying so.
    """
    if socket_path is not None and url is not None:
        raise click.UsageError("give either --socket or --url, not both")
    if socket_path is not None:
        url = f"unix://{socket_path.absolute()}"
    elif url is not None:
        _check_url(url)
    ctx.meta["symphony.bus"] = (url, token_file, codec)
    ctx.meta["symphony.bus.user_url"] = url is not None


def _check_url(url: str) -> None:
    """A malformed --url is a usage error (exit 2), named with what a URL looks like."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    ok = bool(scheme) and all(c.isalnum() or c in "+-." for c in scheme) and scheme[0].isalpha()
    rest = url[len(scheme) + 1 :] if ok else ""
    if scheme == "unix":
        ok = rest.startswith("///") or (bool(rest) and not rest.startswith("/"))
    elif scheme == "tcp":
        host, sep, port = rest.removeprefix("//").rpartition(":")
        ok = rest.startswith("//") and bool(host) and bool(sep) and port.isdigit() and 0 < int(port) <= 65535
    elif ok:
        ok = bool(rest)
    if not ok:
        raise click.BadParameter(
            f"{url!r} is not a server URL: write unix:///path/to.sock (or use --socket PATH) or "
            "tcp://HOST:PORT",
            param_hint="'--url'",
        )


def _kwargs(ctx: click.Context) -> dict[str, Any]:
    url, token_file, codec = ctx.meta["symphony.bus"]
    return _client_kwargs(ctx.find_object(CliState) or CliState(), url, token_file, codec)


_URL_ERRORS = frozenset({"transport.bad_url", "transport.unknown_scheme", "transport.unix.path_too_long"})


def _run(ctx: click.Context, fn: Callable[[], Any]) -> Any:
    """``anyio.run(fn)``. A URL the user gave that the transport finds malformed is a usage
    error (exit 2); a server that went away is one clear error line (exit 1)."""
    import anyio

    from symphony.commons.errors import SymphonyError, TransportError

    try:
        return anyio.run(fn)
    except SymphonyError as exc:
        if exc.code in _URL_ERRORS and ctx.meta.get("symphony.bus.user_url"):
            raise click.BadParameter(exc.message, param_hint="'--url'") from None
        if exc.code in ("transport.peer_lost", "transport.disconnected"):
            raise TransportError(
                f"the server went away: {exc.context.get('reason') or exc.message}",
                code="bus.server_gone",
                context={"url": ctx.meta["symphony.bus"][0] or "the default socket"},
                hint="is `symphony serve` still running? a request in flight may or may not have been handled",
            ) from None
        raise


@bus.command("send")
@click.argument("type")
@click.argument("payload", required=False)
@click.pass_context
def send(ctx: click.Context, type: str, payload: str | None) -> None:
    """Publish one event of TYPE with a JSON PAYLOAD."""
    from symphony_bus_remote import BusClient

    kwargs = _kwargs(ctx)
    data = _payload(payload)

    async def run() -> None:
        async with BusClient.connect(kwargs.pop("url"), **kwargs) as client:
            await client.send(type, data)

    _run(ctx, run)


@bus.command("request")
@click.argument("type")
@click.argument("payload", required=False)
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the reply.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole reply envelope as JSON.")
@click.pass_context
def request(ctx: click.Context, type: str, payload: str | None, timeout: float, as_json: bool) -> None:
    """Send a request of TYPE with a JSON PAYLOAD and print the reply.

    A handler's error is printed with its code and context, and the command exits 1.
    """

    from symphony.bus import message_to_wire
    from symphony_bus_remote import BusClient

    kwargs = _kwargs(ctx)
    data = _payload(payload)

    async def run() -> Any:
        async with BusClient.connect(kwargs.pop("url"), **kwargs) as client:
            return await client.request(type, data, timeout=timeout)

    reply = _run(ctx, run)
    if as_json:
        echo_json(message_to_wire(reply))
    else:
        echo_json(reply.payload)


@bus.command("monitor")
@click.argument("pattern", default="#")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N messages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON envelope per line.")
@click.option("--events", "events_only", is_flag=True, help="Only events (leave out requests and their answers).")
@click.pass_context
def monitor(ctx: click.Context, pattern: str, count: int | None, as_json: bool, events_only: bool) -> None:
    """Print the live traffic whose type matches PATTERN (`*` one segment, `#` any; default
    everything): events, and requests with their responses and errors as the server's bus
    routes them.

    Runs until Ctrl-C, or until --count messages were shown. The server never slows down for
    the monitor: if it cannot keep up, the oldest unshown messages are dropped.
    """

    from symphony.bus import message_to_wire
    from symphony_bus_remote import BusClient

    kwargs = _kwargs(ctx)
    console = None
    if not as_json:
        from rich.console import Console

        console = Console(highlight=False)

    async def run() -> None:
        seen = 0
        async with BusClient.connect(kwargs.pop("url"), **kwargs) as client:
            sub = client.subscribe(pattern, traffic=not events_only)
            await sub.wait_registered()
            if console is not None:
                console.print(f"[dim]monitoring {pattern!r} — Ctrl-C to stop[/dim]")
            while count is None or seen < count:
                msg = await sub.receive()
                seen += 1
                if console is None:
                    click.echo(json.dumps(message_to_wire(msg), default=str))
                else:
                    console.print(_traffic_line(msg), soft_wrap=True)

    try:
        _run(ctx, run)
    except KeyboardInterrupt:
        pass


@bus.command("routes")
@click.option("--json", "as_json", is_flag=True, help="The routes as a JSON list.")
@click.pass_context
def routes(ctx: click.Context, as_json: bool) -> None:
    """List the request types the running server answers: its own (`symphony.*`), those
    plugins expose (hook `symphony_register_bus_handlers`), and those connected clients handle."""
    from symphony_bus_remote import BusClient

    kwargs = _kwargs(ctx)

    async def run() -> Any:
        async with BusClient.connect(kwargs.pop("url"), **kwargs) as client:
            return (await client.request("symphony.routes", None)).payload

    answered = _run(ctx, run)
    if as_json:
        echo_json(answered)
        return
    for route in answered:
        summary = route.get("summary") or ""
        click.echo(f"{route['pattern']}\t{route['target']}\t{summary}".rstrip("\t"))


_KIND_STYLE = {"event": "cyan", "request": "yellow", "response": "green", "error": "red"}


def _traffic_line(msg: Any) -> str:
    """One monitor line: time, kind, type, ids linking an answer to its request, payload."""
    from rich.markup import escape

    stamp = time.strftime("%H:%M:%S", time.localtime(msg.timestamp))
    style = _KIND_STYLE.get(msg.kind, "white")
    if msg.kind == "request":
        link = f" [dim]#{msg.id[:8]}[/dim]"
    elif msg.correlation_id:
        link = f" [dim]→ #{msg.correlation_id[:8]}[/dim]"
    else:
        link = ""
    if msg.kind == "error" and isinstance(msg.payload, dict):
        body = f"{msg.payload.get('code')}: {msg.payload.get('message')}"
    else:
        body = json.dumps(msg.payload, default=str)
    return f"{stamp} [{style}]{msg.kind:8}[/{style}] [bold]{escape(msg.type)}[/bold]{link} {escape(body[:200])}"
