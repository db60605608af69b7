"""State shared by CLI commands: the lazily built kernel and output helpers."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from symphony.commons.errors import SymphonyError
    from symphony.kernel import Kernel

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PLUGIN_FAILURES = 3
EXIT_CONFIG = 4


class CliState:
    """Options of the top-level group, and the kernel built from them on first use."""

    def __init__(self) -> None:
        self.config_path: str | None = None
        self.env: str | None = None
        self.strict: bool | None = None
        self.autoload = True
        self.help_requested = False
        """Set when the command line asks for ``--help`` (a plugin command's help then loads
        even when the configuration is broken)."""
        self._kernel: Kernel | None = None
        self._plugin_commands: dict[str, tuple[str, str]] | None = None

    def kernel(self, *, tolerant: bool = False) -> Kernel:
        """The kernel for this invocation (built once, synchronously).

        ``tolerant`` (diagnostic commands, ``--help``) runs a core section the configuration
        gets wrong on its defaults, keeping the problem in ``kernel.config.problems``, instead
        of failing with a configuration error.
        """
        if self._kernel is None:
            from symphony.cli._builtin import BUILTIN_COMMANDS
            from symphony.kernel import Kernel

            self._kernel = Kernel.create(
                self.config_path,
                env=self.env,
                strict=self.strict,
                autoload=self.autoload,
                reserved_commands=set(BUILTIN_COMMANDS),
                tolerate_config=tolerant or self.help_requested,
            )
        return self._kernel

    def discovered(self) -> list[Any]:
        """The installed plugins' records, from manifests only (no config read, nothing imported)."""
        if not self.autoload:
            return []
        from symphony.plugins.discovery import discover

        records, _ = discover()
        return list(records)

    def plugin_commands(self) -> dict[str, tuple[str, str]]:
        """Command name -> (plugin id, summary), from manifests only (nothing imported)."""
        if self._plugin_commands is None:
            commands: dict[str, tuple[str, str]] = {}
            if self.autoload:
                from symphony._version import PLUGIN_API_VERSION
                from symphony.cli._builtin import BUILTIN_COMMANDS
                from symphony.plugins.resolve import resolve

                try:
                    records = self.discovered()
                    # the same claims rules as the kernel: a newcomer cannot take a command,
                    # and the user's plugins.enabled/disabled decide between claimants
                    enabled, disabled = self._plugin_choices(records)
                    resolve(
                        records,
                        kernel_api=PLUGIN_API_VERSION,
                        enabled=enabled,
                        disabled=disabled,
                        reserved_commands=set(BUILTIN_COMMANDS),
                    )
                except Exception:  # discovery problems are reported by `plugins list`/`doctor`
                    records = []
                for r in records:
                    if r.ok and r.manifest is not None:
                        for c in r.manifest.commands:
                            commands.setdefault(c.name, (r.id, c.summary))
            self._plugin_commands = commands
        return self._plugin_commands

    def _plugin_choices(self, records: list[Any]) -> tuple[list[str], list[str]]:
        """``plugins.enabled`` and ``plugins.disabled``, read tolerantly (empty when broken)."""
        from symphony.commons.config import load_config
        from symphony.kernel import Kernel

        config = load_config(
            schemas={k: v for k, v in Kernel.config_schemas(records).items() if k != "plugins"},
            env=self.env,
            user_file=self.config_path,
            isolate=True,
        )
        if config.problem_of("plugins") is not None:
            return [], []
        section = config.section("plugins")
        return list(section.get("enabled", [])), list(section.get("disabled", []))

    def load_plugin_command(self, name: str, plugin_id: str) -> click.Command:
        """Activate ``plugin_id`` and return the click command it registered as ``name``."""
        from symphony.commons.errors import SymphonyError

        kernel = self.kernel()
        try:
            kernel.activate(plugin_id)
            command: click.Command = kernel.registry("commands").get(name)
        except SymphonyError as exc:
            fail(exc, EXIT_ERROR)
        return command


def fail(exc: SymphonyError, code: int = EXIT_ERROR) -> NoReturn:
    """Print a SymphonyError for a person (message, context, hint) and exit with ``code``."""
    lines = [f"error: {exc.message}"]
    for key, value in exc.context.items():
        if key in ("traceback",):
            continue
        lines.append(f"  {key}: {value}")
    if exc.hint:
        lines.append(f"  hint: {exc.hint}")
    lines.append(f"  code: {exc.code}")
    click.echo("\n".join(lines), err=True)
    sys.exit(code)


def echo_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


def console() -> Any:
    """A rich console on stdout (imported lazily: rich is not cheap)."""
    from rich.console import Console

    return Console()


def current_kernel(*, required: bool = True) -> Kernel | None:
    """The kernel of the running ``symphony`` command, for plugin commands.

    Call it inside a click command invoked through ``symphony``: it returns the kernel built
    from the top-level ``--config``/``--env``/``--strict`` options. Outside ``symphony`` it
    raises (``required=True``) or returns None.
    """
    from symphony.commons.errors import NotFoundError

    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CliState) if ctx is not None else None
    if state is None:
        if required:
            raise NotFoundError(
                "no symphony command is running",
                code="cli.no_kernel",
                hint="current_kernel() works inside commands invoked through `symphony`",
            )
        return None
    return state.kernel()
