"""``symphony plugins``: list, inspect, validate and describe plugins."""

from __future__ import annotations

import json
import tomllib
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


def _problem(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _manifest_report(manifest_path: Path, report: dict[str, Any]) -> Any:
    """Load the manifest, adding every problem it has to ``report``; the Manifest or None."""
    from symphony._version import PLUGIN_API_VERSION
    from symphony.plugins.manifest import api_compatible, check_manifest_file

    manifest, problems = check_manifest_file(manifest_path)
    if manifest is None:
        report["errors"].extend(
            {k: v for k, v in p.to_wire().items() if k in ("code", "message", "context")} for p in problems
        )
        return None
    report["id"] = manifest.id
    if not api_compatible(manifest.api, PLUGIN_API_VERSION):
        report["errors"].append(
            _problem(
                "plugin.incompatible_api",
                f"api {manifest.api} excludes this kernel's plugin API {PLUGIN_API_VERSION}",
            )
        )
    return manifest


def _validate_path(path: Path, *, build: bool = True) -> dict[str, Any]:
    """Validate a manifest file or a plugin project folder; return a report with every problem."""
    from symphony.commons.errors import SymphonyError
    from symphony.commons.fs import read_text
    from symphony.plugins.manifest import MANIFEST_FILENAME

    report: dict[str, Any] = {"path": str(path), "ok": False, "errors": [], "warnings": []}
    manifest_path = path
    pyproject = None
    if path.is_dir():
        pyproject = path / "pyproject.toml"
        found = sorted(path.glob(f"src/*/{MANIFEST_FILENAME}")) or sorted(path.glob(f"*/{MANIFEST_FILENAME}"))
        if (path / MANIFEST_FILENAME).is_file():
            found = [path / MANIFEST_FILENAME]
        if not found:
            report["errors"].append(_problem("plugin.manifest_missing", f"no {MANIFEST_FILENAME} under {path}"))
            return report
        manifest_path = found[0]
    report["manifest"] = str(manifest_path)
    manifest = _manifest_report(manifest_path, report)
    project: dict[str, Any] = {}
    pyproject_doc: dict[str, Any] = {}
    if pyproject is not None and pyproject.is_file():
        try:
            pyproject_doc = tomllib.loads(read_text(pyproject))
            project = pyproject_doc.get("project", {})
        except (tomllib.TOMLDecodeError, SymphonyError) as exc:
            report["errors"].append(_problem("plugin.bad_pyproject", f"{pyproject}: {exc}"))
        eps = project.get("entry-points", {}).get("symphony.plugins", {})
        if not eps and not report["errors"]:
            report["errors"].append(
                _problem(
                    "plugin.no_entry_point",
                    f'{pyproject} declares no [project.entry-points."symphony.plugins"]',
                )
            )
        elif manifest is not None and eps and manifest.id not in eps:
            report["errors"].append(
                _problem(
                    "plugin.id_mismatch",
                    f"entry point names {sorted(eps)} do not include the manifest id {manifest.id!r}",
                )
            )
        if manifest is not None and project.get("name") and project["name"] != manifest.id:
            report["warnings"].append(
                _problem("plugin.name_mismatch", f"distribution {project['name']!r} != manifest id {manifest.id!r}")
            )
        if build and manifest is not None and eps and not report["errors"]:
            _check_wheel(path, pyproject_doc, manifest_path, eps, report)
    if manifest is not None:
        for slot in manifest.provides:
            if slot.startswith("service:") and manifest.kind not in _SERVICE_KINDS:
                report["warnings"].append(
                    _problem("plugin.unusual_service", f"{manifest.kind} plugin provides {slot}")
                )
    report["ok"] = not report["errors"]
    return report


_SERVICE_KINDS = ("service", "pit", "workflow", "operator", "instrument", "conductor", "registry", "sandbox")

_BUILD_WHEEL = """
import importlib, sys
sys.path[:0] = [p for p in sys.argv[3:]]
module, _, attr = sys.argv[1].partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
print(backend.build_wheel(sys.argv[2]))
"""

_NOT_COPIED = (".git", ".venv", "venv", "__pycache__", "build", "dist", "*.egg-info", ".tox", ".mypy_cache")


def _check_wheel(
    project_dir: Path, pyproject: dict[str, Any], manifest_path: Path, eps: dict[str, str], report: dict[str, Any]
) -> None:
    """Build the project's wheel (PEP 517, in a copy) and check it ships the manifest and entry point."""
    import shutil
    import subprocess
    import sys
    import tempfile
    import zipfile

    system = pyproject.get("build-system", {})
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    with tempfile.TemporaryDirectory(prefix="symphony-validate-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(project_dir, copy, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
        out = Path(tmp) / "wheel"
        out.mkdir()
        backend_path = [str(copy / p) for p in system.get("backend-path", [])]
        proc = subprocess.run(
            [sys.executable, "-c", _BUILD_WHEEL, backend, str(out), *backend_path],
            cwd=copy,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        wheels = sorted(out.glob("*.whl"))
        if (proc.returncode != 0 or not wheels) and "build-system" not in pyproject:
            report["errors"].append(
                _problem(
                    "plugin.no_build_system",
                    "pyproject.toml has no [build-system]: pip then builds the wheel with setuptools' "
                    "legacy backend, which leaves out symphony.toml unless it is declared as package "
                    'data; add [build-system] requires = ["hatchling"] (see the SDK README)',
                )
            )
            return
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel written"]
            report["warnings"].append(
                _problem(
                    "plugin.wheel_unchecked",
                    f"could not build the wheel with {backend} to check what it ships: {tail[0]} "
                    "(pass --no-build to skip this check)",
                )
            )
            return
        report["wheel"] = wheels[0].name
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = set(wheel.namelist())
            ep_file = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
            shipped_eps = wheel.read(ep_file).decode("utf-8") if ep_file else ""
            for plugin_id, target in eps.items():
                if f"{plugin_id} = {target}" not in shipped_eps:
                    report["errors"].append(
                        _problem(
                            "plugin.entry_point_not_shipped",
                            f"the built wheel {wheels[0].name} has no symphony.plugins entry point {plugin_id}",
                        )
                    )
                package = target.split(":", 1)[0].split(".", 1)[0]
                inside = f"{package}/{manifest_path.name}"
                if inside not in names:
                    hint = "" if "build-system" in pyproject else " (pyproject.toml has no [build-system])"
                    report["errors"].append(
                        _problem(
                            "plugin.manifest_not_shipped",
                            f"the built wheel {wheels[0].name} leaves out {inside}{hint}: installed from it, "
                            "the plugin is invalid; build with hatchling (see the SDK README) or "
                            "declare the file as package data",
                        )
                    )


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
    report = _validate_path(path, build=not no_build)
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
