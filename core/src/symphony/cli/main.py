"""The ``symphony`` command.

Built-in commands and plugin commands are both listed from static tables (the built-in table
and the plugins' manifests), so ``symphony --help`` imports no plugin and cannot be broken by
one. A plugin's command is imported, with its plugin, only when it is invoked.

Exit codes: 0 success; 1 an error (message on stderr); 2 bad usage; 3 the command ran but
some plugins are unusable (``plugins list``, ``doctor``); 4 a configuration error.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from symphony._version import PLUGIN_API_VERSION, __version__
from symphony.cli._builtin import BUILTIN_COMMANDS
from symphony.cli._context import EXIT_CONFIG, EXIT_ERROR, CliState, fail, plain

__all__ = ["cli", "main"]


class SymphonyGroup(click.Group):
    """A click group that lists built-in and plugin commands without importing them."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, tuple[str, str]]:
        return ctx.ensure_object(CliState).plugin_commands()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Read the options that decide which plugins exist before ``--help`` or a command is resolved.

        click resolves the subcommand (and answers ``--help``) before the group's callback runs,
        so ``--no-plugins``, ``--config`` and ``--env`` are read here with the group's own parser
        (which runs no callback); a usage error is left to click's parsing proper.
        """
        try:
            given, _, _ = self.make_parser(ctx).parse_args(args=list(args))
        except click.UsageError:
            given = {}
        state = ctx.ensure_object(CliState)
        state.autoload = state.autoload and not given.get("no_plugins")
        state.config_path = given.get("config_path", state.config_path)
        state.env = given.get("env", state.env)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Resolve a command; an unknown one gets a suggestion, a plugin's unusable one its reason."""
        state = ctx.ensure_object(CliState)
        if any(a in ("--help", "-h") for a in args[1:]):
            state.help_requested = True  # help must show even when the configuration is broken
        name = args[0]
        command = self.get_command(ctx, name)
        if command is None and not ctx.resilient_parsing and not name.startswith("-"):
            if not state.autoload:
                raise click.UsageError(
                    f"No such command {plain(name)!r}: --no-plugins (safe mode) loads no plugin, "
                    "so plugin commands are not available.",
                    ctx,
                )
            unavailable = state.unavailable_command(name)
            if unavailable is not None:
                plugin_id, why = unavailable
                raise click.UsageError(
                    f"The command {plain(name)!r} belongs to plugin {plain(plugin_id)}, which is {plain(why)}",
                    ctx,
                )
            raise click.exceptions.NoSuchCommand(plain(name), possibilities=self.list_commands(ctx), ctx=ctx)
        return super().resolve_command(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(BUILTIN_COMMANDS) | set(self.commands)
        names |= set(self._plugin_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in BUILTIN_COMMANDS:
            module_name, _, attr = BUILTIN_COMMANDS[cmd_name][0].partition(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        plugin_commands = self._plugin_commands(ctx)
        if cmd_name in plugin_commands:
            return ctx.ensure_object(CliState).load_plugin_command(cmd_name, plugin_commands[cmd_name][0])
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, summary) for name, (_, summary) in sorted(BUILTIN_COMMANDS.items())]
        plugin_rows = [
            (plain(name), plain(f"{summary} [{plugin_id}]".strip()))
            for name, (plugin_id, summary) in sorted(self._plugin_commands(ctx).items())
            if name not in BUILTIN_COMMANDS
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        if plugin_rows:
            with formatter.section("Plugin commands"):
                formatter.write_dl(plugin_rows)


@click.group(cls=SymphonyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", message=f"symphony %(version)s (plugin API {PLUGIN_API_VERSION})"
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SYMPHONY_USER_CONFIG",
    help="User config file (default: the platform config dir; env SYMPHONY_USER_CONFIG).",
)
@click.option(
    "--env",
    type=click.Choice(["development", "test", "production"]),
    envvar="SYMPHONY_ENV",
    help="Config profile (env SYMPHONY_ENV; default development).",
)
@click.option(
    "--strict", is_flag=True, help="Fail on any plugin problem (same as SYMPHONY_STRICT_PLUGINS=1)."
)
@click.option("--no-plugins", is_flag=True, help="Do not load installed plugins (safe mode).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, env: str | None, strict: bool, no_plugins: bool) -> None:
    """Symphony: a plugin-first backend for AI workflows.

    Plugins are found through the `symphony.plugins` entry-point group and read from their
    `symphony.toml` manifests without being imported. `symphony plugins list` shows them.
    """
    state = ctx.ensure_object(CliState)
    state.config_path = config_path
    state.env = env
    state.strict = strict or None
    state.autoload = not no_plugins


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``symphony`` console script."""
    from symphony.commons.errors import ConfigError, SymphonyError, sole_exception

    state = CliState()
    try:
        cli.main(args=argv, prog_name="symphony", standalone_mode=True, obj=state)
    except BaseException as raised:
        exc = sole_exception(raised)
        if isinstance(exc, ConfigError):
            fail(exc, EXIT_CONFIG, state=state)
        if isinstance(exc, SymphonyError):
            fail(exc, EXIT_ERROR, state=state)
        if isinstance(exc, KeyboardInterrupt):
            sys.exit(130)
        if isinstance(exc, Exception) and state.running_plugin is not None:
            _plugin_crashed(state.running_plugin, exc)
        raise


def _plugin_crashed(plugin_id: str, exc: Exception) -> None:
    """Report an exception a plugin's command let escape: one line, the traceback in a file."""
    import time
    import traceback

    from symphony.commons.errors import SymphonyError
    from symphony.commons.fs import atomic_write, cache_dir

    text = "".join(traceback.format_exception(exc))
    where = cache_dir() / "crash-reports" / f"{plugin_id}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
    try:
        atomic_write(where, f"plugin: {plugin_id}\nargv: {sys.argv!r}\n\n{text}")
        logged = f"full traceback in {where}"
    except (SymphonyError, OSError) as write_error:
        logged = f"the traceback could not be written to {where}: {write_error}"
    click.echo(
        f"error: plugin {plain(plugin_id)} failed: {plain(type(exc).__name__)}: {plain(exc)} ({plain(logged)})",
        err=True,
    )
    sys.exit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    main(sys.argv[1:])
