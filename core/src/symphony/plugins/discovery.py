"""Find installed plugins without importing them, and remember what was found.

A plugin is a distribution with an entry point in the ``symphony.plugins`` group whose
import package ships a ``symphony.toml`` manifest. A cold scan walks every installed
distribution (``importlib.metadata``), locates each manifest with ``importlib.util.find_spec``
on the entry point's *top-level* package (which does not import it) and validates it.

The result is kept in an on-disk **discovery index** (JSON, in the user cache dir), keyed on
the interpreter, the kernel's plugin-API version, every ``sys.path`` entry with its
modification time, and every manifest file with its own. Installing or removing a
distribution changes its ``sys.path`` directory's mtime; editing a manifest changes the
manifest's; either invalidates the index. A warm start therefore costs a few ``stat`` calls
and one JSON read, whatever the number of installed distributions.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import zlib
from pathlib import Path
from typing import Any

from symphony._version import PLUGIN_API_VERSION
from symphony.commons.errors import SymphonyError
from symphony.plugins.manifest import api_compatible, load_manifest, manifest_path_of, parse_manifest
from symphony.plugins.states import PluginRecord, PluginState

__all__ = ["ENTRY_POINT_GROUP", "INDEX_FORMAT", "DiscoveryIndex", "discover", "scan_installed"]

ENTRY_POINT_GROUP = "symphony.plugins"
INDEX_FORMAT = 4


def _mtime(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return -1


def scan_installed(paths: list[str] | None = None) -> list[dict[str, Any]]:
    """Walk every installed distribution; return one JSON-safe entry per plugin entry point.

    ``paths`` defaults to ``sys.path``. Each entry holds the entry point, the distribution, the
    manifest path and either the validated manifest (as a mapping) or the error that stopped it.
    """
    import importlib.metadata as metadata

    search = list(sys.path if paths is None else paths)
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for dist in metadata.distributions(path=search):
        name = dist.metadata["Name"]
        if not name or name.lower() in seen:
            continue  # the first on sys.path wins, as for imports
        seen.add(name.lower())
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            entry: dict[str, Any] = {
                "name": ep.name,
                "value": ep.value,
                "distribution": name,
                "dist_version": dist.version,
                "manifest_path": None,
                "manifest": None,
                "error": None,
            }
            try:
                manifest_path = manifest_path_of(ep.value, search)
                entry["manifest_path"] = str(manifest_path)
                manifest = load_manifest(manifest_path)
                entry["manifest"] = manifest.to_dict()
                entry["api_compatible"] = api_compatible(manifest.api, PLUGIN_API_VERSION)
                if manifest.id != ep.name:
                    raise SymphonyError(
                        f"entry point name {ep.name!r} differs from the manifest id {manifest.id!r}",
                        code="plugin.id_mismatch",
                        context={"plugin": ep.name, "file": str(manifest_path)},
                        hint="name the entry point after the distribution, as the manifest id is",
                    )
            except SymphonyError as exc:
                entry["manifest"] = None
                entry["error"] = {**exc.to_wire(), "traceback": None}
            except Exception as exc:  # a broken package must not stop discovery of the others
                entry["manifest"] = None
                entry["error"] = {
                    "code": "plugin.discovery_failed",
                    "message": f"cannot locate the manifest of {ep.name}: {exc!r}",
                    "traceback": traceback.format_exc(),
                }
            entries.append(entry)
    entries.sort(key=lambda e: e["name"])
    return entries


class DiscoveryIndex:
    """The on-disk cache of :func:`scan_installed`, invalidated by any ``sys.path`` change."""

    def __init__(self, path: Path | None = None, *, sys_path: list[str] | None = None) -> None:
        self.sys_path = list(sys.path if sys_path is None else sys_path)
        if path is None:
            from symphony.commons.fs import cache_dir

            key = (sys.executable + "\0" + "\0".join(self.sys_path)).encode()
            digest = f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}"
            path = cache_dir() / f"plugin-index-{digest}.json"
        self.path = path
        self.last_status = "unused"
        """``warm`` (read from disk), ``cold`` (rebuilt) or ``disabled`` — for ``doctor``."""

    def _key(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "kernel_api": PLUGIN_API_VERSION,
            "python": sys.version,
            "executable": sys.executable,
            "sys_path": [[p, _mtime(p)] for p in self.sys_path],
        }

    def load(self) -> list[dict[str, Any]] | None:
        """Return the cached entries if still valid, else None."""
        from symphony.commons.fs import read_bytes

        try:
            data = json.loads(read_bytes(self.path))
        except (SymphonyError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("key") != self._key():
            return None
        for path, mtime in data.get("manifests", []):
            if _mtime(path) != mtime:
                return None
        entries = data.get("entries")
        return entries if isinstance(entries, list) else None

    def save(self, entries: list[dict[str, Any]]) -> None:
        """Write the entries with the current key; failures to write only cost a rescan later."""
        from symphony.commons.fs import atomic_write

        manifests = [
            [e["manifest_path"], _mtime(e["manifest_path"])] for e in entries if e.get("manifest_path")
        ]
        payload = {"key": self._key(), "manifests": manifests, "entries": entries}
        try:
            atomic_write(self.path, json.dumps(payload, separators=(",", ":")), fsync=False)
        except (SymphonyError, OSError):
            pass

    def entries(self, *, use_cache: bool = True) -> list[dict[str, Any]]:
        """The discovered entries: from the index when valid, else from a fresh scan."""
        if use_cache:
            cached = self.load()
            if cached is not None:
                self.last_status = "warm"
                return cached
        entries = scan_installed(self.sys_path)
        self.last_status = "cold" if use_cache else "disabled"
        if use_cache:
            self.save(entries)
        return entries


def records_from_entries(entries: list[dict[str, Any]]) -> list[PluginRecord]:
    """Turn index entries into :class:`PluginRecord` objects (no validation, no import)."""
    records = []
    for e in entries:
        manifest = None
        if e.get("manifest") is not None:
            manifest = parse_manifest(e["manifest"], source=e.get("manifest_path"), trusted=True)
        record = PluginRecord(
            id=e["name"],
            entry_point=e["value"],
            manifest=manifest,
            distribution=e.get("distribution"),
            dist_version=e.get("dist_version"),
            api_ok=e.get("api_compatible"),
        )
        error = e.get("error")
        if error:
            record.fail(
                PluginState.INVALID,
                error.get("message", "invalid plugin"),
                code=error.get("code", "plugin.invalid"),
                traceback=error.get("traceback"),
            )
        records.append(record)
    return records


def discover(
    *, use_index: bool | None = None, search_path: list[str] | None = None
) -> tuple[list[PluginRecord], str]:
    """Discover installed plugins; return the records and how the index was used.

    ``search_path`` defaults to ``sys.path``; ``use_index`` defaults to on unless
    ``SYMPHONY_NO_PLUGIN_INDEX=1``.
    """
    from symphony.commons.config import env_flag

    if use_index is None:
        use_index = env_flag("SYMPHONY_NO_PLUGIN_INDEX") is not True
    index = DiscoveryIndex(sys_path=search_path)
    return records_from_entries(index.entries(use_cache=use_index)), index.last_status
