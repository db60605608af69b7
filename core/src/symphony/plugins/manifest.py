"""The plugin manifest: ``symphony.toml`` shipped inside each plugin's import package.

The kernel reads it *without importing the plugin*: discovery stays fast, and a plugin that
crashes on import cannot take the host down. The format is published as a JSON Schema
(:data:`MANIFEST_SCHEMA`, also ``symphony plugins schema``); ``sdk/docs/manifest.md``, generated
from it, explains every field with an example.

``[contributes.<registry>.<entry>]`` tables carry data for a registry that another plugin owns
(the workflow plugin reads ``contributes.node_types``). The kernel only checks their shape (a
table of tables whose values are strings, booleans, lists of strings or tables of strings) and
keeps them in :attr:`Manifest.contributes`; what they mean is up to the registry's owner.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from symphony.commons.errors import NotFoundError, PluginError, SymphonyError
from symphony.commons.validation import PLUGIN_ID_REGEX

__all__ = [
    "KINDS",
    "MANIFEST_FILENAME",
    "MANIFEST_SCHEMA",
    "CommandInfo",
    "Manifest",
    "api_compatible",
    "load_manifest",
    "manifest_path_of",
    "manifest_problems",
    "parse_manifest",
]

MANIFEST_FILENAME = "symphony.toml"

KINDS = (
    "transport",
    "codec",
    "pit",
    "executor",
    "conductor",
    "instrument",
    "operator",
    "addon",
    "workflow",
    "service",
    "sandbox",
    "registry",
)
"""The plugin kinds the kernel knows."""

_ID = f"^{PLUGIN_ID_REGEX}$"
_SLOT = r"^[a-z][a-z0-9-]*:[A-Za-z0-9_.*/+-][A-Za-z0-9_.*/+:-]*$"
_REGISTRY = r"^[a-z][a-z0-9_]{0,63}$"
_ENTRY = r"^[A-Za-z0-9_][A-Za-z0-9_.:/+-]{0,127}$"
_FIELD = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
_STRING_MAP = {
    "type": "object",
    "propertyNames": {"pattern": _FIELD},
    "additionalProperties": {"type": "string"},
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://symphony.dev/schemas/plugin-manifest-0.1.json",
    "title": "Symphony plugin manifest (symphony.toml)",
    "description": "Shipped inside the plugin's import package; read without importing the plugin.",
    "type": "object",
    "additionalProperties": False,
    "required": ["plugin"],
    "dependentSchemas": {"config_schema": {"properties": {"plugin": {"required": ["config_section"]}}}},
    "properties": {
        "plugin": {
            "type": "object",
            "description": "Who the plugin is and what it offers.",
            "additionalProperties": False,
            "required": ["id", "version", "kind", "api"],
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": _ID,
                    "maxLength": 128,
                    "description": "The distribution name (`pip install <id>`); unique among installed plugins.",
                },
                "version": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The plugin's version, normally the distribution's.",
                },
                "kind": {
                    "enum": list(KINDS),
                    "description": "What the plugin is; shown by `symphony plugins list`.",
                },
                "api": {
                    "type": "string",
                    "minLength": 1,
                    "format": "version-range",
                    "description": (
                        "The kernel plugin-API versions it was built for, a PEP 440 range "
                        "(`>=0.1,<0.2`); checked before import, else the plugin is `incompatible`."
                    ),
                },
                "summary": {"type": "string", "description": "One line for listings and `--help`."},
                "provides": {
                    "type": "array",
                    "items": {"type": "string", "pattern": _SLOT},
                    "uniqueItems": True,
                    "description": (
                        "Named slots `<kind>:<name>` it fills (`service:text-stats`, `transport:unix`, "
                        "`node-type:text.split`); the kernel activates it on first use of one. Two "
                        "usable plugins providing one slot are both `conflicting`."
                    ),
                },
                "requires": {
                    "type": "array",
                    "items": {"type": "string", "pattern": _ID},
                    "uniqueItems": True,
                    "description": (
                        "Plugin ids that must be usable and are activated first; a missing one makes "
                        "this plugin `incompatible`."
                    ),
                },
                "after": {
                    "type": "array",
                    "items": {"type": "string", "pattern": _ID},
                    "uniqueItems": True,
                    "description": "Plugin ids activated first when present (ordering only, not required).",
                },
                "activation": {
                    "oneOf": [
                        {"enum": ["on-demand", "on-startup"]},
                        {
                            "type": "array",
                            "items": {"enum": ["on-demand", "on-startup"]},
                            "minItems": 1,
                            "maxItems": 1,
                        },
                    ],
                    "description": (
                        "`on-demand` (default): imported on first use of a slot, service or command; "
                        "`on-startup`: when the kernel opens. A one-item list is accepted too."
                    ),
                },
                "permissions": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "uniqueItems": True,
                    "description": (
                        "What it may do, `<area>[:<detail>]` with area fs, net, process, model, bus, "
                        "userdata or env (`fs:read`); shown by `symphony plugins inspect`."
                    ),
                },
                "commands": {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            {"type": "string", "pattern": r"^[a-z][a-z0-9-]*$"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "pattern": r"^[a-z][a-z0-9-]*$"},
                                    "summary": {"type": "string"},
                                },
                            },
                        ]
                    },
                    "description": (
                        "Top-level `symphony` commands it adds (a name, or `{ name, summary }`), so "
                        "`symphony --help` lists them without importing it; the plugin adds them with "
                        "the `symphony_register_commands` hook."
                    ),
                },
                "config_section": {
                    "type": "string",
                    "pattern": r"^[a-z][a-z0-9_]*$",
                    "description": (
                        "The config section it owns (`[<section>]` in the config files, "
                        "`SYMPHONY_<SECTION>__<KEY>`); checked against [config_schema]."
                    ),
                },
            },
        },
        "config_schema": {
            "$ref": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": (
                "JSON Schema of the config section (needs plugin.config_section); values are "
                "checked without importing the plugin, and `default`s fill missing keys."
            ),
        },
        "contributes": {
            "type": "object",
            "description": (
                "Data for registries other plugins own: [contributes.<registry>.<entry>] tables "
                "(e.g. contributes.node_types, read by the workflow plugin). The kernel checks "
                "only this shape; the registry's owner checks the content."
            ),
            "propertyNames": {"pattern": _REGISTRY},
            "additionalProperties": {
                "type": "object",
                "propertyNames": {"pattern": _ENTRY},
                "additionalProperties": {
                    "type": "object",
                    "propertyNames": {"pattern": _FIELD},
                    "additionalProperties": {
                        "oneOf": [
                            {"type": "string"},
                            {"type": "boolean"},
                            {"type": "array", "items": {"type": "string"}},
                            _STRING_MAP,
                        ]
                    },
                },
            },
        },
    },
}


@attrs.frozen
class CommandInfo:
    """A top-level CLI command a plugin contributes, known without importing the plugin."""

    name: str
    summary: str = ""


@attrs.frozen
class Manifest:
    """A parsed, validated plugin manifest."""

    id: str
    version: str
    kind: str
    api: str
    summary: str = ""
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    activation: str = "on-demand"
    permissions: tuple[str, ...] = ()
    commands: tuple[CommandInfo, ...] = ()
    config_section: str | None = None
    config_schema: Mapping[str, Any] | None = attrs.field(default=None, eq=False, hash=False)
    contributes: Mapping[str, Mapping[str, Mapping[str, Any]]] = attrs.field(
        factory=dict, eq=False, hash=False
    )
    source: str | None = attrs.field(default=None, eq=False)

    def services(self) -> list[str]:
        """Names of the services this plugin provides (its ``service:<name>`` slots)."""
        return [slot.split(":", 1)[1] for slot in self.provides if slot.startswith("service:")]

    def contributions(self, registry: str) -> Mapping[str, Mapping[str, Any]]:
        """The ``[contributes.<registry>]`` entries (entry name -> its table); empty if none."""
        return self.contributes.get(registry, {})

    def to_dict(self) -> dict[str, Any]:
        """The manifest as the plain mapping the TOML file holds (JSON-safe)."""
        plugin: dict[str, Any] = {}
        for key in MANIFEST_SCHEMA["properties"]["plugin"]["properties"]:  # the fields of the [plugin] table
            value = getattr(self, key)
            if isinstance(value, tuple):
                value = [attrs.asdict(v) if isinstance(v, CommandInfo) else v for v in value]
            if value is not None:
                plugin[key] = value
        data: dict[str, Any] = {"plugin": plugin}
        if self.config_schema is not None:
            data["config_schema"] = dict(self.config_schema)
        if self.contributes:
            data["contributes"] = {
                point: {name: dict(entry) for name, entry in entries.items()}
                for point, entries in self.contributes.items()
            }
        return data


_validator: Any = None


def _schema_validator() -> Any:
    global _validator
    if _validator is None:
        import jsonschema
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        formats = jsonschema.FormatChecker(formats=())
        formats.checks("version-range", raises=InvalidSpecifier)(  # a PEP 440 specifier set
            lambda value: not isinstance(value, str) or SpecifierSet(value) is not None
        )
        cls = jsonschema.validators.validator_for(MANIFEST_SCHEMA)
        cls.check_schema(MANIFEST_SCHEMA)
        _validator = cls(MANIFEST_SCHEMA, format_checker=formats)
    return _validator


def _json_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def parse_manifest(data: Mapping[str, Any], *, source: str | None = None, trusted: bool = False) -> Manifest:
    """Validate a manifest mapping and build a :class:`Manifest`.

    ``trusted=True`` skips schema validation (for manifests read back from the kernel's own
    index, which were validated when the index was built).

    Raises :class:`PluginError` (code ``plugin.bad_manifest``) naming the file, the key path
    and the rule that failed.
    """
    if not trusted:
        problems = manifest_problems(data, source=source)
        if problems:
            first = problems[0]
            first.context["errors"] = len(problems)
            raise first
    plugin = dict(data["plugin"])  # its keys are Manifest's fields (the schema admits no other)
    if isinstance(plugin.get("activation"), list):
        plugin["activation"] = plugin["activation"][0]
    plugin["commands"] = [
        CommandInfo(c) if isinstance(c, str) else CommandInfo(**c) for c in plugin.get("commands", ())
    ]
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in plugin.items()}
    return Manifest(
        **fields,
        config_schema=data.get("config_schema"),
        contributes=data.get("contributes") or {},
        source=source,
    )


def manifest_problems(data: Any, *, source: str | None = None) -> list[PluginError]:
    """Every problem of a manifest mapping at once (empty when it is valid).

    Each is a :class:`PluginError` (code ``plugin.bad_manifest``) naming the file, the key
    path and the rule; :func:`parse_manifest` raises the first of them.
    """
    validator = _schema_validator()
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    plugin_table = data.get("plugin") if isinstance(data, Mapping) else None
    plugin_id = None
    if isinstance(plugin_table, Mapping) and isinstance(plugin_table.get("id"), str):
        plugin_id = plugin_table["id"]
    where = f"invalid plugin manifest {source or ''}".rstrip()
    problems: list[PluginError] = []
    for error in errors:
        key = _json_path(error.absolute_path)
        message = f"{where}: {key}: {error.message}"
        if error.validator == "enum" and list(error.absolute_path)[-1:] == ["kind"]:
            message = f"{where}: unknown kind {error.instance!r}"
        problems.append(
            PluginError(
                message,
                code="plugin.bad_manifest",
                context={"file": source, "plugin": plugin_id, "key": key, "rule": error.validator},
                hint="see `symphony plugins schema` for the manifest format",
            )
        )
    return problems


def api_compatible(api: str, kernel_api: str) -> bool:
    """True when the kernel's plugin-API version lies in the manifest's ``api`` range."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(api).contains(kernel_api, prereleases=True)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a ``symphony.toml`` file.

    Raises :class:`NotFoundError` if the file is missing and :class:`PluginError`
    (``plugin.bad_manifest``) if it is not valid TOML or breaks the schema.
    """
    from symphony.commons.fs import read_bytes

    path = Path(path)
    try:
        raw = read_bytes(path)  # a regular file of at most fs.DEFAULT_MAX_FILE_SIZE bytes
    except NotFoundError:
        raise NotFoundError(
            f"no plugin manifest at {path}",
            code="plugin.manifest_missing",
            context={"file": str(path)},
            hint=f"ship {MANIFEST_FILENAME} inside the plugin's import package",
        ) from None
    except SymphonyError as exc:
        raise PluginError(
            f"invalid plugin manifest {path}: {exc.message}",
            code="plugin.bad_manifest",
            context={"file": str(path), "rule": exc.code or "readable"},
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PluginError(
            f"invalid plugin manifest {path}: not valid TOML: {exc}",
            code="plugin.bad_manifest",
            context={"file": str(path), "rule": "toml-syntax"},
        ) from None
    return parse_manifest(data, source=str(path))


def manifest_path_of(module_name: str, search_path: Sequence[str] | None = None) -> Path:
    """The ``symphony.toml`` of the package holding ``module_name`` (``pkg.mod[:attr]``).

    Found with ``PathFinder.find_spec`` on the top-level package, in ``search_path`` (default
    ``sys.path``): nothing is imported.
    """
    import importlib.machinery
    import sys

    top = module_name.split(":", 1)[0].split(".", 1)[0]
    spec = importlib.machinery.PathFinder.find_spec(top, sys.path if search_path is None else search_path)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise PluginError(
            f"{module_name!r} is not inside an importable package",
            code="plugin.manifest_missing",
            context={"module": module_name},
            hint=f"a plugin module lives in a package that ships {MANIFEST_FILENAME}",
        )
    return Path(locations[0]) / MANIFEST_FILENAME
