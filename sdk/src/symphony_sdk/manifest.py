"""Manifest helpers for plugin authors: find, load and check a plugin's ``symphony.toml``.

:func:`check_manifest` checks one manifest file; :func:`validate_project` checks a manifest
file or a whole plugin project folder, building its wheel (what ``symphony plugins validate``
runs).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from symphony import PLUGIN_API_VERSION
from symphony.commons.errors import PluginError, SymphonyError
from symphony.plugins.manifest import (
    MANIFEST_FILENAME,
    Manifest,
    api_compatible,
    load_manifest,
    manifest_path_of,
    manifest_problems,
)

__all__ = ["ManifestReport", "check_manifest", "manifest_path_of", "validate_project"]


@attrs.frozen
class ManifestReport:
    """The outcome of :func:`check_manifest`."""

    path: Path
    manifest: Manifest | None
    errors: tuple[SymphonyError, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the manifest is valid and compatible with this kernel."""
        return not self.errors


def _every_problem(path: Path, first: SymphonyError) -> list[SymphonyError]:
    """All the schema problems of the manifest ``load_manifest`` refused with ``first``."""
    if first.code != "plugin.bad_manifest" or first.context.get("rule") in ("toml-syntax", "readable"):
        return [first]
    from symphony.commons.fs import read_text

    try:
        data = tomllib.loads(read_text(path))  # load_manifest has just parsed it
    except (SymphonyError, ValueError):
        return [first]
    return [*manifest_problems(data, source=str(path))] or [first]


def check_manifest(path: str | Path) -> ManifestReport:
    """Validate a manifest and its ``api`` range against this kernel; never raises for bad input.

    The report holds every problem of the manifest at once, not only the first.
    """
    path = Path(path)
    try:
        manifest = load_manifest(path)
    except SymphonyError as exc:
        return ManifestReport(path, None, tuple(_every_problem(path, exc)))
    errors: list[SymphonyError] = []
    if not api_compatible(manifest.api, PLUGIN_API_VERSION):
        errors.append(
            PluginError(
                f"{manifest.id}: api {manifest.api} excludes this kernel's plugin API {PLUGIN_API_VERSION}",
                code="plugin.incompatible_api",
                context={"plugin": manifest.id, "file": str(path)},
            )
        )
    return ManifestReport(path, manifest, tuple(errors))


def _problem(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


_SERVICE_KINDS = ("service", "pit", "workflow", "operator", "instrument", "conductor", "registry", "sandbox")


def validate_project(path: str | Path, *, build: bool = True) -> dict[str, Any]:
    """Check a manifest file or a plugin project folder; return a JSON-safe report of every problem.

    The report has ``path``, ``ok``, ``errors`` and ``warnings`` (each ``{"code", "message"}``),
    and ``id``, ``manifest`` and ``wheel`` when known. A project folder's ``pyproject.toml``
    must declare the ``symphony.plugins`` entry point named after the manifest id; with
    ``build`` its wheel is built (PEP 517, in a copy) and must ship the manifest and the entry
    point. Never raises for a bad project.
    """
    path = Path(path)
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
    checked = check_manifest(manifest_path)
    manifest = checked.manifest
    report["errors"].extend(
        {k: v for k, v in p.to_wire().items() if k in ("code", "message", "context")} for p in checked.errors
    )
    if manifest is not None:
        report["id"] = manifest.id
    if pyproject is not None and pyproject.is_file():
        _check_project(path, pyproject, manifest, manifest_path, report, build=build)
    if manifest is not None:
        for slot in manifest.provides:
            if slot.startswith("service:") and manifest.kind not in _SERVICE_KINDS:
                report["warnings"].append(
                    _problem("plugin.unusual_service", f"{manifest.kind} plugin provides {slot}")
                )
    report["ok"] = not report["errors"]
    return report


def _check_project(
    path: Path,
    pyproject: Path,
    manifest: Manifest | None,
    manifest_path: Path,
    report: dict[str, Any],
    *,
    build: bool,
) -> None:
    """The project folder's part of :func:`validate_project`: entry point, name, built wheel."""
    from symphony.commons.fs import read_text

    project: dict[str, Any] = {}
    pyproject_doc: dict[str, Any] = {}
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


_BUILD_WHEEL = """
import importlib, sys
sys.path[:0] = [p for p in sys.argv[3:]]
module, _, attr = sys.argv[1].partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
sys.stdout.write(backend.build_wheel(sys.argv[2]) + "\\n")
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
