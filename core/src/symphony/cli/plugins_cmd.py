"""``symphony plugins``: list, inspect, validate and describe plugins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from symphony.cli._context import (
    EXIT_ERROR,
    EXIT_PLUGIN_FAILURES,
    CliState,
    echo_json,
    plain,
    print_table,
    say,
)

_STATE_STYLE = {
    "active": "green",
    "discovered": "cyan",
    "disabled": "dim",
}


@click.group()
def plugins() -> None:
    """List, inspect and validate plugins.

    Listing reads manifests only: no plugin is imported unless you pass --load.
    """


def load_all(kernel: Any) -> None:
    """Activate every plugin still waiting, keeping each failure on its record."""
    from symphony.commons.errors import PluginError
    from symphony.plugins.states import PluginState

    for record in kernel.plugins:
        if record.state is PluginState.DISCOVERED:
            try:
                kernel.activate(record.id)
            except PluginError:
                pass  # kept on the record


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--load", is_flag=True, help="Import and activate every plugin to surface import/activation failures."
)
@click.pass_obj
def list_plugins(state: CliState, as_json: bool, load: bool) -> None:
    """Show every discovered plugin with its state, version, kind and what it provides.

    Exits 3 when any plugin is unusable (invalid, incompatible, conflicting, failed).
    """
    kernel = state.kernel()
    if load:
        load_all(kernel)
    records = kernel.plugins
    if as_json:
        echo_json([{k: v for k, v in r.to_dict().items() if k != "traceback"} for r in records])
    else:
        rows = []
        for r in records:
            d = r.to_dict()
            rows.append(
                [
                    d["id"],
                    (d["state"], _STATE_STYLE.get(d["state"], "red")),
                    d["version"] or "",
                    d["kind"] or "",
                    ", ".join(d["provides"]),
                    d["reason"] or "",
                ]
            )
        print_table(
            ("plugin", "state", "version", "kind", "provides", "reason"),
            rows,
            title=f"Symphony plugins ({len(records)}; index {kernel.index_status})",
            whole=("plugin",),
        )
    if kernel.failures():
        raise SystemExit(EXIT_PLUGIN_FAILURES)


@plugins.command("inspect")
@click.argument("plugin_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--load", is_flag=True, help="Activate the plugin first (shows import/activation failures and timings)."
)
@click.pass_obj
def inspect_plugin(state: CliState, plugin_id: str, as_json: bool, load: bool) -> None:
    """Show everything known about one plugin: manifest, state, reason, traceback, timings."""
    from symphony.commons.errors import PluginError
    kernel = state.kernel()
    record = _find_plugin(kernel, plugin_id)
    if load:
        try:
            kernel.activate(record.id)
        except PluginError:
            pass
    data = record.to_dict()
    if as_json:
        echo_json(data)
    else:
        say((data["id"], "bold"), f" {data['version'] or ''}  state: ", (data["state"], "bold"))
        for key in ("kind", "api", "summary", "distribution", "entry_point", "manifest", "activation"):
            if data.get(key):
                say(f"  {key}: ", plain(data[key]))
        for key in ("provides", "requires", "after", "permissions", "commands"):
            if data.get(key):
                say(f"  {key}: ", ", ".join(plain(v) for v in data[key]))
        for point, names in data["contributes"].items():
            say(f"  contributes {plain(point)}: ", ", ".join(plain(v) for v in names))
        if data["timings"]:
            say("  timings: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in data["timings"].items()))
        if data["reason"]:
            say("  ", ("reason:", "red"), f" {plain(data['reason'])} ({plain(data['error_code'])})")
        if data["traceback"]:
            say(data["traceback"].rstrip("\n"))
    if not record.ok:
        raise SystemExit(EXIT_PLUGIN_FAILURES)


def _find_plugin(kernel: Any, wanted: str) -> Any:
    """The record named ``wanted``: its id, the id without ``symphony-``, or a unique prefix."""
    from symphony.commons.errors import NotFoundError

    records = kernel.plugins
    for matches in (
        [r for r in records if r.id == wanted],
        [r for r in records if r.id == f"symphony-{wanted}"],
        [r for r in records if r.id.startswith(wanted) or r.id.startswith(f"symphony-{wanted}")],
    ):
        ids = sorted({r.id for r in matches})
        if len(ids) == 1:
            return kernel.plugin(ids[0])
        if len(ids) > 1:
            raise NotFoundError(
                f"{wanted!r} matches several plugins: {', '.join(ids)}",
                code="plugin.ambiguous",
                context={"plugin": wanted, "matches": ids},
                hint="give more of the id",
            )
    from symphony.commons.validation import PLUGIN_ID, validate

    # an installed plugin's id is inspectable whatever its manifest says (that is what a
    # diagnostic is for); anything else must at least look like a plugin id
    validate(wanted, PLUGIN_ID, field="plugin_id")
    return kernel.plugin(wanted)  # raises plugin.not_found, listing the known ids


@plugins.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-build", is_flag=True, help="Do not build the wheel of a project folder.")
def validate_plugin(path: Path, as_json: bool, no_build: bool) -> None:
    """Check a plugin's manifest (a symphony.toml file or a plugin project folder).

    Reports every problem at once: the manifest against the published schema, the api range
    against this kernel and, for a project folder, the symphony.plugins entry point and the
    built wheel (it must ship symphony.toml and the entry point). Exits 1 when anything is wrong.
    """
    from symphony.commons.errors import NotFoundError

    try:
        from symphony_sdk.manifest import validate_project
    except ModuleNotFoundError:  # an author's tool: it comes with the SDK
        raise NotFoundError(
            "`symphony plugins validate` is a tool of the plugin SDK, which is not installed",
            code="cli.needs_sdk",
            hint="pip install symphony-sdk",
        ) from None
    report = validate_project(path, build=not no_build)
    if as_json:
        echo_json(report)
    else:
        for err in report["errors"]:
            say(f"error: {err['message']} ({err.get('code')})", err=True)
        for warn in report["warnings"]:
            say(f"warning: {warn['message']} ({warn.get('code')})", err=True)
        if report["ok"]:
            shipped = f", wheel {report['wheel']} ships it" if report.get("wheel") else ""
            say(f"ok: {report.get('id')} ({report.get('manifest')}{shipped})")
    if not report["ok"]:
        raise SystemExit(EXIT_ERROR)


@plugins.command("schema")
def manifest_schema() -> None:
    """Print the JSON Schema of the plugin manifest (symphony.toml)."""
    from symphony.plugins.manifest import MANIFEST_SCHEMA

    click.echo(json.dumps(MANIFEST_SCHEMA, indent=2))
