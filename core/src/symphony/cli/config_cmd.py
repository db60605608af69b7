"""``symphony config``: show, read and edit the layered configuration.

These commands work whatever the configuration files hold: ``show`` and ``get`` read it
tolerantly (problems go to stderr), and ``set`` and ``unset`` edit the user file without
loading the configuration at all, so a broken file can always be repaired with the tool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from symphony.cli._context import CliState, echo_json

if TYPE_CHECKING:
    from symphony.commons.config import Config


@click.group()
def config() -> None:
    """Show, read and edit the layered configuration.

    Layers, later wins: built-in defaults, packaged profile, <config dir>/default.toml,
    <config dir>/<env>.toml, the user file, SYMPHONY_<SECTION>__<KEY> variables, overrides.
    A section no installed plugin claims is ignored with a warning; `config unset SECTION`
    removes it.
    """


def _inspect(state: CliState) -> Config:
    """The configuration as the files and variables give it, problems collected, not raised."""
    from symphony.commons.config import load_config

    config = load_config(
        schemas=_schemas(state),
        env=state.env,
        user_file=state.config_path,
        isolate=True,
    )
    for problem in config.problems:
        click.echo(f"error: {problem.message}", err=True)
    for warning in config.warnings:
        click.echo(f"warning: {warning.message}", err=True)
    return config


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--sources", is_flag=True, help="Show which layer set each value.")
@click.pass_obj
def show(state: CliState, as_json: bool, sources: bool) -> None:
    """Print the effective configuration as TOML (problems are reported on stderr)."""
    cfg = _inspect(state)
    data = cfg.to_dict()
    if as_json:
        out: dict[str, Any] = {
            "env": cfg.env,
            "files": [str(f) for f in cfg.files],
            "config": data,
            "problems": [_problem(p) for p in cfg.problems],
            "warnings": [_problem(w) for w in cfg.warnings],
        }
        if sources:
            out["sources"] = {key: cfg.source_of(key) for key in (".".join(p) for p, _ in _leaves(data))}
        echo_json(out)
        return
    lines = [f"# env: {cfg.env}", f"# files: {', '.join(map(str, cfg.files)) or '(none)'}"]
    for section, values in data.items():
        lines.append("")
        lines.append(f"[{_toml_key(section)}]")
        table = values if isinstance(values, dict) else {}
        for parts, value in _leaves(table):
            dotted = _toml_key(*parts)
            line = f"# {dotted} is not set" if value is None else f"{dotted} = {toml_value(value)}"
            if sources:
                line += f"   # {cfg.source_of('.'.join((section, *parts)))}"
            lines.append(line)
    click.echo("\n".join(lines))


def _problem(error: Any) -> dict[str, Any]:
    return {"message": error.message, "code": error.code, **{k: str(v) for k, v in error.context.items()}}


def _leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(key parts, value) of every value in ``data`` that is not a non-empty table."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            found.extend(_leaves(value, (*prefix, key)))
        else:
            found.append(((*prefix, key), value))
    return found


def _toml_key(*parts: str) -> str:
    """A (dotted) key written as TOML, each part quoted where it must be."""
    import tomlkit

    return str(tomlkit.key(list(parts)).as_string())


def toml_value(value: Any) -> str:
    """``value`` written as TOML (inline tables for mappings; ``None`` entries left out)."""
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    import tomlkit

    return str(tomlkit.item(value).as_string())


@config.command("get")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the value as JSON.")
@click.pass_obj
def get(state: CliState, key: str, as_json: bool) -> None:
    """Print one value by dotted KEY (e.g. logging.level)."""
    from symphony.commons.validation import CONFIG_KEY, validate

    validate(key, CONFIG_KEY, field="key")
    cfg = _inspect(state)
    source = cfg.source_of(key)  # NotFoundError (config.no_such_key) when KEY holds no value
    value = cfg.get(key)
    if as_json:
        echo_json({"key": key, "value": value, "source": source})
    else:
        click.echo(value if isinstance(value, str) else toml_value(value))


def _schemas(state: CliState) -> dict[str, Any]:
    """Every claimed section's schema, core's included, from the manifests alone (no config is loaded)."""
    from symphony.kernel import Kernel
    from symphony.plugins.discovery import discover

    return Kernel.config_schemas(discover()[0] if state.autoload else [])


@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@click.pass_obj
def set_value(state: CliState, key: str, value: str) -> None:
    """Set KEY to VALUE in the user config file, keeping its comments.

    VALUE is parsed by the type the schema gives KEY (numbers, true/false, JSON lists);
    negative numbers need no `--`. The file is left untouched when the new value is invalid;
    problems elsewhere in the file do not block the edit, so this is how it is repaired.
    """
    from symphony.commons.config import set_user_value
    from symphony.commons.validation import CONFIG_KEY, validate

    validate(key, CONFIG_KEY, field="key")
    path = set_user_value(key, value, user_file=state.config_path, schemas=_schemas(state))
    click.echo(f"{key} = {_written(path, key)}  ({path})")


def _written(path: Any, key: str) -> str:
    import tomllib

    node: Any = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "(removed)" if node is None else toml_value(node)


@config.command("unset")
@click.argument("key")
@click.pass_obj
def unset_value(state: CliState, key: str) -> None:
    """Remove KEY (or a whole SECTION) from the user config file; lower layers apply again.

    Works for keys no installed plugin knows, so a section left by an uninstalled plugin is
    removed with `symphony config unset SECTION`. Tables left empty are removed too.
    """
    from symphony.commons.config import unset_user_value
    from symphony.commons.validation import CONFIG_KEY, validate

    validate(key, CONFIG_KEY, field="key")
    path = unset_user_value(key, user_file=state.config_path)
    click.echo(f"unset {key}  ({path})")


@config.command("path")
@click.pass_obj
def path(state: CliState) -> None:
    """Print the user config file's path."""
    from pathlib import Path

    from symphony.commons.fs import user_config_file

    click.echo(str(Path(state.config_path) if state.config_path else user_config_file()))
