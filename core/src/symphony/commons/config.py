"""Layered configuration, validated by JSON Schema, with a comment-preserving user-file editor.

Layers, later wins:

1. built-in defaults: the ``default`` values inside the section JSON Schemas (source ``"default"``);
2. the packaged profile ``profiles/default.toml`` (source ``"profile:default"``);
3. the packaged profile ``profiles/<env>.toml`` (source ``"profile:<env>"``);
4. ``<config_dir>/default.toml`` then ``<config_dir>/<env>.toml`` (source: the file path);
5. the user file (``$SYMPHONY_USER_CONFIG`` or the platform config dir's ``config.toml``);
6. environment variables ``SYMPHONY_<SECTION>__<KEY>[__<SUBKEY>...]`` (source ``"env:<NAME>"``);
7. explicit overrides, nested or dotted (source ``"override"``).

Tables merge key by key at every depth; any other value (arrays included) replaces the one
below it. Missing files are skipped silently.

**Environments** (``SYMPHONY_ENV``, default ``development``; see :data:`ENVIRONMENTS`) pick
the packaged profile ``profiles/<env>.toml``; each profile file says what it sets.

**Environment variables.** ``SYMPHONY_LOGGING__LEVEL=debug`` sets ``logging.level``;
``SYMPHONY_KERNEL__HOOK_POLICY__SYMPHONY_STARTUP=isolate`` sets a nested key. Names are
upper-case in the environment and lower-case in the config. Variables starting with
``SYMPHONY_`` and containing no ``__`` are reserved (``SYMPHONY_ENV``, ``SYMPHONY_CONFIG_DIR``,
``SYMPHONY_STRICT_PLUGINS``...) and ignored here. Values are parsed by the schema type at that
key (see :func:`parse_env_value`). Variables are applied in name order, so
``SYMPHONY_KERNEL__HOOK_POLICY__SYMPHONY_STARTUP`` refines a whole-table
``SYMPHONY_KERNEL__HOOK_POLICY``.

**Errors** are :class:`~symphony.commons.errors.ConfigError` with these codes:
``config.parse`` (TOML syntax; context ``file``, ``line``, ``column``), ``config.unreadable``
(not a regular file, or over ``fs.max_file_size`` as set by the layers below it),
``config.unknown_key`` (context ``file``, ``key``; unknown sections too),
``config.invalid`` (context ``file`` = the layer that set the bad value, ``key`` dotted,
``rule`` such as ``"type=integer"`` or ``"enum=['debug', 'info', 'warning', 'error']"``),
``config.env_parse`` (context ``variable``, ``value``, ``expected``), ``config.bad_env``,
``config.section_conflict``, ``config.bad_schema``. Schema validation reports the first
problem (sorted by key) and lists every problem in ``context["errors"]`` when there are several.

**Which problems are fatal.** By default every problem raises. ``load_config(isolate=[...])``
collects the problems of the named sections in :attr:`Config.problems` instead (the kernel
isolates every plugin section, so a bad value fails only that plugin), and
``allow_unknown_sections=True`` turns a section no schema declares into a warning in
:attr:`Config.warnings` (``config.unclaimed_section``). ``isolate=True`` collects everything,
unreadable files included, for tools that must show a broken configuration. The editors
(:func:`set_user_value`, :func:`unset_user_value`) never load the layers, so they can repair
any file that is still TOML.

    >>> cfg = load_config(environ={}, user_file="/nonexistent.toml", overrides={"logging.level": "debug"})
    >>> cfg.get("logging.level"), cfg.source_of("logging.level"), cfg.source_of("fs.max_file_size")
    ('debug', 'override', 'default')

Importing this module is cheap: ``tomllib``, ``jsonschema`` and ``tomlkit`` are
imported by the functions that need them.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from symphony.commons.errors import ConfigError, NotFoundError, SymphonyError
from symphony.commons.fs import DEFAULT_MAX_FILE_SIZE

__all__ = [
    "CORE_SCHEMAS",
    "ENVIRONMENTS",
    "Config",
    "env_flag",
    "load_config",
    "parse_env_value",
    "set_user_value",
    "unset_user_value",
    "validate_section",
]

ENVIRONMENTS: tuple[str, ...] = ("development", "test", "production")
"""Allowed values of ``SYMPHONY_ENV``."""

ENV_PREFIX = "SYMPHONY_"
_SEP = "__"
_MiB = 1024 * 1024
_TiB = 1024 * 1024 * _MiB
_PROFILE_DIR = Path(__file__).with_name("profiles")
_MISSING: Any = object()

_LEVELS = ["debug", "info", "warning", "error"]


def _section(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a core section: a table holding only ``properties``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


CORE_SCHEMAS: dict[str, dict[str, Any]] = {
    "kernel": _section(
        "kernel",
        {
            "strict_plugins": {
                "type": "boolean",
                "default": False,
                "description": "Turn plugin problems (incompatible, import-failed...) into errors.",
            },
            "hook_policy": {
                "type": "object",
                "properties": {
                    hook: {"type": "string", "enum": ["propagate", "isolate"]}
                    for hook in ("symphony_startup", "symphony_shutdown")
                },
                "additionalProperties": False,
                "default": {},
                "description": "Failure policy of the lifecycle hooks: propagate the error or isolate-and-log it.",
            },
            "startup_timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 86400,
                "default": 30,
                "description": "Seconds allowed for each plugin's startup hook to finish.",
            },
        },
    ),
    "plugins": _section(
        "plugins",
        {
            "disabled": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Plugin ids never activated.",
            },
            "enabled": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Plugin ids allowed to activate; empty means all.",
            },
        },
    ),
    "logging": _section(
        "logging",
        {
            "level": {"type": "string", "enum": _LEVELS, "default": "info"},
            "console": {"type": "boolean", "default": True, "description": "Log to stderr."},
            "format": {
                "type": "string",
                "enum": ["auto", "pretty", "compact", "json"],
                "default": "auto",
                "description": "Console format; auto = pretty on a TTY, compact otherwise.",
            },
            "file": {"type": ["string", "null"], "default": None, "description": "Text log file path."},
            "rotation": {"type": "string", "enum": ["size", "daily", "hourly"], "default": "size"},
            "max_bytes": {"type": "integer", "minimum": 0, "maximum": _TiB, "default": 10 * _MiB},
            "backup_count": {"type": "integer", "minimum": 0, "maximum": 10_000, "default": 5},
            "json_file": {
                "type": ["string", "null"],
                "default": None,
                "description": "JSON-lines log file path.",
            },
        },
    ),
    "fs": _section(
        "fs",
        {
            "max_file_size": {
                "type": "integer",
                "minimum": 0,
                "maximum": _TiB,
                "default": DEFAULT_MAX_FILE_SIZE,
                "description": "Largest config file read, in bytes (after the layers below it).",
            },
        },
    ),
    "debug": _section("debug", {"duck_debugging": {"type": "boolean", "default": False}}),
}
"""JSON Schemas (draft 2020-12) of the core sections, with their defaults."""

# --------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """Deep copy into plain dicts and lists (tomlkit items and mappings included)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown_key(source: str, key: str, known: Collection[str]) -> ConfigError:
    shown = ", ".join(sorted(known)[:30]) or "(none)"
    return ConfigError(
        f"{source}: unknown configuration key {key!r}",
        code="config.unknown_key",
        context={"file": source, "key": key},
        hint=f"known keys here: {shown}",
    )


def _split_key(dotted: Any, source: str) -> list[str]:
    if not isinstance(dotted, str) or not dotted or any(not p for p in dotted.split(".")):
        raise ConfigError(
            f"{source}: malformed configuration key {dotted!r}",
            code="config.unknown_key",
            context={"file": source, "key": str(dotted)},
            hint="use dotted lower-case keys such as 'logging.level'",
        )
    return dotted.split(".")


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    """``value`` at the dotted path ``parts``: ``["a", "b"]`` gives ``{"a": {"b": value}}``."""
    layer: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        layer = {part: layer}
    return layer


def _schema_at(schemas: Mapping[str, Any], parts: list[str]) -> Mapping[str, Any]:
    """The schema at a dotted path as ``properties``, ``patternProperties`` and
    ``additionalProperties`` give it; ``{}`` (any value) where they give none."""
    schema: Any = schemas.get(parts[0])
    try:
        for part in parts[1:]:
            patterns = schema.get("patternProperties") or {}
            matching = [sub for pattern, sub in patterns.items() if re.search(pattern, part)]
            fallback = matching[0] if matching else schema.get("additionalProperties")
            schema = (schema.get("properties") or {}).get(part, fallback)
    except (AttributeError, TypeError, re.error):  # no schema here, or a broken one validation reports
        return {}
    return schema if isinstance(schema, Mapping) else {}


def _merge(
    target: dict[str, Any], layer: Mapping[str, Any], source: str, sources: dict[str, str], prefix: str = ""
) -> None:
    """Deep-merge ``layer`` into ``target``, recording which layer set each dotted key."""
    for raw_key, value in layer.items():
        key = str(raw_key)
        dotted = f"{prefix}{key}"
        if not (isinstance(value, Mapping) and isinstance(target.get(key), dict)):
            # this layer replaces the value below, and the sources of whatever it held
            for stale in [k for k in sources if k.startswith(dotted + ".")]:
                del sources[stale]
            target[key] = {} if isinstance(value, Mapping) else _plain(value)
        sources[dotted] = source
        if isinstance(value, Mapping):
            _merge(target[key], value, source, sources, dotted + ".")


def _defaults_of(schema: Any) -> Any:
    """The ``default`` a schema declares, else a table of its properties' defaults; _MISSING if none."""
    if not isinstance(schema, Mapping):
        return _MISSING
    if "default" in schema:
        return _plain(schema["default"])
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return _MISSING
    found = {str(key): _defaults_of(sub) for key, sub in props.items()}
    return {key: value for key, value in found.items() if value is not _MISSING}


def _defaults(schemas: Mapping[str, Any]) -> dict[str, Any]:
    """Each section's defaults (an empty table when its schema declares none)."""
    found = {section: _defaults_of(schema) for section, schema in schemas.items()}
    return {section: value if isinstance(value, dict) else {} for section, value in found.items()}


def _combine_schemas(extra: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    combined: dict[str, Mapping[str, Any]] = dict(CORE_SCHEMAS)
    for name, schema in (extra or {}).items():
        if not isinstance(name, str) or not name or "." in name or not isinstance(schema, Mapping):
            raise ConfigError(
                f"config section {name!r} needs a name without dots and a JSON Schema (a mapping)",
                code="config.bad_schema",
                context={"section": str(name)},
            )
        if name in CORE_SCHEMAS and schema is not CORE_SCHEMAS[name] and schema != CORE_SCHEMAS[name]:
            raise ConfigError(
                f"a plugin schema may not replace the core config section {name!r}",
                code="config.section_conflict",
                context={"section": name},
                hint="choose another config_section name for the plugin",
            )
        combined[name] = schema
    return combined


# --------------------------------------------------------------------------- validation


@functools.lru_cache(maxsize=256)
def _compiled(key: str) -> Any:
    import json

    from jsonschema import Draft202012Validator

    schema = json.loads(key)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _validator_for(section: str, schema: Mapping[str, Any]) -> Any:
    """A compiled validator, cached by the schema's canonical JSON text."""
    import json

    try:
        return _compiled(json.dumps(schema, sort_keys=True, default=str))
    except Exception as exc:  # not JSON (TypeError, ValueError), or jsonschema.SchemaError
        raise ConfigError(
            f"the schema of config section {section!r} is invalid: {getattr(exc, 'message', exc)}",
            code="config.bad_schema",
            context={"section": section},
        ) from exc


def _rule(error: Any) -> str:
    value = error.validator_value
    if error.validator == "type" and isinstance(value, list):
        shown = "|".join(value)
    elif isinstance(value, bool):
        shown = str(value).lower()
    else:  # enum lists are shown longer: they say what to write instead
        shown = _short(value, 80 if isinstance(value, (dict, list)) and error.validator != "enum" else 120)
    return f"{error.validator}={shown}"


def _source_for(sources: Mapping[str, str], path: list[str]) -> str:
    for end in range(len(path), 0, -1):
        found = sources.get(".".join(path[:end]))
        if found is not None:
            return found
    return "default"


def _problems(
    section: str, value: Any, schema: Mapping[str, Any], sources: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every rule ``value`` breaks, each as ``file`` (the layer that set it), dotted ``key``,
    ``rule``, ``message`` and, for a key the schema does not allow, the ``known`` keys."""
    from jsonschema.exceptions import best_match

    found: list[dict[str, Any]] = []
    for error in _validator_for(section, schema).iter_errors(value):
        if error.context:  # a oneOf/anyOf failure: name the branch that came closest (the deepest error)
            error = best_match([error])
        path = [section, *(str(p) for p in error.absolute_path)]
        known: list[str] | None = None
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = [str(k) for k in error.schema.get("properties", {})]
            patterns = error.schema.get("patternProperties", {})
            extra = [
                k
                for k in map(str, error.instance)
                if k not in allowed and not any(re.search(p, k) for p in patterns)
            ]
            if extra:  # name the first key the schema does not allow
                path.append(extra[0])
                known = allowed
        found.append(
            {
                "file": _source_for(sources, path),
                "key": ".".join(path),
                "rule": _rule(error),
                "message": _short(error.message),
                "known": known,
            }
        )
    return found


def _error(problems: list[dict[str, Any]]) -> ConfigError:
    """The error for a list of :func:`_problems`: the first by key, every one in ``errors``."""
    problems = sorted(problems, key=lambda p: str(p["key"]))
    first = problems[0]
    if first["known"] is not None:
        error = _unknown_key(first["file"], first["key"], first["known"])
        error.context["rule"] = first["rule"]
    else:
        error = ConfigError(
            f"{first['file']}: {first['key']}: {first['message']} (rule {first['rule']})",
            code="config.invalid",
            context={"file": first["file"], "key": first["key"], "rule": first["rule"]},
        )
    if len(problems) > 1:
        error.context["errors"] = [{k: p[k] for k in ("file", "key", "rule")} for p in problems]
    return error


def validate_section(
    section: str, data: Mapping[str, Any] | None, schema: Mapping[str, Any], *, source: str = "<mapping>"
) -> None:
    """Check one section's values against its JSON Schema, as :func:`load_config` checks the
    layered config: raises :class:`ConfigError` (``config.unknown_key`` or ``config.invalid``)
    whose context names the ``file`` (``source``), the dotted ``key`` and the ``rule``."""
    found = _problems(section, dict(data or {}), schema, {section: source})
    if found:
        raise _error(found)


# --------------------------------------------------------------------------- parsing


def _read_file(path: Path, max_size: int) -> bytes | None:
    """A config file's bytes (a regular file within ``max_size``); None when it does not exist."""
    from symphony.commons.fs import read_bytes

    try:
        return read_bytes(path, max_size=max_size)
    except SymphonyError as exc:
        if isinstance(exc, NotFoundError) or isinstance(exc.__cause__, NotADirectoryError):
            return None
        raise ConfigError(
            f"cannot read config file {path}: {exc.message}",
            code="config.unreadable",
            context={"file": str(path), "reason": exc.code},
            hint=exc.hint or "point the setting at a regular TOML file",
        ) from exc


def _file_limit(data: Mapping[str, Any]) -> int:
    """``fs.max_file_size`` as set by the layers merged so far (it bounds the next file read)."""
    fs = data.get("fs")
    limit = fs.get("max_file_size") if isinstance(fs, dict) else None
    return limit if type(limit) is int and limit >= 0 else DEFAULT_MAX_FILE_SIZE


def _parse_toml_bytes(raw: bytes, label: str) -> dict[str, Any]:
    import tomllib

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{label}: not valid UTF-8 (line {line})",
            code="config.parse",
            context={"file": label, "line": line, "reason": "invalid UTF-8"},
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(label, exc) from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{label}: TOML nested too deeply",
            code="config.parse",
            context={"file": label, "line": None, "reason": "nested too deeply"},
        ) from exc


def _toml_error(label: str, exc: Exception) -> ConfigError:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None) or getattr(exc, "line", None)
    column: int | None = getattr(exc, "colno", None) or getattr(exc, "col", None)
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if found and line is None:
        line, column = int(found.group(1)), int(found.group(2))
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    where = f" (line {line}, column {column})" if line is not None else ""
    return ConfigError(
        f"{label}: TOML syntax error{where}: {reason}",
        code="config.parse",
        context={"file": label, "line": line, "column": column, "reason": reason},
        hint="check the TOML syntax at that line",
    )


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_TYPE_ORDER = ("null", "boolean", "integer", "number", "array", "object", "string")
_PARSE_HINTS = {
    "boolean": "use true/false, 1/0, yes/no or on/off",
    "integer": "use a whole number such as 42",
    "number": "use a number such as 1.5",
    "array": 'use JSON such as ["a", "b"]',
    "object": 'use JSON such as {"key": "value"}',
}


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """The on/off variable ``name``: True for ``1/true/yes/on``, False for ``0/false/no/off``
    (any case), None when it is unset or says neither."""
    word = (os.environ if environ is None else environ).get(name, "").strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def _literal(text: str) -> Any:
    """``text`` read as JSON, else as a TOML value (inline arrays and tables), else as a float
    (``.5``, which neither of them reads); _MISSING when nothing reads it."""
    import json
    import tomllib

    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        doc = tomllib.loads("v = " + text)
    except (ValueError, RecursionError):
        doc = {}
    if set(doc) == {"v"}:
        return doc["v"]
    try:
        return float(text)
    except ValueError:
        return _MISSING


def _schema_types(schema: Any) -> list[str]:
    declared = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return []
    return [t for t in _TYPE_ORDER if t in declared]


def parse_env_value(raw: str, schema: Mapping[str, Any]) -> Any:
    """Parse the text of an environment variable by the JSON-Schema ``type`` at its key.

    - ``integer``: a whole number (JSON or TOML syntax); ``number``: a whole number or a
      finite float;
    - ``boolean``: ``true/false/1/0/yes/no/on/off`` (any case);
    - ``array`` / ``object``: JSON (``["a", "b"]``) or TOML inline syntax (``['a', 'b']``,
      ``{ a = 1 }``); an array of strings also accepts a plain comma-separated list
      (``a, b``), and the empty string is the empty list;
    - ``null``: the empty string, ``null`` or ``none``;
    - ``string``, or a schema without ``type``: the raw text.

    With several types (``["string", "null"]``) the first that parses wins, in the order
    null, boolean, integer, number, array, object, string.

    Raises:
        ConfigError: ``code="config.env_parse"``, ``context={"value", "expected"}`` (the
        loader adds ``variable``).
    """
    text = raw if isinstance(raw, str) else str(raw)
    types = _schema_types(schema)
    word = text.strip().lower()
    value = _literal(text) if {"integer", "number", "array", "object"} & set(types) else _MISSING
    items = schema.get("items") if isinstance(schema, Mapping) else None
    string_list = isinstance(items, Mapping) and items.get("type") == "string"
    for kind in types:
        if kind == "null" and word in ("", "null", "none"):
            return None
        if kind == "boolean" and word in _TRUE | _FALSE:
            return word in _TRUE
        if kind == "integer" and type(value) is int:
            return value
        if kind == "number" and (type(value) is int or (type(value) is float and math.isfinite(value))):
            return value
        if (kind, type(value)) in (("array", list), ("object", dict)):
            return value
        if kind == "array" and string_list and not word.startswith(("[", "{", '"', "'")):
            return [part.strip() for part in text.split(",") if part.strip()]
    if not types or "string" in types:
        return text
    expected = "|".join(types)
    raise ConfigError(
        f"cannot read {_short(text, 80)!r} as {expected}",
        code="config.env_parse",
        context={"value": text, "expected": expected},
        hint=_PARSE_HINTS.get(types[0]),
    )


def _parse_at(raw: str, schema: Mapping[str, Any], source: str, key: str, code: str) -> Any:
    """``raw`` read by :func:`parse_env_value`, its error naming the ``file``, ``key`` and ``rule``."""
    try:
        return parse_env_value(raw, schema)
    except ConfigError as exc:
        raise ConfigError(
            f"{source}: {key}: {exc.message}",
            code=code,
            context={**exc.context, "file": source, "key": key, "rule": f"type={exc.context['expected']}"},
            hint=exc.hint,
        ) from None


def _resolve_env(env: str | None, environ: Mapping[str, str]) -> str:
    value = env if env is not None else environ.get("SYMPHONY_ENV") or "development"
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in ENVIRONMENTS:
        raise ConfigError(
            f"SYMPHONY_ENV={value!r} is not a known environment",
            code="config.bad_env",
            context={"variable": "SYMPHONY_ENV", "value": str(value), "allowed": list(ENVIRONMENTS)},
            hint=f"set SYMPHONY_ENV to one of {', '.join(ENVIRONMENTS)}",
        )
    return str(name)


# --------------------------------------------------------------------------- Config


class Config:
    """The merged, validated configuration.

    ``data`` is a plain nested dict holding every known section with its defaults filled in.
    """

    __slots__ = ("data", "env", "files", "problems", "schemas", "sources", "warnings")

    def __init__(
        self,
        data: dict[str, Any],
        *,
        env: str = "development",
        sources: Mapping[str, str] | None = None,
        files: list[Path] | None = None,
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
        problems: list[ConfigError] | None = None,
        warnings: list[ConfigError] | None = None,
    ) -> None:
        self.data = data
        self.env = env
        self.sources: dict[str, str] = dict(sources or {})
        """Dotted key -> source label, for every key and table set by some layer."""
        self.files: list[Path] = list(files or [])
        """The config files actually read, in layer order (packaged profiles not included)."""
        self.schemas: dict[str, Mapping[str, Any]] = dict(schemas or CORE_SCHEMAS)
        """Section name -> JSON Schema, core and plugin sections."""
        self.problems: list[ConfigError] = list(problems or [])
        """Problems collected instead of raised (see ``isolate`` in :func:`load_config`): one
        per isolated section at most (``context["section"]``), plus unreadable files."""
        self.warnings: list[ConfigError] = list(warnings or [])
        """Sections no schema claims (``config.unclaimed_section``), ignored."""

    def __repr__(self) -> str:
        files = [str(f) for f in self.files]
        return f"Config(env={self.env!r}, sections={sorted(self.data)!r}, files={files!r})"

    def problem_of(self, section: str) -> ConfigError | None:
        """The collected problem of ``section``, or None when it is valid."""
        for problem in self.problems:
            if problem.context.get("section") == section:
                return problem
        return None

    def reset_section(self, section: str) -> None:
        """Put ``section`` back to its schema's defaults (a tool running despite a problem)."""
        self.data.pop(section, None)
        _merge(self.data, _defaults({section: self.schemas.get(section, {})}), "default", self.sources)

    def get(self, dotted_key: str, default: Any = None) -> Any:
        """The value at a dotted key (``"logging.level"``), or ``default`` when absent."""
        node: Any = self.data
        for part in dotted_key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return _plain(node)

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section.

        Raises:
            NotFoundError: ``config.unknown_section`` when no schema declares ``name``.
        """
        if name not in self.data:
            raise NotFoundError(
                f"no config section {name!r}",
                code="config.unknown_section",
                context={"section": name, "known": sorted(self.data)},
            )
        value = self.data[name]
        return _plain(value) if isinstance(value, dict) else {}

    def source_of(self, dotted_key: str) -> str:
        """Which layer set the value at ``dotted_key``.

        One of ``"default"``, ``"profile:default"``, ``"profile:<env>"``, a file path,
        ``"env:<VARIABLE>"`` or ``"override"``. For a table, the last layer that touched it.

        Raises:
            NotFoundError: ``config.no_such_key`` when the key holds no value.
        """
        if self.get(dotted_key, _MISSING) is _MISSING:
            raise NotFoundError(
                f"no config value at {dotted_key!r}",
                code="config.no_such_key",
                context={"key": dotted_key},
            )
        return _source_for(self.sources, dotted_key.split("."))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of all sections as plain data."""
        result: dict[str, Any] = _plain(self.data)
        return result


# --------------------------------------------------------------------------- loading


def load_config(
    *,
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
    env: str | None = None,
    config_dir: str | os.PathLike[str] | None = None,
    user_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_unknown_sections: bool = False,
    schemas_checked: bool = False,
    isolate: bool | Collection[str] = (),
    claimed: Collection[str] = (),
) -> Config:
    """Load, merge and validate every configuration layer (see the module docstring).

    Args:
        schemas: extra sections (plugin name -> JSON Schema); may not replace a core section.
        env: the environment; default ``environ["SYMPHONY_ENV"]`` else ``"development"``.
        config_dir: folder holding ``default.toml`` and ``<env>.toml``; default
            ``environ["SYMPHONY_CONFIG_DIR"]``; None skips those layers.
        user_file: default ``$SYMPHONY_USER_CONFIG`` (from ``environ``) else the platform file.
        environ: the environment variables to read; default :data:`os.environ`.
        overrides: the last layer, nested (``{"logging": {"level": "debug"}}``) or dotted
            (``{"logging.level": "debug"}``).
        allow_unknown_sections: keep top-level sections no schema declares (unvalidated)
            instead of raising ``config.unknown_key``, each listed once in
            :attr:`Config.warnings` (``config.unclaimed_section``) — so the tool still starts
            when a plugin whose section is configured has been uninstalled.
        schemas_checked: the caller already checked ``schemas`` (the kernel does, when it
            reads manifests). Sections that only built-in defaults and packaged profiles set
            are then trusted, not revalidated: a plain start never imports jsonschema.
        isolate: sections whose problems (unknown keys, bad values, unparsable environment
            variables, an invalid schema) are collected in :attr:`Config.problems` instead of
            raised — the kernel isolates every plugin section so that a bad value fails only
            that plugin. ``True`` isolates everything, file errors included, and implies
            ``allow_unknown_sections``: a layer that cannot be read is skipped and reported;
            for tools that must show a broken configuration (``config show``, ``doctor``).
        claimed: sections without a schema here that something claims (no warning for them).

    Raises:
        ConfigError: see the module docstring for the codes.
    """
    environ = os.environ if environ is None else environ
    tolerant = isolate is True
    allow_unknown = allow_unknown_sections or tolerant
    all_schemas = _combine_schemas(schemas)
    claimed_set = {str(s) for s in claimed}
    # sections whose problems are collected (unclaimed ones join as they are found)
    lenient_sections = claimed_set | (set() if isinstance(isolate, bool) else {str(s) for s in isolate})
    env_name = _resolve_env(env, environ)
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    files: list[Path] = []
    problems: dict[str, ConfigError] = {}
    loose: list[ConfigError] = []  # problems of no one section: unreadable files, malformed names
    unclaimed: dict[str, str] = {}

    def lenient(section: str | None) -> bool:
        return tolerant or (section is not None and (section in lenient_sections or section in unclaimed))

    def fail(section: str | None, exc: ConfigError) -> None:
        """Collect the problem of a lenient section (the first one per section); raise the others."""
        if not lenient(section):
            raise exc
        if section is None:
            loose.append(exc)
        else:
            exc.context.setdefault("section", section)
            problems.setdefault(section, exc)

    def apply(layer: Mapping[str, Any], source: str) -> None:
        for section in map(str, layer):
            if section in all_schemas:
                continue
            if not allow_unknown and section not in claimed_set:
                raise _unknown_key(source, section, list(all_schemas))
            all_schemas[section] = {}  # room for a section no schema declares: not validated
            if section not in claimed_set:
                unclaimed.setdefault(section, source)
        _merge(data, layer, source, sources)

    if config_dir is None:
        config_dir = environ.get("SYMPHONY_CONFIG_DIR") or None
    if user_file is None:
        from symphony.commons.fs import user_config_file

        user_file = user_config_file(environ=environ)
    files_to_read = [(_PROFILE_DIR / f"{name}.toml", f"profile:{name}") for name in ("default", env_name)]
    if config_dir is not None:
        files_to_read += [(Path(config_dir) / f"{name}.toml", "") for name in ("default", env_name)]
    files_to_read.append((Path(user_file), ""))

    apply(_defaults(all_schemas), "default")
    for path, label in files_to_read:
        try:
            raw = _read_file(path, _file_limit(data))
            doc = None if raw is None else _parse_toml_bytes(raw, label or str(path))
        except ConfigError as exc:
            fail(None, exc)  # a layer that cannot be read is skipped when everything is tolerated
            continue
        if doc is not None:
            if not label:
                files.append(path)
            apply(doc, label or str(path))

    for name in sorted(environ):
        rest = name[len(ENV_PREFIX) :] if name.startswith(ENV_PREFIX) else ""
        if _SEP not in rest:
            continue  # not ours, or reserved: SYMPHONY_ENV, SYMPHONY_CONFIG_DIR, ...
        source, parts = f"env:{name}", rest.lower().split(_SEP)
        try:
            dotted = ".".join(_split_key(".".join(parts), source))
            value = _parse_at(
                environ[name], _schema_at(all_schemas, parts), source, dotted, "config.env_parse"
            )
            apply(_nest(parts, value), source)
        except ConfigError as exc:
            exc.context["variable"] = name
            fail(None if "" in parts else parts[0], exc)

    for key, value in (overrides or {}).items():
        apply(_nest(_split_key(key, "override"), value), "override")

    # Built-in defaults and packaged profiles are trusted (and tested): only sections another
    # layer touched need validating, or every section when the schemas are still unchecked.
    touched = {
        key.split(".", 1)[0]
        for key, source in sources.items()
        if source != "default" and not source.startswith("profile:")
    }
    strict: list[dict[str, Any]] = []
    for section, schema in all_schemas.items():
        if not schema or (section not in touched and (schemas_checked or section in CORE_SCHEMAS)):
            continue
        try:
            found = _problems(section, data.get(section, {}), schema, sources)
        except ConfigError as exc:  # the schema itself is broken
            fail(section, exc)
            continue
        if found and lenient(section):
            fail(section, _error(found))
        else:
            strict.extend(found)
    if strict:
        raise _error(strict)
    return Config(
        data,
        env=env_name,
        sources=sources,
        files=files,
        schemas={k: v for k, v in all_schemas.items() if k not in unclaimed and k not in claimed_set},
        problems=[*loose, *(problems[k] for k in sorted(problems))],
        warnings=[_unclaimed(section, source) for section, source in sorted(unclaimed.items())],
    )


def _unclaimed(section: str, source: str) -> ConfigError:
    return ConfigError(
        f"{source}: configuration section [{section}] belongs to no installed plugin; it is ignored",
        code="config.unclaimed_section",
        context={"file": source, "key": section, "section": section},
        hint=f"unset the variable {source[4:]}"
        if source.startswith("env:")
        else f"remove it with `symphony config unset {section}` if its plugin is gone for good",
    )


# --------------------------------------------------------------------------- user file editing


def _user_path(user_file: str | os.PathLike[str] | None) -> Path:
    from symphony.commons.fs import user_config_file

    return Path(user_file) if user_file is not None else user_config_file()


def _edit(path: Path, change: Callable[[Any], bool]) -> None:
    """Run ``change`` on the user file's tomlkit document; write the file back when it returns True.

    Edits are serialised by a lock beside the file the path finally names (a symlink is edited
    at its target); the file is re-read under the lock, leftovers of a killed edit are removed
    first and the file is written atomically.
    """
    import tomlkit
    from tomlkit.exceptions import ParseError

    from symphony.commons.fs import atomic_write, exclusive_lock, remove_temporaries

    real = Path(os.path.realpath(path))
    with exclusive_lock(real.with_name(f".{real.name}.lock")):
        remove_temporaries(real.parent, name=real.name)
        raw = _read_file(real, DEFAULT_MAX_FILE_SIZE)
        doc = tomlkit.document()
        if raw is not None:
            _parse_toml_bytes(raw, str(real))  # precise error for invalid files, same as load_config
            try:
                doc = tomlkit.parse(raw.decode("utf-8"))
            except ParseError as exc:
                raise _toml_error(str(real), exc) from exc
        if change(doc):
            atomic_write(real, tomlkit.dumps(doc))


def _file_problems(doc: Any, schemas: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """Every problem of a user file's content, each section checked on top of its defaults."""
    found: list[dict[str, Any]] = []
    for section, value in _plain(doc.unwrap()).items():
        if section not in schemas:
            found.append({"file": source, "key": section, "rule": "unknown-section", "known": list(schemas)})
            continue
        data = _defaults({section: schemas[section]})
        _merge(data, {section: value}, source, {})
        found.extend(_problems(section, data[section], schemas[section], {section: source}))
    return found


def set_user_value(
    dotted_key: str,
    value: Any,
    *,
    user_file: str | os.PathLike[str] | None = None,
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Set one key in the user config file, keeping its comments and formatting.

    The file is created if missing; a symlinked file is edited at its target. A ``str`` value
    is read like an environment variable by the schema type at the key (so ``"42"`` sets an
    integer and ``"null"`` clears a nullable key, handy for ``symphony config set``). ``None``
    removes the key (TOML has no null).

    Edits are serialised by a lock file beside the user file (``.<name>.lock``) and the file is
    re-read under the lock, so concurrent edits of different keys all land. The new value must
    be valid and the edit may not add a problem, but problems already in the file elsewhere do
    not block it: that is how a broken file is repaired with the tool. The file is written
    atomically; temporaries of an edit that was killed are removed by the next one.

    Returns:
        The path of the user file (as given, even when it is a symlink).

    Raises:
        ConfigError: ``config.unknown_key``, ``config.invalid``, ``config.parse`` (the existing
        file is not TOML); the file is left byte-identical.
    """
    import tomlkit

    path = _user_path(user_file)
    source = str(path)
    all_schemas = _combine_schemas(schemas)
    parts = _split_key(dotted_key, source)
    if len(parts) < 2:
        raise _unknown_key(source, dotted_key, list(all_schemas))
    if isinstance(value, str):
        value = _parse_at(value, _schema_at(all_schemas, parts), source, dotted_key, "config.invalid")

    def change(doc: Any) -> bool:
        before = {(p["key"], p["rule"]) for p in _file_problems(doc, all_schemas, source)}
        if value is None:
            _remove_key(doc, parts)
        else:
            container: Any = doc
            for part in parts[:-1]:
                if not isinstance(container.get(part), MutableMapping):
                    container[part] = tomlkit.table()
                container = container[part]
            try:
                container[parts[-1]] = value
            except (TypeError, ValueError) as exc:  # tomlkit cannot represent the value
                raise ConfigError(
                    f"{source}: {dotted_key}: cannot write {_short(value, 80)} to TOML: {exc}",
                    code="config.invalid",
                    context={"file": source, "key": dotted_key, "rule": "toml-representable"},
                ) from exc
        worse = [
            p
            for p in _file_problems(doc, all_schemas, source)
            if p["key"] == dotted_key
            or p["key"].startswith(dotted_key + ".")
            or (p["key"], p["rule"]) not in before
        ]
        if worse:  # the edited key stays invalid, or the edit breaks something else
            raise _error(worse)
        return True

    _edit(path, change)
    return path


def _remove_key(container: Any, parts: list[str]) -> bool:
    """Delete the key at ``parts`` and the tables it leaves empty; False when it is absent."""
    if len(parts) > 1:
        child = container.get(parts[0])
        if not isinstance(child, MutableMapping) or not _remove_key(child, parts[1:]):
            return False
        if len(child) > 0:
            return True
    elif parts[0] not in container:
        return False
    del container[parts[0]]
    return True


def unset_user_value(
    dotted_key: str,
    *,
    user_file: str | os.PathLike[str] | None = None,
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Remove one key (or a whole table) from the user config file, keeping comments.

    A missing key is a no-op, and tables left empty are removed too. Unknown keys can be
    removed (that is how a stale plugin section is cleaned up), so ``schemas`` is accepted only
    for symmetry with :func:`set_user_value`. The edit takes the same lock as
    :func:`set_user_value`, follows a symlink to its target, and rewrites the file
    (atomically) only when something was removed.

    Raises:
        ConfigError: ``config.parse`` when the existing file is broken, ``config.unknown_key``
        for a malformed key.
    """
    del schemas  # removing a key never needs validation
    path = _user_path(user_file)
    parts = _split_key(dotted_key, str(path))
    if path.exists():
        _edit(path, lambda doc: _remove_key(doc, parts))
    return path
