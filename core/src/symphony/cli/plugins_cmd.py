"""``symphony plugins``: list, inspect, validate and describe plugins."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from symphony.cli._context import EXIT_ERROR, EXIT_PLUGIN_FAILURES, CliState, console, echo_json

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


def _load_all(kernel: Any) -> None:
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
        _load_all(kernel)
    records = kernel.plugins
    if as_json:
        echo_json([{k: v for k, v in r.to_dict().items() if k != "traceback"} for r in records])
    else:
        from rich.table import Table

        table = Table(
            title=f"Symphony plugins ({len(records)}; index {kernel.index_status})", title_justify="left"
        )
        for column in ("plugin", "state", "version", "kind", "provides", "reason"):
            table.add_column(column, overflow="fold")
        for r in records:
            d = r.to_dict()
            style = _STATE_STYLE.get(d["state"], "red")
            table.add_row(
                d["id"],
                f"[{style}]{d['state']}[/{style}]",
                d["version"] or "",
                d["kind"] or "",
                ", ".join(d["provides"]),
                d["reason"] or "",
            )
        console().print(table)
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
    from symphony.commons.validation import PLUGIN_ID, validate

    validate(plugin_id, PLUGIN_ID, field="plugin_id")
    kernel = state.kernel()
    record = kernel.plugin(plugin_id)
    if load:
        try:
            kernel.activate(plugin_id)
        except PluginError:
            pass
    data = record.to_dict()
    if as_json:
        echo_json(data)
    else:
        out = console()
        out.print(f"[bold]{data['id']}[/bold] {data['version'] or ''}  state: [bold]{data['state']}[/bold]")
        for key in ("kind", "api", "summary", "distribution", "entry_point", "manifest", "activation"):
            if data.get(key):
                out.print(f"  {key}: {data[key]}")
        for key in ("provides", "requires", "after", "permissions", "commands"):
            if data.get(key):
                out.print(f"  {key}: {', '.join(data[key])}")
        if data["timings"]:
            out.print("  timings: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in data["timings"].items()))
        if data["reason"]:
            out.print(f"  [red]reason:[/red] {data['reason']} ({data['error_code']})")
        if data["traceback"]:
            out.print(data["traceback"], markup=False, highlight=False)
    if not record.ok:
        raise SystemExit(EXIT_PLUGIN_FAILURES)


def _validate_path(path: Path) -> dict[str, Any]:
    """Validate a manifest file or a plugin project folder; return a report."""
    from symphony._version import PLUGIN_API_VERSION
    from symphony.commons.errors import SymphonyError
    from symphony.commons.fs import read_text
    from symphony.plugins.manifest import MANIFEST_FILENAME, api_compatible, load_manifest

    report: dict[str, Any] = {"path": str(path), "ok": False, "errors": [], "warnings": []}
    manifest_path = path
    pyproject = None
    if path.is_dir():
        pyproject = path / "pyproject.toml"
        found = sorted(path.glob(f"src/*/{MANIFEST_FILENAME}")) or sorted(path.glob(f"*/{MANIFEST_FILENAME}"))
        if (path / MANIFEST_FILENAME).is_file():
            found = [path / MANIFEST_FILENAME]
        if not found:
            report["errors"].append(
                {"code": "plugin.manifest_missing", "message": f"no {MANIFEST_FILENAME} under {path}"}
            )
            return report
        manifest_path = found[0]
    report["manifest"] = str(manifest_path)
    try:
        manifest = load_manifest(manifest_path)
    except SymphonyError as exc:
        report["errors"].append(exc.to_wire())
        return report
    report["id"] = manifest.id
    if not api_compatible(manifest.api, PLUGIN_API_VERSION):
        report["errors"].append(
            {
                "code": "plugin.incompatible_api",
                "message": f"api {manifest.api} excludes this kernel's plugin API {PLUGIN_API_VERSION}",
            }
        )
    if pyproject is not None and pyproject.is_file():
        try:
            project = tomllib.loads(read_text(pyproject)).get("project", {})
        except (tomllib.TOMLDecodeError, SymphonyError) as exc:
            report["errors"].append({"code": "plugin.bad_pyproject", "message": f"{pyproject}: {exc}"})
            project = {}
        eps = project.get("entry-points", {}).get("symphony.plugins", {})
        if not eps:
            report["errors"].append(
                {
                    "code": "plugin.no_entry_point",
                    "message": f'{pyproject} declares no [project.entry-points."symphony.plugins"]',
                }
            )
        elif manifest.id not in eps:
            report["errors"].append(
                {
                    "code": "plugin.id_mismatch",
                    "message": f"entry point names {sorted(eps)} do not include the manifest id {manifest.id!r}",
                }
            )
        if project.get("name") and project["name"] != manifest.id:
            report["warnings"].append(
                {
                    "code": "plugin.name_mismatch",
                    "message": f"distribution {project['name']!r} != manifest id {manifest.id!r}",
                }
            )
    for slot in manifest.provides:
        if slot.startswith("service:") and manifest.kind not in (
            "service",
            "pit",
            "workflow",
            "operator",
            "instrument",
            "conductor",
            "registry",
            "sandbox",
        ):
            report["warnings"].append(
                {"code": "plugin.unusual_service", "message": f"{manifest.kind} plugin provides {slot}"}
            )
    report["ok"] = not report["errors"]
    return report


@plugins.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate_plugin(path: Path, as_json: bool) -> None:
    """Check a plugin's manifest (a symphony.toml file or a plugin project folder).

    Checks the manifest against the published schema, the api range against this kernel, and
    (for a project folder) the symphony.plugins entry point. Exits 1 when anything is wrong.
    """
    report = _validate_path(path)
    if as_json:
        echo_json(report)
    else:
        for err in report["errors"]:
            click.echo(f"error: {err['message']} ({err.get('code')})", err=True)
        for warn in report["warnings"]:
            click.echo(f"warning: {warn['message']} ({warn.get('code')})", err=True)
        if report["ok"]:
            click.echo(f"ok: {report.get('id')} ({report.get('manifest')})")
    if not report["ok"]:
        raise SystemExit(EXIT_ERROR)


@plugins.command("schema")
def manifest_schema() -> None:
    """Print the JSON Schema of the plugin manifest (symphony.toml)."""
    from symphony.plugins.manifest import MANIFEST_SCHEMA

    click.echo(json.dumps(MANIFEST_SCHEMA, indent=2))
