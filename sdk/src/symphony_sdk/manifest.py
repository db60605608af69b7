"""Manifest helpers for plugin authors: find, load and check a plugin's ``symphony.toml``."""

from __future__ import annotations

from pathlib import Path

import attrs

from symphony._version import PLUGIN_API_VERSION
from symphony.commons.errors import PluginError, SymphonyError
from symphony.plugins.manifest import MANIFEST_FILENAME, Manifest, api_compatible, load_manifest

__all__ = ["ManifestReport", "check_manifest", "manifest_path_of"]


def manifest_path_of(module_name: str) -> Path:
    """The ``symphony.toml`` path of the package that holds ``module_name`` (no import)."""
    import importlib.util

    top = module_name.split(":", 1)[0].split(".", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(
            f"{module_name!r} is not in an importable package",
            code="plugin.manifest_missing",
            context={"module": module_name},
        )
    return Path(list(spec.submodule_search_locations)[0]) / MANIFEST_FILENAME


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


def check_manifest(path: str | Path) -> ManifestReport:
    """Validate a manifest and its ``api`` range against this kernel; never raises for bad input."""
    path = Path(path)
    try:
        manifest = load_manifest(path)
    except SymphonyError as exc:
        return ManifestReport(path, None, (exc,))
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
