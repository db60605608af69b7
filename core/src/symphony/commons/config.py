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

Importing this module is cheap: ``tomllib``, ``jsonschema``, ``tomlkit``, ``cattrs`` and
``attrs`` are imported by the functions that need them.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from symphony.commons.errors import ConfigError, NotFoundError, SymphonyError
from symphony.commons.fs import DEFAULT_MAX_FILE_SIZE

if TYPE_CHECKING:
    from symphony.commons._config_types import (
        CORE_TYPES,
        DebugConfig,
        FsConfig,
        KernelConfig,
        LoggingConfig,
        PluginsConfig,
    )

__all__ = [
    "CORE_SCHEMAS",
    "CORE_TYPES",
    "ENVIRONMENTS",
    "Config",
    "DebugConfig",
    "FsConfig",
    "KernelConfig",
    "LoggingConfig",
    "PluginsConfig",
    "env_flag",
    "load_config",
    "parse_env_value",
    "set_user_value",
    "unset_user_value",
    "validate_section",
]

T = TypeVar("T")

ENVIRONMENTS: tuple[str, ...] = ("development", "test", "production")
"""Allowed values of ``SYMPHONY_ENV``."""

ENV_PREFIX = "SYMPHONY_"
_SEP = "__"
_MiB = 1024 * 1024
_TiB = 1024 * 1024 * _MiB
_PROFILE_DIR = Path(__file__).with_name("profiles")
_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
_MISSING: Any = object()

_LEVELS = ["debug", "info", "warning", "error"]

CORE_SCHEMAS: dict[str, dict[str, Any]] = {
    "kernel": {
        "$schema": _SCHEMA_URI,
        "title": "kernel",
        "type": "object",
        "additionalProperties": False,
        "properties": {
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
    },
    "plugins": {
        "$schema": _SCHEMA_URI,
        "title": "plugins",
        "type": "object",
        "additionalProperties": False,
        "properties": {
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
    },
    "logging": {
        "$schema": _SCHEMA_URI,
        "title": "logging",
        "type": "object",
        "additionalProperties": False,
        "properties": {
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
    },
    "fs": {
        "$schema": _SCHEMA_URI,
        "title": "fs",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "max_file_size": {
                "type": "integer",
                "minimum": 0,
                "maximum": _TiB,
                "default": DEFAULT_MAX_FILE_SIZE,
                "description": "Largest config file read, in bytes (after the layers below it).",
            },
        },
    },
    "debug": {
        "$schema": _SCHEMA_URI,
        "title": "debug",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "duck_debugging": {"type": "boolean", "default": False},
        },
    },
}
"""JSON Schemas (draft 2020-12) of the core sections, with their defaults."""

_TYPE_NAMES = frozenset(
    {"CORE_TYPES", "DebugConfig", "FsConfig", "KernelConfig", "LoggingConfig", "PluginsConfig"}
)


def __getattr__(name: str) -> Any:
    # The attrs classes live in a sibling module so that importing config stays cheap.
    if name in _TYPE_NAMES:
        from symphony.commons import _config_types

        value = getattr(_config_types, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _unknown_key(source: str, key: str, known: list[str]) -> ConfigError:
    shown = ", ".join(sorted(known)[:30]) or "(none)"
    return ConfigError(
        f"{source}: unknown configuration key {key!r}",
        code="config.unknown_key",
        context={"file": source, "key": key},
        hint=f"known keys here: {shown}",
    )


def _child_schema(schema: Any, key: str) -> Any:
    """The schema of ``key`` inside an object ``schema``; None if the key is not allowed."""
    if schema is True or not isinstance(schema, Mapping):
        return {} if schema is not False else None
    props = schema.get("properties")
    if isinstance(props, Mapping) and key in props:
        sub = props[key]
        if sub is False:
            return None
        return sub if isinstance(sub, Mapping) else {}
    patterns = schema.get("patternProperties")
    if isinstance(patterns, Mapping):
        import re

        for pattern, sub in patterns.items():
            try:
                if re.search(pattern, key):
                    return sub if isinstance(sub, Mapping) else {}
            except re.error:
                continue
    extra = schema.get("additionalProperties", True)
    if extra is False:
        return None
    return extra if isinstance(extra, Mapping) else {}


def _known_keys(schema: Any) -> list[str]:
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return [str(k) for k in props] if isinstance(props, Mapping) else []


def _check_known_in(value: Any, schema: Any, prefix: str, source: str) -> None:
    """Raise ``config.unknown_key`` for the first key under ``prefix`` that ``schema`` does not allow."""
    if not isinstance(value, Mapping):
        return
    for key, sub in value.items():
        sub_schema = _child_schema(schema, str(key))
        dotted = f"{prefix}.{key}"
        if sub_schema is None:
            raise _unknown_key(source, dotted, _known_keys(schema))
        _check_known_in(sub, sub_schema, dotted, source)


def _schema_at(schemas: Mapping[str, Any], parts: list[str]) -> Any:
    """The schema at a dotted path, or None if the path is not allowed."""
    if not parts or parts[0] not in schemas:
        return None
    schema: Any = schemas[parts[0]]
    for part in parts[1:]:
        schema = _child_schema(schema, part)
        if schema is None:
            return None
    return schema


def _known_near(schemas: Mapping[str, Any], parts: list[str]) -> list[str]:
    """The keys allowed next to the last part of a dotted path (for hints)."""
    if parts[0] not in schemas:
        return list(schemas)
    if len(parts) < 2:
        return _known_keys(schemas[parts[0]])
    return _known_keys(_schema_at(schemas, parts[:-1]))


def _drop_sources(sources: dict[str, str], dotted: str) -> None:
    prefix = dotted + "."
    for key in [k for k in sources if k.startswith(prefix)]:
        del sources[key]


def _mark_sources(value: Any, dotted: str, source: str, sources: dict[str, str]) -> None:
    sources[dotted] = source
    if isinstance(value, dict):
        for key, sub in value.items():
            _mark_sources(sub, f"{dotted}.{key}", source, sources)


def _merge(
    target: dict[str, Any], layer: Mapping[str, Any], source: str, sources: dict[str, str], prefix: str = ""
) -> None:
    """Deep-merge ``layer`` into ``target``, recording which layer set each dotted key."""
    for raw_key, value in layer.items():
        key = str(raw_key)
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            sources[dotted] = source
            _merge(target[key], value, source, sources, dotted + ".")
        else:
            _drop_sources(sources, dotted)
            target[key] = _plain(value)
            _mark_sources(target[key], dotted, source, sources)


def _set_path(target: dict[str, Any], parts: list[str], value: Any) -> None:
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    last = parts[-1]
    if isinstance(value, Mapping) and isinstance(node.get(last), dict):
        _merge(node[last], value, "", {})
    else:
        node[last] = _plain(value)


def _split_key(dotted: Any, source: str) -> list[str]:
    if not isinstance(dotted, str) or not dotted or any(not p for p in dotted.split(".")):
        raise ConfigError(
            f"{source}: malformed configuration key {dotted!r}",
            code="config.unknown_key",
            context={"file": source, "key": str(dotted)},
            hint="use dotted lower-case keys such as 'logging.level'",
        )
    return dotted.split(".")


def _defaults_of(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return _MISSING
    if "default" in schema:
        return _plain(schema["default"])
    props = schema.get("properties")
    if isinstance(props, Mapping):
        out: dict[str, Any] = {}
        for key, sub in props.items():
            value = _defaults_of(sub)
            if value is not _MISSING:
                out[str(key)] = value
        return out
    return _MISSING


def _defaults(schemas: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, schema in schemas.items():
        value = _defaults_of(schema)
        out[section] = {} if value is _MISSING else value
    return out


def _combine_schemas(extra: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    combined: dict[str, Mapping[str, Any]] = dict(CORE_SCHEMAS)
    for name, schema in (extra or {}).items():
        if not isinstance(name, str) or not name or "." in name:
            raise ConfigError(
                f"invalid config section name {name!r}",
                code="config.bad_schema",
                context={"section": str(name)},
            )
        if not isinstance(schema, Mapping):
            raise ConfigError(
                f"the schema of config section {name!r} is not a mapping",
                code="config.bad_schema",
                context={"section": name},
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
        key = json.dumps(schema, sort_keys=True, default=str)
        return _compiled(key)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"the schema of config section {section!r} is not JSON: {exc}",
            code="config.bad_schema",
            context={"section": section},
        ) from exc
    except Exception as exc:  # jsonschema.SchemaError, imported lazily
        raise ConfigError(
            f"the schema of config section {section!r} is invalid: {getattr(exc, 'message', exc)}",
            code="config.bad_schema",
            context={"section": section},
        ) from exc


def _rule(error: Any) -> str:
    value = error.validator_value
    if error.validator == "type":
        shown = "|".join(value) if isinstance(value, list) else str(value)
    elif isinstance(value, bool):
        shown = "false" if value is False else "true"
    elif isinstance(value, (dict, list)) and error.validator not in ("enum",):
        shown = _short(value, 80)
    else:
        shown = _short(value, 120)
    return f"{error.validator}={shown}"


def _source_for(sources: Mapping[str, str], path: list[str]) -> str:
    for end in range(len(path), 0, -1):
        found = sources.get(".".join(path[:end]))
        if found is not None:
            return found
    return "default"


def _validate(
    data: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str]
) -> None:
    problems: list[dict[str, str]] = []
    for section, schema in schemas.items():
        validator = _validator_for(section, schema)
        for found in validator.iter_errors(data.get(section, {})):
            error = found
            if found.context:
                # A oneOf/anyOf failure: name the branch that came closest (the deepest error).
                from jsonschema.exceptions import best_match

                error = best_match([found])
            path = [section, *(str(p) for p in error.absolute_path)]
            key = ".".join(path)
            problem = {
                "file": _source_for(sources, path),
                "key": key,
                "rule": _rule(error),
                "message": _short(error.message),
            }
            if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
                allowed = _known_keys(error.schema)
                extra = [str(k) for k in error.instance if str(k) not in allowed]
                if extra:
                    problem["key"] = f"{key}.{extra[0]}"
                    problem["file"] = _source_for(sources, [*path, extra[0]])
                    problem["unknown"] = "yes"
            problems.append(problem)
    if not problems:
        return
    problems.sort(key=lambda p: p["key"])
    first = problems[0]
    context: dict[str, Any] = {"file": first["file"], "key": first["key"], "rule": first["rule"]}
    if len(problems) > 1:
        context["errors"] = [{k: p[k] for k in ("file", "key", "rule")} for p in problems]
    if first.get("unknown"):
        raise ConfigError(
            f"{first['file']}: unknown configuration key {first['key']!r}",
            code="config.unknown_key",
            context=context,
            hint="remove the key or check its spelling",
        )
    raise ConfigError(
        f"{first['file']}: {first['key']}: {first['message']} (rule {first['rule']})",
        code="config.invalid",
        context=context,
    )


def validate_section(
    section: str, data: Mapping[str, Any] | None, schema: Mapping[str, Any], *, source: str = "<mapping>"
) -> None:
    """Check one section's values against its JSON Schema, as :func:`load_config` checks the
    layered config: raises :class:`ConfigError` (``config.unknown_key`` or ``config.invalid``)
    whose context names the ``file`` (``source``), the dotted ``key`` and the ``rule``."""
    _validate({section: dict(data or {})}, {section: schema}, {section: source})


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
    limit = data.get("fs", {}).get("max_file_size", DEFAULT_MAX_FILE_SIZE)
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else DEFAULT_MAX_FILE_SIZE


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
    import re

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


class _NoParse(Exception):
    pass


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """The on/off variable ``name``: True for ``1/true/yes/on``, False for ``0/false/no/off``
    (any case), None when it is unset or says neither."""
    return _flag((os.environ if environ is None else environ).get(name, ""))


def _flag(raw: str) -> bool | None:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    return False if word in _FALSE else None


def _parse_bool(raw: str, schema: Mapping[str, Any]) -> bool:
    value = _flag(raw)
    if value is None:
        raise _NoParse
    return value


def _parse_null(raw: str, schema: Mapping[str, Any]) -> None:
    if raw.strip().lower() in ("", "null", "none"):
        return None
    raise _NoParse


def _parse_int(raw: str, schema: Mapping[str, Any]) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise _NoParse from None


def _parse_number(raw: str, schema: Mapping[str, Any]) -> int | float:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise _NoParse from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _NoParse
    return value


def _parse_structured(raw: str, kind: type) -> Any:
    import json

    try:
        value = json.loads(raw)
        if isinstance(value, kind):
            return value
    except (ValueError, RecursionError):
        pass
    import tomllib

    try:
        doc = tomllib.loads("v = " + raw)
    except (ValueError, RecursionError):
        raise _NoParse from None
    if set(doc) == {"v"} and isinstance(doc["v"], kind):
        return doc["v"]
    raise _NoParse


def _parse_array(raw: str, schema: Mapping[str, Any]) -> list[Any]:
    try:
        return list(_parse_structured(raw, list))
    except _NoParse:
        items = schema.get("items")
        if isinstance(items, Mapping) and items.get("type") == "string":
            text = raw.strip()
            if not text:
                return []
            if not text.startswith(("[", "{", '"', "'")):
                return [part.strip() for part in text.split(",") if part.strip()]
        raise


def _parse_object(raw: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_parse_structured(raw, dict))


def _parse_string(raw: str, schema: Mapping[str, Any]) -> str:
    return raw


_PARSERS = {
    "null": _parse_null,
    "boolean": _parse_bool,
    "integer": _parse_int,
    "number": _parse_number,
    "array": _parse_array,
    "object": _parse_object,
    "string": _parse_string,
}


def _schema_types(schema: Any) -> list[str]:
    declared = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list):
        return []
    return [t for t in _TYPE_ORDER if t in declared]


def parse_env_value(raw: str, schema: Mapping[str, Any]) -> Any:
    """Parse the text of an environment variable by the JSON-Schema ``type`` at its key.

    - ``integer``: a decimal integer; ``number``: an integer or a finite float;
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
    if not types:
        return text
    for type_name in types:
        try:
            return _PARSERS[type_name](text, schema)
        except _NoParse:
            continue
    expected = "|".join(types)
    raise ConfigError(
        f"cannot read {_short(text, 80)!r} as {expected}",
        code="config.env_parse",
        context={"value": text, "expected": expected},
        hint=_PARSE_HINTS.get(types[0]),
    )


_PARSE_HINTS = {
    "boolean": "use true/false, 1/0, yes/no or on/off",
    "integer": "use a whole number such as 42",
    "number": "use a number such as 1.5",
    "array": 'use JSON such as ["a", "b"]',
    "object": 'use JSON such as {"key": "value"}',
}


def _env_layers(
    environ: Mapping[str, str],
    schemas: Mapping[str, Any],
    adopt: Callable[[str, str], bool] | None = None,
) -> Iterator[tuple[str, str, dict[str, Any] | ConfigError]]:
    """(source, section, layer or the error of that variable) per ``SYMPHONY_X__Y`` variable.

    ``adopt(section, source)`` may make room for a section no schema declares (its values
    stay text); without it such a variable is an error.
    """
    for name in sorted(k for k in environ if isinstance(k, str) and k.startswith(ENV_PREFIX)):
        rest = name[len(ENV_PREFIX) :]
        if _SEP not in rest:
            continue  # reserved: SYMPHONY_ENV, SYMPHONY_CONFIG_DIR, ...
        source = f"env:{name}"
        parts = [p.lower() for p in rest.split(_SEP)]
        dotted = ".".join(parts)
        if any(not p for p in parts):
            yield (
                source,
                "",
                ConfigError(
                    f"environment variable {name} does not name a config key",
                    code="config.unknown_key",
                    context={"file": source, "key": dotted, "variable": name},
                    hint="use SYMPHONY_<SECTION>__<KEY>, e.g. SYMPHONY_LOGGING__LEVEL",
                ),
            )
            continue
        if adopt is not None and parts[0] not in schemas:
            adopt(parts[0], source)
        schema = _schema_at(schemas, parts)
        if schema is None:
            err = _unknown_key(source, dotted, _known_near(schemas, parts))
            err.message = f"environment variable {name} names unknown configuration key {dotted!r}"
            err.context["variable"] = name
            if parts[0] not in schemas:
                raise err
            yield source, parts[0], err
            continue
        raw = environ[name]
        try:
            value = parse_env_value(raw, schema)
        except ConfigError as exc:
            exc.message = f"environment variable {name}: {exc.message}"
            exc.context = {"variable": name, **exc.context, "file": source, "key": dotted}
            exc.context.setdefault("rule", f"type={exc.context.get('expected')}")
            yield source, parts[0], exc
            continue
        layer: dict[str, Any] = {}
        _set_path(layer, parts, value)
        yield source, parts[0], layer


def _expand_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        _set_path(out, _split_key(key, "override"), value)
    return out


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

    __slots__ = ("_files", "_schemas", "_sources", "data", "env", "problems", "warnings")

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
        self._sources = dict(sources or {})
        self._files = list(files or [])
        self._schemas = dict(schemas or CORE_SCHEMAS)
        self.problems: list[ConfigError] = list(problems or [])
        """Problems collected instead of raised (see ``isolate`` in :func:`load_config`): one
        per isolated section at most (``context["section"]``), plus unreadable files."""
        self.warnings: list[ConfigError] = list(warnings or [])
        """Sections no schema claims (``config.unclaimed_section``), ignored."""

    def __repr__(self) -> str:
        files = [str(f) for f in self._files]
        return f"Config(env={self.env!r}, sections={sorted(self.data)!r}, files={files!r})"

    def problem_of(self, section: str) -> ConfigError | None:
        """The collected problem of ``section``, or None when it is valid."""
        for problem in self.problems:
            if problem.context.get("section") == section:
                return problem
        return None

    def reset_section(self, section: str) -> None:
        """Put ``section`` back to its schema's defaults (a tool running despite a problem)."""
        schema = self._schemas.get(section, {})
        value = _defaults_of(schema)
        self.data[section] = value if isinstance(value, dict) else {}
        _drop_sources(self._sources, section)
        self._sources.pop(section, None)

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
        return _source_for(self._sources, dotted_key.split("."))

    @property
    def sources(self) -> dict[str, str]:
        """Dotted key -> source label, for every key and table set by some layer."""
        return dict(self._sources)

    @property
    def files(self) -> list[Path]:
        """The config files actually read, in layer order (packaged profiles not included)."""
        return list(self._files)

    @property
    def schemas(self) -> dict[str, Mapping[str, Any]]:
        """Section name -> JSON Schema, core and plugin sections."""
        return dict(self._schemas)

    @overload
    def structure(self, section: str, cls: type[T]) -> T: ...

    @overload
    def structure(self, section: str, cls: None = None) -> Any: ...

    def structure(self, section: str, cls: type[T] | None = None) -> T | Any:
        """Structure a section into an attrs class with cattrs.

        Without ``cls`` a core section uses its class from ``CORE_TYPES``
        (``config.structure("logging")`` -> :class:`LoggingConfig`).

        Raises:
            NotFoundError: unknown section or no class given for a plugin section;
            ConfigError: ``config.structure`` when the data does not fit the class.
        """
        if cls is None:
            from symphony.commons._config_types import CORE_TYPES

            found = CORE_TYPES.get(section)
            if found is None:
                raise NotFoundError(
                    f"no typed class for config section {section!r}; pass cls=",
                    code="config.unknown_section",
                    context={"section": section},
                )
            cls = found
        data = self.section(section)
        try:
            return _converter().structure(data, cls)
        except Exception as exc:  # cattrs raises its own (ClassValidationError, ...) types
            raise ConfigError(
                f"config section {section!r} does not fit {getattr(cls, '__name__', cls)}: {exc}",
                code="config.structure",
                context={"section": section, "class": getattr(cls, "__qualname__", str(cls))},
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of all sections as plain data."""
        result: dict[str, Any] = _plain(self.data)
        return result


@functools.lru_cache(maxsize=1)
def _converter() -> Any:
    import cattrs

    return cattrs.Converter()


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
    isolated: set[str] = set() if isinstance(isolate, bool) else {str(s) for s in isolate}
    claimed_set = {str(s) for s in claimed}
    env_name = _resolve_env(env, environ)
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    files: list[Path] = []
    problems: dict[str, ConfigError] = {}
    file_problems: list[ConfigError] = []
    unclaimed: dict[str, str] = {}

    def lenient(section: str) -> bool:
        return tolerant or section in isolated or section in unclaimed or section in claimed_set

    def problem(section: str, exc: ConfigError) -> None:
        exc.context.setdefault("section", section)
        problems.setdefault(section, exc)

    def adopt(section: str, source: str) -> bool:
        """Make room for a section no schema declares; False when that is an error."""
        if section in all_schemas:
            return True
        if not allow_unknown and section not in claimed_set:
            return False
        all_schemas[section] = {}
        if section not in claimed_set:
            unclaimed.setdefault(section, source)
        return True

    def apply(layer: Mapping[str, Any], source: str) -> None:
        if not isinstance(layer, Mapping):
            return
        for raw_section in layer:
            section = str(raw_section)
            if not adopt(section, source):
                raise _unknown_key(source, section, list(all_schemas))
            try:
                _check_known_in(layer[raw_section], all_schemas[section], section, source)
            except ConfigError as exc:
                if not lenient(section):
                    raise
                problem(section, exc)
        _merge(data, layer, source, sources)

    def read(path: Path, label: str | None = None) -> dict[str, Any] | None:
        try:
            raw = _read_file(path, _file_limit(data))
            return None if raw is None else _parse_toml_bytes(raw, label or str(path))
        except ConfigError as exc:
            if not tolerant:
                raise
            file_problems.append(exc)
            return None

    apply(_defaults(all_schemas), "default")
    for name in ("default", env_name):
        label = f"profile:{name}"
        doc = read(_PROFILE_DIR / f"{name}.toml", label)
        if doc:
            apply(doc, label)

    if config_dir is None:
        config_dir = environ.get("SYMPHONY_CONFIG_DIR") or None
    if config_dir is not None:
        for name in ("default", env_name):
            path = Path(config_dir) / f"{name}.toml"
            doc = read(path)
            if doc is not None:
                files.append(path)
                apply(doc, str(path))

    if user_file is None:
        from symphony.commons.fs import user_config_file

        user_path = user_config_file(environ=environ)
    else:
        user_path = Path(user_file)
    doc = read(user_path)
    if doc is not None:
        files.append(user_path)
        apply(doc, str(user_path))

    for source, section, layer in _env_layers(environ, all_schemas, adopt):
        if isinstance(layer, ConfigError):
            if not lenient(section):
                raise layer
            if section:
                problem(section, layer)
            else:  # a variable that names no key at all
                file_problems.append(layer)
            continue
        apply(layer, source)

    if overrides:
        apply(_expand_overrides(overrides), "override")

    for section in all_schemas:
        data.setdefault(section, {})
    # Built-in defaults and packaged profiles are trusted (and tested): only sections another
    # layer touched need validating, or every section when the schemas are still unchecked.
    touched = {
        key.split(".", 1)[0]
        for key, source in sources.items()
        if source != "default" and not source.startswith("profile:")
    }
    to_check = {
        k: v
        for k, v in all_schemas.items()
        if v and k not in problems and (k in touched or (not schemas_checked and k not in CORE_SCHEMAS))
    }
    strict = {k: v for k, v in to_check.items() if not lenient(k)}
    _validate(data, strict, sources)
    for section, schema in to_check.items():
        if section in strict:
            continue
        try:
            _validate(data, {section: schema}, sources)
        except ConfigError as exc:
            problem(section, exc)
    warnings = [_unclaimed(section, source) for section, source in sorted(unclaimed.items())]
    return Config(
        data,
        env=env_name,
        sources=sources,
        files=files,
        schemas={k: v for k, v in all_schemas.items() if k not in unclaimed and k not in claimed_set},
        problems=[*file_problems, *(problems[k] for k in sorted(problems))],
        warnings=warnings,
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


def _load_user_doc(path: Path) -> Any:
    import tomlkit
    from tomlkit.exceptions import ParseError

    raw = _read_file(path, DEFAULT_MAX_FILE_SIZE)
    if raw is None:
        return tomlkit.document()
    _parse_toml_bytes(raw, str(path))  # precise error for invalid files, same as load_config
    try:
        return tomlkit.parse(raw.decode("utf-8"))
    except ParseError as exc:
        raise _toml_error(str(path), exc) from exc


def _write_user_doc(path: Path, doc: Any) -> None:
    import tomlkit

    from symphony.commons.fs import atomic_write

    atomic_write(path, tomlkit.dumps(doc))


def _real_user_file(user_file: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """(the path as given, the file it finally names): edits go to the target of a symlink."""
    from symphony.commons.fs import user_config_file

    path = Path(user_file) if user_file is not None else user_config_file()
    return path, Path(os.path.realpath(path))


@contextlib.contextmanager
def _editing(real: Path) -> Iterator[None]:
    """Serialise edits of the user file (lock beside it) and clear leftovers of killed edits."""
    from symphony.commons.fs import exclusive_lock, remove_temporaries

    with exclusive_lock(real.with_name(f".{real.name}.lock")):
        remove_temporaries(real.parent, name=real.name)
        yield


def _file_problems(plain: Mapping[str, Any], schemas: Mapping[str, Any], source: str) -> list[dict[str, str]]:
    """Every problem of a user file's content, as ``{"key", "rule", "message"}`` (no raise)."""
    found: list[dict[str, str]] = []
    for raw_section, value in plain.items():
        section = str(raw_section)
        if section not in schemas:
            found.append({"key": section, "rule": "unknown-section", "message": "unknown section"})
            continue
        data: dict[str, Any] = {}
        _merge(data, _defaults({section: schemas[section]}), "default", {})
        _merge(data, {section: value}, source, {})
        try:
            _validate(data, {section: schemas[section]}, {section: source})
        except ConfigError as exc:
            listed = exc.context.get("errors") or [exc.context]
            for item in listed:
                rule = item.get("rule") or ("unknown-key" if exc.code == "config.unknown_key" else exc.code)
                found.append(
                    {
                        "key": str(item.get("key", section)),
                        "rule": str(rule),
                        "message": exc.message if item is exc.context else "",
                    }
                )
    return found


def _refuse_worse(
    before: list[dict[str, str]], after: list[dict[str, str]], dotted_key: str, source: str
) -> None:
    """Refuse an edit that leaves the edited key invalid or adds a problem elsewhere."""
    old = {(p["key"], p["rule"]) for p in before}
    under = dotted_key + "."
    for p in after:
        if p["key"] == dotted_key or p["key"].startswith(under) or (p["key"], p["rule"]) not in old:
            if p["rule"] in ("unknown-key", "unknown-section"):
                raise _unknown_key(source, p["key"], [])
            message = p["message"] or f"{source}: {p['key']}: breaks rule {p['rule']}"
            raise ConfigError(
                message,
                code="config.invalid",
                context={"file": source, "key": p["key"], "rule": p["rule"]},
            )


def set_user_value(
    dotted_key: str,
    value: Any,
    *,
    user_file: str | os.PathLike[str] | None = None,
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Set one key in the user config file, keeping its comments and formatting.

    The file is created if missing; a symlinked file is edited at its target. A ``str`` value
    for a key whose schema does not accept strings is parsed like an environment variable (so
    ``"42"`` sets an integer, handy for ``symphony config set``). ``None`` removes the key
    (TOML has no null).

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
    path, real = _real_user_file(user_file)
    source = str(path)
    all_schemas = _combine_schemas(schemas)
    parts = _split_key(dotted_key, source)
    schema = _schema_at(all_schemas, parts)
    if schema is None or len(parts) < 2:
        raise _unknown_key(source, dotted_key, _known_near(all_schemas, parts))
    types = _schema_types(schema)
    if isinstance(value, str) and types and "string" not in types:
        try:
            value = parse_env_value(value, schema)
        except ConfigError as exc:
            raise ConfigError(
                f"{source}: {dotted_key}: {exc.message}",
                code="config.invalid",
                context={"file": source, "key": dotted_key, "rule": f"type={exc.context['expected']}"},
                hint=exc.hint,
            ) from exc

    import tomlkit

    with _editing(real):
        doc = _load_user_doc(real)
        before = _file_problems(_plain(doc.unwrap()), all_schemas, source)
        if value is None:
            _remove_key(doc, parts)
        else:
            container: Any = doc
            for part in parts[:-1]:
                child = container.get(part)
                if not isinstance(child, MutableMapping):
                    container[part] = tomlkit.table()
                    child = container[part]
                container = child
            try:
                container[parts[-1]] = value
            except (TypeError, ValueError) as exc:  # tomlkit cannot represent the value
                raise ConfigError(
                    f"{source}: {dotted_key}: cannot write {_short(value, 80)} to TOML: {exc}",
                    code="config.invalid",
                    context={"file": source, "key": dotted_key, "rule": "toml-representable"},
                ) from exc
        after = _file_problems(_plain(doc.unwrap()), all_schemas, source)
        _refuse_worse(before, after, dotted_key, source)
        _write_user_doc(real, doc)
    return path


def _remove_key(doc: Any, parts: list[str]) -> bool:
    """Delete the key at ``parts`` and the tables it leaves empty; False when it is absent."""
    container: Any = doc
    for part in parts[:-1]:
        container = container.get(part)
        if not isinstance(container, MutableMapping):
            return False
    if parts[-1] not in container:
        return False
    del container[parts[-1]]
    _prune_empty(doc, parts[:-1])
    return True


def _prune_empty(doc: Any, parts: list[str]) -> None:
    """Remove the tables along ``parts`` that no longer hold any key, deepest first."""
    for end in range(len(parts), 0, -1):
        parent: Any = doc
        for part in parts[: end - 1]:
            parent = parent.get(part)
            if not isinstance(parent, MutableMapping):
                return
        table = parent.get(parts[end - 1])
        if not isinstance(table, MutableMapping) or len(table) > 0:
            return
        del parent[parts[end - 1]]


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
    path, real = _real_user_file(user_file)
    parts = _split_key(dotted_key, str(path))
    if not real.exists():
        return path
    with _editing(real):
        doc = _load_user_doc(real)
        if _remove_key(doc, parts):
            _write_user_doc(real, doc)
    return path
