"""State shared by CLI commands: the lazily built kernel and output helpers."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from symphony.commons.errors import SymphonyError
    from symphony.kernel import Kernel

EXIT_ERROR = 1
EXIT_PLUGIN_FAILURES = 3
EXIT_CONFIG = 4


class CliState:
    """Options of the top-level group, and the kernel built from them on first use.

    ``CliState(kernel=k)`` runs commands against an existing kernel (the SDK's
    ``invoke_command`` does, for testing a plugin's command in-process): plugin commands then
    come from that kernel's plugins, not from the installed ones.
    """

    def __init__(self, kernel: Kernel | None = None) -> None:
        self.config_path: str | None = None
        self.env: str | None = None
        self.strict: bool | None = None
        self.autoload = True
        self.help_requested = False
        """Set when the command line asks for ``--help`` (a plugin command's help then loads
        even when the configuration is broken)."""
        self.running_plugin: str | None = None
        """The plugin whose command is being run (named when that command crashes)."""
        self._kernel: Kernel | None = kernel
        self._plugin_commands: dict[str, tuple[str, str]] | None = None
        self._unavailable: dict[str, tuple[str, str]] = {}

    def kernel(self, *, tolerant: bool = False) -> Kernel:
        """The kernel for this invocation (built once, synchronously).

        ``tolerant`` (diagnostic commands, ``--help``) runs a core section the configuration
        gets wrong on its defaults, keeping the problem in ``kernel.config.problems``, instead
        of failing with a configuration error. In safe mode (``--no-plugins``) no plugin is
        discovered or imported, and configuration sections that belong to plugins are kept
        unvalidated instead of being refused: the mode must work precisely when a plugin or
        its configuration is broken.
        """
        if self._kernel is None:
            from symphony.cli._builtin import BUILTIN_COMMANDS
            from symphony.kernel import Kernel

            if self.autoload:
                self._kernel = Kernel.create(
                    self.config_path,
                    env=self.env,
                    strict=self.strict,
                    autoload=True,
                    reserved_commands=set(BUILTIN_COMMANDS),
                    tolerate_config=tolerant or self.help_requested,
                )
            else:
                self._kernel = self._safe_kernel()
        return self._kernel

    def _safe_kernel(self) -> Kernel:
        from symphony.commons.config import load_config
        from symphony.commons.log import configure_from_config
        from symphony.kernel import Kernel

        # plugin sections, from files or SYMPHONY_<SECTION>__<KEY>, are kept unvalidated
        config = load_config(env=self.env, user_file=self.config_path, allow_unknown_sections=True)
        configure_from_config(config, lazy=True)
        return Kernel(config=config, records=[], strict=bool(self.strict))

    def plugin_commands(self) -> dict[str, tuple[str, str]]:
        """Command name -> (plugin id, summary) of usable plugins, from manifests only.

        Nothing is imported. Commands of plugins that configuration disables (or that are
        otherwise unusable) are left out, and remembered for a clear message when invoked.
        """
        if self._plugin_commands is None:
            commands: dict[str, tuple[str, str]] = {}
            for record in self._command_records():
                if record.manifest is None:
                    continue
                for c in record.manifest.commands:
                    if record.usable:
                        commands.setdefault(c.name, (record.id, c.summary))
                    else:
                        self._unavailable.setdefault(c.name, (record.id, f"{record.state.value}: {record.reason}"))
            self._plugin_commands = commands
        return self._plugin_commands

    def unavailable_command(self, name: str) -> tuple[str, str] | None:
        """(plugin id, why) when ``name`` is the command of a plugin that cannot be used."""
        self.plugin_commands()
        return self._unavailable.get(name)

    def _command_records(self) -> list[Any]:
        if self._kernel is not None:
            return self._kernel.plugins
        if not self.autoload:
            return []
        from symphony.cli._builtin import BUILTIN_COMMANDS
        from symphony.kernel import Kernel

        try:  # the kernel's own claims rules, before any plugin is imported
            return Kernel.resolved_plugins(
                env=self.env, user_file=self.config_path, reserved_commands=set(BUILTIN_COMMANDS)
            )
        except Exception:  # discovery problems are reported by `plugins list`/`doctor`
            return []

    def load_plugin_command(self, name: str, plugin_id: str) -> click.Command:
        """Activate ``plugin_id`` and return the click command it registered as ``name``."""
        from symphony.commons.errors import SymphonyError

        kernel = self.kernel()
        try:
            kernel.activate(plugin_id)
            command: click.Command = kernel.registry("commands").get(name)
        except SymphonyError as exc:
            fail(exc, EXIT_ERROR)
        self.running_plugin = plugin_id
        return command


# --------------------------------------------------------------------------- text output

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def plain(value: Any, *, newlines: bool = False) -> str:
    """``value`` as printable text: control characters escaped (``\\x1b``), nothing interpreted.

    Everything that comes from outside (manifests, configuration, messages, workflow files)
    is printed through this: rich never sees it as markup and a terminal never receives a raw
    escape sequence. ``newlines=True`` keeps line breaks (for multi-line messages).
    """
    text = "" if value is None else str(value)

    def escape(match: re.Match[str]) -> str:
        ch = match.group()
        if newlines and ch == "\n":
            return ch
        if ch in _NAMED:
            return _NAMED[ch]
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text)


Cell = str | tuple[str, str]
"""A table cell or line part: text, or ``(text, rich style)``."""


def is_terminal() -> bool:
    """Whether stdout is a terminal (rich's rules: ``TTY_COMPATIBLE``, ``FORCE_COLOR``, isatty)."""
    return bool(console().is_terminal)


def say(*parts: Cell, err: bool = False) -> None:
    """Print one line made of ``parts``; text is escaped with :func:`plain`, styles only on a terminal."""
    if not err and is_terminal():
        from rich.text import Text

        line = Text()
        for part in parts:
            text, style = (part, "") if isinstance(part, str) else part
            line.append(plain(text, newlines=True), style=style or None)
        console().print(line, soft_wrap=True)
    else:
        click.echo("".join(plain(p if isinstance(p, str) else p[0], newlines=True) for p in parts), err=err)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    title: str | None = None,
    whole: Sequence[str] = (),
) -> None:
    """Print rows under ``columns``: a table on a terminal, tab-separated lines otherwise.

    Cells are escaped with :func:`plain`. On a terminal, columns named in ``whole`` (ids) are
    never broken inside; the others wrap. When even that does not fit the width, each row is
    printed as a block of ``column: value`` lines instead.
    """
    body = [[(plain(c), "") if isinstance(c, str) else (plain(c[0]), c[1]) for c in row] for row in rows]
    if not is_terminal():
        click.echo("\t".join(columns))
        for row in body:
            click.echo("\t".join(text for text, _ in row))
        return
    from rich.table import Table
    from rich.text import Text

    out = console()
    keep = [i for i, name in enumerate(columns) if any(row[i][0] for row in body)] or list(range(len(columns)))
    columns = [columns[i] for i in keep]
    body = [[row[i] for i in keep] for row in body]
    needed = 1
    for i, name in enumerate(columns):
        cells = [row[i][0] for row in body] + [name]
        if name in whole:
            needed += max(len(c) for c in cells) + 3
        else:
            needed += min(8, max(len(word) for c in cells for word in (c.split() or [""]))) + 3
    if title:
        out.print(Text(plain(title)))
    if needed > out.width:
        for row in body:
            for name, (text, style) in zip(columns, row, strict=True):
                if text:
                    out.print(Text.assemble(f"{name}: ", (text, style or "")))
            out.print()
        return
    table = Table()
    for i, name in enumerate(columns):
        if name in whole:
            table.add_column(name, no_wrap=True, min_width=max(len(name), *(len(r[i][0]) for r in body)))
        else:
            table.add_column(name, overflow="fold")
    for row in body:
        table.add_row(*(Text(text, style=style or "") for text, style in row))
    out.print(table)


def fail(exc: SymphonyError, code: int = EXIT_ERROR, *, state: CliState | None = None) -> NoReturn:
    """Print a SymphonyError for a person (message, context, hint) and exit with ``code``.

    Every part is escaped with :func:`plain`. A hint to ``pip install`` a distribution that is
    already installed is replaced by what actually stops it (safe mode, or the plugin's state).
    """
    if state is None:
        ctx = click.get_current_context(silent=True)
        state = ctx.find_object(CliState) if ctx is not None else None
    lines = [f"error: {plain(exc.message, newlines=True)}"]
    for key, value in exc.context.items():
        if key in ("traceback",):
            continue
        lines.append(f"  {plain(key)}: {plain(value)}")
    hint = _true_hint(exc.hint, safe_mode=state is not None and not state.autoload)
    if hint:
        lines.append(f"  hint: {plain(hint)}")
    lines.append(f"  code: {plain(exc.code)}")
    click.echo("\n".join(lines), err=True)
    sys.exit(code)


_PIP_INSTALL = re.compile(r"pip install [\"'`]?([A-Za-z0-9][A-Za-z0-9._-]*)([\"'`\s]|$)")


def _true_hint(hint: str | None, *, safe_mode: bool) -> str | None:
    """``hint``, unless it says to install a distribution that is installed already."""
    if not hint:
        return hint
    match = _PIP_INSTALL.search(hint)
    if match is None:
        return hint
    import importlib.metadata

    name = match.group(1)
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return hint
    if safe_mode:
        return f"{name} is installed, but --no-plugins loads no plugin: run the command without --no-plugins"
    return f"{name} is installed but cannot be used: `symphony plugins inspect {name}` shows why"


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
