"""``symphony config``: show, read and edit the layered configuration."""

from __future__ import annotations

from typing import Any

import click

from symphony.cli._context import CliState, console, echo_json


@click.group()
def config() -> None:
    """Show, read and edit the layered configuration.

    Layers, later wins: built-in defaults, packaged profile, <config dir>/default.toml,
    <config dir>/<env>.toml, the user file, SYMPHONY_<SECTION>__<KEY> variables, overrides.
    """


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--sources", is_flag=True, help="Show which layer set each value.")
@click.pass_obj
def show(state: CliState, as_json: bool, sources: bool) -> None:
    """Print the effective configuration."""
    cfg = state.kernel().config
    data = cfg.to_dict()
    if as_json:
        out: dict[str, Any] = {"env": cfg.env, "files": [str(f) for f in cfg.files], "config": data}
        if sources:
            out["sources"] = {key: cfg.source_of(key) for key in _leaf_keys(data)}
        echo_json(out)
        return
    con = console()
    con.print(
        f"[bold]env[/bold]: {cfg.env}   [bold]files[/bold]: {', '.join(map(str, cfg.files)) or '(none)'}"
    )
    for key in _leaf_keys(data):
        line = f"{key} = {cfg.get(key)!r}"
        if sources:
            line += f"   [dim]# {cfg.source_of(key)}[/dim]"
        con.print(line, highlight=False)


def _leaf_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(_leaf_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys


@config.command("get")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the value as JSON.")
@click.pass_obj
def get(state: CliState, key: str, as_json: bool) -> None:
    """Print one value by dotted KEY (e.g. logging.level)."""
    from symphony.commons.errors import NotFoundError
    from symphony.commons.validation import CONFIG_KEY, validate

    validate(key, CONFIG_KEY, field="key")
    cfg = state.kernel().config
    marker = object()
    value = cfg.get(key, marker)
    if value is marker:
        raise NotFoundError(f"no config key {key!r}", code="config.no_key", context={"key": key})
    if as_json:
        echo_json({"key": key, "value": value, "source": cfg.source_of(key)})
    else:
        click.echo(value if isinstance(value, str) else repr(value))


def _schemas(state: CliState) -> dict[str, Any]:
    from symphony.kernel import Kernel

    kernel = state.kernel()
    return Kernel._plugin_config_schemas(list(kernel.plugins))


@config.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_obj
def set_value(state: CliState, key: str, value: str) -> None:
    """Set KEY to VALUE in the user config file, keeping its comments.

    VALUE is parsed by the type the schema gives KEY (numbers, true/false, JSON lists).
    The file is left untouched when the new value is invalid.
    """
    from symphony.commons.config import set_user_value
    from symphony.commons.validation import CONFIG_KEY, validate

    validate(key, CONFIG_KEY, field="key")
    kernel = state.kernel()
    schemas = _schemas(state)
    parsed = _parse_for_key(key, value, kernel, schemas)
    path = set_user_value(key, parsed, user_file=state.config_path, schemas=schemas)
    click.echo(f"{key} = {parsed!r}  ({path})")


@config.command("unset")
@click.argument("key")
@click.pass_obj
def unset_value(state: CliState, key: str) -> None:
    """Remove KEY from the user config file (the lower layers apply again)."""
    from symphony.commons.config import unset_user_value
    from symphony.commons.validation import CONFIG_KEY, validate

    validate(key, CONFIG_KEY, field="key")
    path = unset_user_value(key, user_file=state.config_path, schemas=_schemas(state))
    click.echo(f"unset {key}  ({path})")


def _parse_for_key(key: str, raw: str, kernel: Any, schemas: dict[str, Any]) -> Any:
    from symphony.commons.config import CORE_SCHEMAS, parse_env_value

    schema: Any = {**CORE_SCHEMAS, **schemas}
    parts = key.split(".")
    node: Any = {"type": "object", "properties": schema}
    for part in parts:
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        if part not in props:
            return parse_env_value(raw, {})
        node = props[part]
    from symphony.commons.errors import ConfigError

    try:
        return parse_env_value(raw, node)
    except ConfigError as exc:
        raise ConfigError(
            f"{key}: {exc.message}",
            code="config.invalid",
            context={"key": key, "value": raw, "expected": exc.context.get("expected")},
            hint=exc.hint,
        ) from None


@config.command("path")
@click.pass_obj
def path(state: CliState) -> None:
    """Print the user config file's path."""
    from pathlib import Path

    from symphony.commons.fs import user_config_file

    click.echo(str(Path(state.config_path) if state.config_path else user_config_file()))
