"""Manifest helpers for plugin authors: find, load and check a plugin's ``symphony.toml``."""

from __future__ import annotations

from pathlib import Path

import attrs

from symphony import PLUGIN_API_VERSION
from symphony.commons.errors import PluginError, SymphonyError
from symphony.plugins.manifest import Manifest, api_compatible, check_manifest_file, manifest_path_of

__all__ = ["ManifestReport", "check_manifest", "manifest_path_of"]


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
    """Validate a manifest and its ``api`` range against this kernel; never raises for bad input.

    The report holds every problem of the manifest at once, not only the first.
    """
    path = Path(path)
    manifest, problems = check_manifest_file(path)
    if manifest is None:
        return ManifestReport(path, None, tuple(problems))
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
