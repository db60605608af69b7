"""``symphony serve``: run a kernel whose bus listens on a Unix socket (and TCP when asked)."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import click

from symphony.cli import CliState


def served_socket(configured: str | None = None) -> Path:
    """The Unix socket ``symphony serve`` listens on and ``symphony bus`` connects to:
    ``configured`` (the ``bus.socket`` setting), or when that is null or empty
    ``$XDG_RUNTIME_DIR/symphony/bus.sock`` if that directory exists, else
    ``<tmp>/symphony-<uid>/bus.sock`` (kept short: unix socket paths are limited to ~104 bytes).
    """
    if configured:
        return Path(configured)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "symphony" / "bus.sock"
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"symphony-{uid}" / "bus.sock"


def _builtin_handlers(kernel: Any) -> None:
    """Requests every served bus answers: ``symphony.ping``, ``symphony.plugins`` and
    ``symphony.routes`` (plus what plugins expose through ``symphony_register_bus_handlers``)."""
    import os
    import time

    from symphony import __version__

    started = time.time()

    async def ping(msg: Any) -> dict[str, Any]:
        return {
            "pong": True,
            "pid": os.getpid(),
            "version": __version__,
            "uptime": round(time.time() - started, 3),
        }

    async def plugins(msg: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.to_dict().items() if k != "traceback"} for r in kernel.plugins]

    async def routes(msg: Any) -> list[dict[str, Any]]:
        return [route.describe() for route in kernel.bus.router.routes()]

    kernel.bus.handle(
        "symphony.ping", ping, name="symphony.ping", summary="Is the server alive: pid, version, uptime"
    )
    kernel.bus.handle(
        "symphony.plugins", plugins, name="symphony.plugins", summary="The server's plugins and their states"
    )
    kernel.bus.handle(
        "symphony.routes", routes, name="symphony.routes", summary="What this server answers (this list)"
    )


@click.command()
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Unix socket to listen on (default: bus.socket, else $XDG_RUNTIME_DIR/symphony/bus.sock).",
)
@click.option(
    "--tcp",
    "tcp_address",
    metavar="HOST:PORT",
    default=None,
    help="Also listen on TCP (needs --token-file; TLS with --cert/--key).",
)
@click.option(
    "--token-file", type=click.Path(exists=True, dir_okay=False), help="Shared token TCP peers must present."
)
@click.option(
    "--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate chain (PEM) for TCP."
)
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM) for TCP.")
@click.option(
    "--allow-plaintext", is_flag=True, help="Allow TCP without TLS (the token then travels in clear)."
)
@click.option(
    "--codec",
    type=click.Choice(["msgpack", "json"]),
    default=None,
    help="Only offer this wire codec to clients (default: every codec the bus has).",
)
@click.pass_obj
def serve(
    state: CliState,
    socket_path: Path | None,
    tcp_address: str | None,
    token_file: str | None,
    cert: str | None,
    key: str | None,
    allow_plaintext: bool,
    codec: str | None,
) -> None:
    """Run a kernel that serves the message bus until Ctrl-C or SIGTERM.

    Prints one line per listener, `listening on <url>`, once it accepts connections. Every
    served bus answers `symphony.ping`, `symphony.plugins` and `symphony.routes`; plugins add
    their own handlers (hook `symphony_register_bus_handlers`). Talk to it with
    `symphony bus request|send|monitor|routes`.
    """
    import anyio

    from symphony.commons.errors import ConfigError

    if tcp_address and not token_file:
        raise ConfigError(
            "--tcp needs --token-file: unauthenticated TCP peers are refused",
            code="cli.tcp_needs_token",
            context={"tcp": tcp_address},
        )
    try:
        import uvloop  # noqa: F401  (optional: pip install symphony-bus-remote[speed])

        backend_options = {"use_uvloop": True}
    except ImportError:
        backend_options = {}
    anyio.run(
        _serve,
        state,
        socket_path,
        tcp_address,
        token_file,
        cert,
        key,
        allow_plaintext,
        codec,
        backend_options=backend_options,
    )


async def _serve(
    state: CliState,
    socket_path: Path | None,
    tcp_address: str | None,
    token_file: str | None,
    cert: str | None,
    key: str | None,
    allow_plaintext: bool,
    codec: str | None = None,
) -> None:
    import anyio

    from symphony.kernel import Kernel
    from symphony_bus_remote import BusServer

    async with Kernel.open(
        state.config_path, env=state.env, strict=state.strict, autoload=state.autoload
    ) as kernel:
        bus = kernel.bus
        _builtin_handlers(kernel)
        path = socket_path or served_socket(kernel.config.get("bus.socket"))
        codecs = [codec] if codec else None
        listeners = [BusServer(bus, f"unix://{path}", codecs=codecs, kernel=kernel)]
        if tcp_address:
            options: dict[str, Any] = {"token_file": token_file}
            if cert and key:
                options.update(certfile=cert, keyfile=key)
            elif allow_plaintext:
                options["allow_plaintext"] = True
            tcp_url = f"tcp://{tcp_address}"
            listeners.append(BusServer(bus, tcp_url, options=options, codecs=codecs, kernel=kernel))
        # Catch the signals before saying "listening": a supervisor may stop us right after.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                for server in listeners:
                    url = await tg.start(server.serve)
                    click.echo(f"listening on {url}")
                async for signum in signals:
                    click.echo(f"stopping ({signal.Signals(signum).name})", err=True)
                    tg.cancel_scope.cancel()
                    break
