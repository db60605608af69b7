"""symphony.commons.config: layering, sources, env vars, errors, user-file editing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from symphony.commons import config as cfg
from symphony.commons.config import (
    CORE_SCHEMAS,
    Config,
    load_config,
    parse_env_value,
    set_user_value,
    unset_user_value,
    validate_section,
)
from symphony.commons.errors import ConfigError, NotFoundError

MiB = 1024 * 1024

WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_nodes": {"type": "integer", "minimum": 1, "default": 100000},
        "templates": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"dir": {"type": "string", "default": "templates"}, "strict": {"type": "boolean"}},
        },
    },
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    return tmp_path


def load(home: Path, *, environ: dict[str, str] | None = None, **kwargs: Any) -> Config:
    kwargs.setdefault("user_file", home / "user.toml")
    kwargs.setdefault("config_dir", home / "conf")
    return load_config(environ=environ or {}, **kwargs)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- defaults & profiles


def test_defaults_fill_every_core_section(home: Path) -> None:
    config = load(home, env="development")
    assert set(config.data) == set(CORE_SCHEMAS)
    assert config.section("logging") == {
        "level": "info",
        "console": True,
        "format": "auto",
        "file": None,
        "rotation": "size",
        "max_bytes": 10 * MiB,
        "backup_count": 5,
        "json_file": None,
    }
    assert config.section("fs") == {"max_file_size": 100 * MiB}
    assert config.section("kernel") == {"strict_plugins": False, "hook_policy": {}, "startup_timeout": 30}
    assert config.section("plugins") == {"disabled": [], "enabled": []}
    assert config.source_of("logging.level") == "default"
    assert config.files == []


def test_env_defaults_to_development(home: Path) -> None:
    config = load(home)
    assert config.env == "development"
    assert config.get("debug.duck_debugging") is True
    assert config.source_of("debug.duck_debugging") == "profile:development"


def test_env_from_symphony_env(home: Path) -> None:
    config = load(home, environ={"SYMPHONY_ENV": "test"})
    assert config.env == "test"


def test_test_profile(home: Path) -> None:
    config = load(home, env="test")
    assert config.get("logging.level") == "debug"
    assert config.get("logging.format") == "compact"
    assert config.get("fs.max_file_size") == 10 * MiB
    assert config.get("debug.duck_debugging") is False
    assert config.source_of("fs.max_file_size") == "profile:test"


def test_production_profile(home: Path) -> None:
    config = load(home, env="production")
    assert config.get("logging.level") == "warning"
    assert config.get("logging.console") is False
    assert config.get("logging.json_file") is None
    assert config.get("fs.max_file_size") == 1024 * MiB
    assert config.get("debug.duck_debugging") is False


@pytest.mark.parametrize("bad", ["staging", "default", "prod"])
def test_bad_symphony_env(home: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, environ={"SYMPHONY_ENV": bad})
    assert info.value.code == "config.bad_env"
    assert info.value.context["variable"] == "SYMPHONY_ENV"
    assert info.value.context["value"] == bad
    assert "SYMPHONY_ENV" in str(info.value)


def test_packaged_default_profile_is_below_env_profile(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = home / "profiles"
    write(profiles / "default.toml", '[logging]\nlevel = "error"\nrotation = "daily"\n')
    write(profiles / "test.toml", '[logging]\nlevel = "warning"\n')
    monkeypatch.setattr(cfg, "_PROFILE_DIR", profiles)
    config = load(home, env="test")
    assert config.get("logging.level") == "warning"
    assert config.source_of("logging.level") == "profile:test"
    assert config.get("logging.rotation") == "daily"
    assert config.source_of("logging.rotation") == "profile:default"


# --------------------------------------------------------------------------- layering


def test_every_layer_overrides_the_one_before(home: Path) -> None:
    conf = home / "conf"
    write(
        conf / "default.toml",
        '[logging]\nlevel = "warning"\nbackup_count = 1\nmax_bytes = 1\nrotation = "daily"\n',
    )
    write(conf / "test.toml", '[logging]\nbackup_count = 2\nmax_bytes = 2\nrotation = "hourly"\n')
    user = write(home / "user.toml", '[logging]\nmax_bytes = 3\nrotation = "size"\n')
    environ = {"SYMPHONY_LOGGING__ROTATION": "daily"}
    config = load(home, env="test", environ=environ, overrides={"logging.backup_count": 9})

    # test profile says debug; conf/default.toml says warning and wins.
    assert config.get("logging.level") == "warning"
    assert config.source_of("logging.level") == str(conf / "default.toml")
    # conf/test.toml beats conf/default.toml; override beats both.
    assert config.get("logging.backup_count") == 9
    assert config.source_of("logging.backup_count") == "override"
    # user file beats conf/test.toml.
    assert config.get("logging.max_bytes") == 3
    assert config.source_of("logging.max_bytes") == str(user)
    # environment beats the user file.
    assert config.get("logging.rotation") == "daily"
    assert config.source_of("logging.rotation") == "env:SYMPHONY_LOGGING__ROTATION"
    # untouched values keep their source.
    assert config.source_of("logging.format") == "profile:test"
    assert config.source_of("logging.json_file") == "default"
    assert config.files == [conf / "default.toml", conf / "test.toml", user]


def test_other_env_file_is_not_read(home: Path) -> None:
    write(home / "conf" / "production.toml", '[logging]\nlevel = "error"\n')
    config = load(home, env="test")
    assert config.get("logging.level") == "debug"
    assert config.files == []


def test_config_dir_from_environ_and_missing_files_skipped(home: Path) -> None:
    other = home / "other"
    write(other / "default.toml", "[fs]\nmax_file_size = 5\n")
    config = load_config(
        environ={"SYMPHONY_CONFIG_DIR": str(other)}, user_file=home / "missing.toml", env="development"
    )
    assert config.get("fs.max_file_size") == 5
    assert config.files == [other / "default.toml"]
    none = load_config(environ={}, user_file=home / "missing.toml", config_dir=home / "does-not-exist")
    assert none.files == []


def test_user_file_from_environ(home: Path) -> None:
    user = write(home / "u" / "mine.toml", "[plugins]\ndisabled = ['x']\n")
    config = load_config(environ={"SYMPHONY_USER_CONFIG": str(user)})
    assert config.get("plugins.disabled") == ["x"]
    assert config.source_of("plugins.disabled") == str(user)


def test_tables_merge_deeply_arrays_replace(home: Path) -> None:
    write(
        home / "conf" / "default.toml",
        '[kernel.hook_policy]\nsymphony_startup = "isolate"\n[plugins]\ndisabled = ["a", "b"]\n',
    )
    write(
        home / "user.toml",
        '[kernel.hook_policy]\nsymphony_shutdown = "propagate"\n[plugins]\ndisabled = ["c"]\n',
    )
    config = load(home)
    assert config.get("kernel.hook_policy") == {
        "symphony_startup": "isolate",
        "symphony_shutdown": "propagate",
    }
    assert config.source_of("kernel.hook_policy.symphony_startup") == str(home / "conf" / "default.toml")
    assert config.source_of("kernel.hook_policy.symphony_shutdown") == str(home / "user.toml")
    assert config.get("plugins.disabled") == ["c"]


def test_overrides_nested_and_dotted(home: Path) -> None:
    config = load(home, overrides={"logging": {"level": "error", "console": False}, "logging.file": "/tmp/x"})
    assert config.get("logging.level") == "error"
    assert config.get("logging.console") is False
    assert config.get("logging.file") == "/tmp/x"
    assert config.source_of("logging.file") == "override"
    assert config.source_of("logging.console") == "override"


def test_override_unknown_key(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, overrides={"logging.colour": True})
    assert info.value.code == "config.unknown_key"
    assert info.value.context == {
        "file": "override",
        "key": "logging.colour",
        "rule": "additionalProperties=false",
    }
    with pytest.raises(ConfigError) as info2:
        load(home, overrides={"logging..level": "x"})
    assert info2.value.code == "config.unknown_key"


# --------------------------------------------------------------------------- environment variables


def test_env_vars_nested_and_typed(home: Path) -> None:
    environ = {
        "SYMPHONY_FS__MAX_FILE_SIZE": "2048",
        "SYMPHONY_LOGGING__CONSOLE": "off",
        "SYMPHONY_KERNEL__STARTUP_TIMEOUT": "2.5",
        "SYMPHONY_KERNEL__HOOK_POLICY__SYMPHONY_STARTUP": "isolate",
        "SYMPHONY_PLUGINS__DISABLED": '["symphony-a", "symphony-b"]',
        "SYMPHONY_LOGGING__FILE": "/var/log/symphony.log",
        # reserved names (no "__") are ignored by the layering
        "SYMPHONY_ENV": "development",
        "SYMPHONY_STRICT_PLUGINS": "1",
        "SYMPHONY_CONFIG_DIR": str(home / "conf"),
        "OTHER__THING": "ignored",
    }
    config = load(home, environ=environ)
    assert config.get("fs.max_file_size") == 2048
    assert config.get("logging.console") is False
    assert config.get("kernel.startup_timeout") == 2.5
    assert config.get("kernel.hook_policy") == {"symphony_startup": "isolate"}
    assert config.source_of("kernel.hook_policy.symphony_startup") == (
        "env:SYMPHONY_KERNEL__HOOK_POLICY__SYMPHONY_STARTUP"
    )
    assert config.get("plugins.disabled") == ["symphony-a", "symphony-b"]
    assert config.get("logging.file") == "/var/log/symphony.log"
    assert config.get("kernel.strict_plugins") is False


def test_specific_env_var_refines_whole_table_var(home: Path) -> None:
    environ = {
        "SYMPHONY_KERNEL__HOOK_POLICY": '{"symphony_startup": "isolate", "symphony_shutdown": "isolate"}',
        "SYMPHONY_KERNEL__HOOK_POLICY__SYMPHONY_SHUTDOWN": "propagate",
    }
    config = load(home, environ=environ)
    assert config.get("kernel.hook_policy") == {
        "symphony_startup": "isolate",
        "symphony_shutdown": "propagate",
    }


def test_env_var_unknown_section_and_key(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, environ={"SYMPHONY_NOPE__KEY": "1"})
    assert info.value.code == "config.unknown_key"
    assert info.value.context["variable"] == "SYMPHONY_NOPE__KEY"
    assert info.value.context["file"] == "env:SYMPHONY_NOPE__KEY"
    assert "SYMPHONY_NOPE__KEY" in str(info.value)
    with pytest.raises(ConfigError) as info2:
        load(home, environ={"SYMPHONY_LOGGING__LEVL": "debug"})
    assert info2.value.context["key"] == "logging.levl"
    assert "level" in (info2.value.hint or "")
    with pytest.raises(ConfigError):
        load(home, environ={"SYMPHONY_LOGGING__": "debug"})


def test_env_var_that_does_not_parse(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, environ={"SYMPHONY_FS__MAX_FILE_SIZE": "lots"})
    err = info.value
    assert err.code == "config.env_parse"
    assert err.context["variable"] == "SYMPHONY_FS__MAX_FILE_SIZE"
    assert err.context["value"] == "lots"
    assert err.context["expected"] == "integer"
    assert "SYMPHONY_FS__MAX_FILE_SIZE" in str(err)


def test_env_var_that_parses_but_breaks_a_rule(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, environ={"SYMPHONY_LOGGING__LEVEL": "loud"})
    err = info.value
    assert err.code == "config.invalid"
    assert err.context["file"] == "env:SYMPHONY_LOGGING__LEVEL"
    assert err.context["key"] == "logging.level"
    assert err.context["rule"].startswith("enum=")


# --------------------------------------------------------------------------- file errors


def test_wrong_type_in_file_names_file_key_and_rule(home: Path) -> None:
    user = write(home / "user.toml", '[fs]\nmax_file_size = "big"\n')
    with pytest.raises(ConfigError) as info:
        load(home)
    err = info.value
    assert err.code == "config.invalid"
    assert err.context["file"] == str(user)
    assert err.context["key"] == "fs.max_file_size"
    assert err.context["rule"] == "type=integer"
    assert str(user) in err.message and "fs.max_file_size" in err.message


def test_constraint_failure_and_all_errors_listed(home: Path) -> None:
    conf = write(home / "conf" / "default.toml", "[logging]\nbackup_count = -1\n")
    user = write(home / "user.toml", "[kernel]\nstartup_timeout = 0\n")
    with pytest.raises(ConfigError) as info:
        load(home)
    err = info.value
    assert err.context["key"] == "kernel.startup_timeout"  # first by key
    assert err.context["file"] == str(user)
    assert err.context["rule"] == "exclusiveMinimum=0"
    assert {(e["file"], e["key"], e["rule"]) for e in err.context["errors"]} == {
        (str(user), "kernel.startup_timeout", "exclusiveMinimum=0"),
        (str(conf), "logging.backup_count", "minimum=0"),
    }


_CHOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "listener": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"port": {"type": "integer", "maximum": 65535}},
                },
            ]
        },
        "name": {"type": "string"},
    },
}


def test_validate_section_reports_like_the_layered_config() -> None:
    validate_section("demo", {"name": "ok", "listener": None}, _CHOICE_SCHEMA)
    validate_section("demo", None, _CHOICE_SCHEMA)
    with pytest.raises(ConfigError) as info:
        validate_section("demo", {"name": 3}, _CHOICE_SCHEMA, source="api")
    assert info.value.code == "config.invalid"
    assert info.value.context == {"file": "api", "key": "demo.name", "rule": "type=string"}
    with pytest.raises(ConfigError) as info:
        validate_section("demo", {"nmae": "typo"}, _CHOICE_SCHEMA)
    assert info.value.code == "config.unknown_key" and info.value.context["key"] == "demo.nmae"


def test_a_failed_choice_names_the_closest_branch() -> None:
    """oneOf/anyOf: the error names the deepest failing key, not just 'oneOf' on the parent."""
    with pytest.raises(ConfigError) as info:
        validate_section("demo", {"listener": {"port": 70000}}, _CHOICE_SCHEMA)
    assert info.value.context["key"] == "demo.listener.port"
    assert info.value.context["rule"] == "maximum=65535"


def test_section_that_is_not_a_table(home: Path) -> None:
    user = write(home / "user.toml", "logging = 5\n")
    with pytest.raises(ConfigError) as info:
        load(home)
    assert info.value.code == "config.invalid"
    assert info.value.context == {"file": str(user), "key": "logging", "rule": "type=object"}


def test_unknown_key_in_file(home: Path) -> None:
    conf = write(home / "conf" / "development.toml", '[logging]\nlevle = "debug"\n')
    with pytest.raises(ConfigError) as info:
        load(home)
    err = info.value
    assert err.code == "config.unknown_key"
    assert err.context == {"file": str(conf), "key": "logging.levle", "rule": "additionalProperties=false"}
    assert "level" in (err.hint or "")


def test_unknown_section_in_file(home: Path) -> None:
    user = write(home / "user.toml", "[workflow]\nmax_nodes = 3\n")
    with pytest.raises(ConfigError) as info:
        load(home)
    assert info.value.code == "config.unknown_key"
    assert info.value.context == {"file": str(user), "key": "workflow"}
    relaxed = load(home, allow_unknown_sections=True)
    assert relaxed.get("workflow.max_nodes") == 3


def test_toml_syntax_error(home: Path) -> None:
    user = write(home / "user.toml", '[logging]\nlevel = "debug"\nconsole = \n')
    with pytest.raises(ConfigError) as info:
        load(home)
    err = info.value
    assert err.code == "config.parse"
    assert err.context["file"] == str(user)
    assert err.context["line"] == 3
    assert "line 3" in err.message


def test_invalid_utf8_file(home: Path) -> None:
    user = home / "user.toml"
    user.write_bytes(b'[logging]\nlevel = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load(home)
    assert info.value.code == "config.parse"
    assert info.value.context["line"] == 2


def test_unreadable_config_path(home: Path) -> None:
    (home / "conf" / "default.toml").mkdir()
    with pytest.raises(ConfigError) as info:
        load(home)
    assert info.value.code == "config.unreadable"


# --------------------------------------------------------------------------- plugin sections


def test_plugin_section_defaults_layers_and_validation(home: Path) -> None:
    schemas = {"workflow": WORKFLOW_SCHEMA}
    config = load(home, schemas=schemas)
    assert config.section("workflow") == {"max_nodes": 100000, "templates": {"dir": "templates"}}

    write(home / "user.toml", "[workflow.templates]\nstrict = true\n")
    config = load(home, schemas=schemas, environ={"SYMPHONY_WORKFLOW__MAX_NODES": "7"})
    assert config.get("workflow.max_nodes") == 7
    assert config.get("workflow.templates") == {"dir": "templates", "strict": True}

    with pytest.raises(ConfigError) as info:
        load(home, schemas=schemas, environ={"SYMPHONY_WORKFLOW__MAX_NODES": "0"})
    assert info.value.context == {
        "file": "env:SYMPHONY_WORKFLOW__MAX_NODES",
        "key": "workflow.max_nodes",
        "rule": "minimum=1",
    }

    with pytest.raises(ConfigError) as info2:
        load(home, schemas=schemas, overrides={"workflow.templates.colour": "red"})
    assert info2.value.code == "config.unknown_key"
    assert info2.value.context["key"] == "workflow.templates.colour"


def test_plugin_section_may_not_shadow_core(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, schemas={"logging": {"type": "object"}})
    assert info.value.code == "config.section_conflict"
    # Passing the core schema itself is harmless.
    load(home, schemas={"logging": CORE_SCHEMAS["logging"]})


def test_bad_plugin_schema(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(home, schemas={"broken": {"type": "no-such-type"}})
    assert info.value.code == "config.bad_schema"
    assert info.value.context["section"] == "broken"
    with pytest.raises(ConfigError):
        load(home, schemas={"broken": "not a schema"})  # type: ignore[dict-item]


def test_validators_are_compiled_once(home: Path) -> None:
    cfg._compiled.cache_clear()
    load(home, schemas={"workflow": WORKFLOW_SCHEMA})
    first = cfg._compiled.cache_info()
    load(home, schemas={"workflow": dict(WORKFLOW_SCHEMA)})
    second = cfg._compiled.cache_info()
    # untouched core sections are trusted; the unchecked plugin section is validated
    assert first.misses == 1
    assert second.misses == first.misses
    assert second.hits == first.hits + 1
    load(home, schemas={"workflow": WORKFLOW_SCHEMA}, overrides={"logging.level": "error"})
    third = cfg._compiled.cache_info()
    assert third.misses == 2  # the touched core section is validated too


def test_untouched_sections_skip_validation_only_when_schemas_are_checked(home: Path) -> None:
    broken_default = {"type": "object", "properties": {"n": {"type": "integer", "default": "NaN"}}}
    with pytest.raises(ConfigError):
        load(home, schemas={"plug": broken_default})
    assert load(home, schemas={"plug": broken_default}, schemas_checked=True).get("plug.n") == "NaN"
    with pytest.raises(ConfigError):
        load(home, schemas={"plug": broken_default}, schemas_checked=True, overrides={"plug.n": "x"})


# --------------------------------------------------------------------------- Config object


def test_config_accessors(home: Path) -> None:
    config = load(home, env="test")
    assert config.get("logging.level") == "debug"
    assert config.get("logging.nope", "fallback") == "fallback"
    assert config.get("nope.nope") is None
    section = config.section("logging")
    section["level"] = "changed"
    assert config.get("logging.level") == "debug"  # section() is a copy
    dumped = config.to_dict()
    dumped["fs"]["max_file_size"] = 1
    assert config.get("fs.max_file_size") == 10 * MiB
    assert set(config.schemas) == set(CORE_SCHEMAS)
    assert config.sources["logging.level"] == "profile:test"
    assert "test" in repr(config)
    with pytest.raises(NotFoundError) as info:
        config.section("nope")
    assert info.value.code == "config.unknown_section"
    with pytest.raises(NotFoundError):
        config.source_of("logging.nope")


# --------------------------------------------------------------------------- parse_env_value


@pytest.mark.parametrize(
    ("raw", "schema", "expected"),
    [
        ("42", {"type": "integer"}, 42),
        (" -7 ", {"type": "integer"}, -7),
        ("2.5", {"type": "number"}, 2.5),
        ("3", {"type": "number"}, 3),
        (".5", {"type": "number"}, 0.5),
        ("0x10", {"type": "integer"}, 16),
        ("TRUE", {"type": "boolean"}, True),
        ("yes", {"type": "boolean"}, True),
        ("on", {"type": "boolean"}, True),
        ("0", {"type": "boolean"}, False),
        ("Off", {"type": "boolean"}, False),
        ('["a", 1]', {"type": "array"}, ["a", 1]),
        ("['a', 'b']", {"type": "array"}, ["a", "b"]),
        ("a, b ,c", {"type": "array", "items": {"type": "string"}}, ["a", "b", "c"]),
        ("", {"type": "array", "items": {"type": "string"}}, []),
        ('{"a": 1}', {"type": "object"}, {"a": 1}),
        ("{ a = 1, b = 'x' }", {"type": "object"}, {"a": 1, "b": "x"}),
        ("plain text", {"type": "string"}, "plain text"),
        ("42", {"type": "string"}, "42"),
        ("", {"type": ["string", "null"]}, None),
        ("null", {"type": ["string", "null"]}, None),
        ("/var/log/x", {"type": ["string", "null"]}, "/var/log/x"),
        ("anything", {}, "anything"),
    ],
)
def test_parse_env_value(raw: str, schema: dict[str, Any], expected: Any) -> None:
    assert parse_env_value(raw, schema) == expected
    assert type(parse_env_value(raw, schema)) is type(expected)


@pytest.mark.parametrize(
    ("raw", "schema", "expected"),
    [
        ("4.2", {"type": "integer"}, "integer"),
        ("nan", {"type": "number"}, "number"),
        ("inf", {"type": "number"}, "number"),
        ("maybe", {"type": "boolean"}, "boolean"),
        ("[1, 2", {"type": "array"}, "array"),
        ('{"a": 1}', {"type": "array"}, "array"),
        ("[1]", {"type": "object"}, "object"),
        ("a = 1\nb = 2", {"type": "object"}, "object"),
        ("x", {"type": ["integer", "null"]}, "null|integer"),
    ],
)
def test_parse_env_value_rejects(raw: str, schema: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_value(raw, schema)
    assert info.value.code == "config.env_parse"
    assert info.value.context == {"value": raw, "expected": expected}


# --------------------------------------------------------------------------- user file editing

COMMENTED = """\
# My Symphony settings
[logging]
# keep it quiet
level = "warning"   # inline comment
console = true

[fs]
max_file_size = 1024  # bytes
"""


def test_set_user_value_keeps_comments(home: Path) -> None:
    user = write(home / "user.toml", COMMENTED)
    assert set_user_value("logging.level", "debug", user_file=user) == user
    text = user.read_text()
    assert text == COMMENTED.replace('level = "warning"', 'level = "debug"')
    set_user_value("kernel.strict_plugins", True, user_file=user)
    set_user_value("kernel.startup_timeout", "12.5", user_file=user)  # strings parsed by schema type
    set_user_value("kernel.hook_policy.symphony_startup", "isolate", user_file=user)
    text = user.read_text()
    for fragment in ("# My Symphony settings", "# keep it quiet", "# inline comment", "# bytes"):
        assert fragment in text
    config = load(home)
    assert config.get("logging.level") == "debug"
    assert config.get("kernel.strict_plugins") is True
    assert config.get("kernel.startup_timeout") == 12.5
    assert config.get("kernel.hook_policy") == {"symphony_startup": "isolate"}
    assert config.source_of("kernel.strict_plugins") == str(user)


def test_set_user_value_creates_missing_file(home: Path) -> None:
    user = home / "new" / "dir" / "config.toml"
    set_user_value("plugins.disabled", ["symphony-x"], user_file=user)
    assert load(home, user_file=user).get("plugins.disabled") == ["symphony-x"]


def test_set_user_value_default_file_from_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = home / "env-user.toml"
    monkeypatch.setenv("SYMPHONY_USER_CONFIG", str(user))
    assert set_user_value("logging.console", "no") == user
    assert "console = false" in user.read_text()


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("logging.level", "loud", "config.invalid"),
        ("fs.max_file_size", "big", "config.invalid"),
        ("fs.max_file_size", -5, "config.invalid"),
        ("logging.colour", "red", "config.unknown_key"),
        ("nosection.key", 1, "config.unknown_key"),
        ("logging", "x", "config.unknown_key"),
        ("logging..level", "x", "config.unknown_key"),
    ],
)
def test_invalid_set_user_value_leaves_file_byte_identical(
    home: Path, key: str, value: Any, code: str
) -> None:
    user = write(home / "user.toml", COMMENTED)
    before = user.read_bytes()
    with pytest.raises(ConfigError) as info:
        set_user_value(key, value, user_file=user)
    assert info.value.code == code
    assert info.value.context["file"] == str(user)
    assert user.read_bytes() == before
    left = sorted(p.name for p in home.iterdir() if p.is_file())
    assert left in (["user.toml"], [".user.toml.lock", "user.toml"])  # no temporary left behind


def test_set_user_value_broken_file_is_reported_and_untouched(home: Path) -> None:
    user = write(home / "user.toml", "[logging\nlevel = 1\n")
    before = user.read_bytes()
    with pytest.raises(ConfigError) as info:
        set_user_value("logging.level", "debug", user_file=user)
    assert info.value.code == "config.parse"
    assert user.read_bytes() == before


def test_set_user_value_plugin_section(home: Path) -> None:
    user = home / "user.toml"
    set_user_value("workflow.max_nodes", "50", user_file=user, schemas={"workflow": WORKFLOW_SCHEMA})
    assert load(home, schemas={"workflow": WORKFLOW_SCHEMA}).get("workflow.max_nodes") == 50
    with pytest.raises(ConfigError):
        set_user_value("workflow.max_nodes", 0, user_file=user, schemas={"workflow": WORKFLOW_SCHEMA})


def test_set_none_removes_and_unset_user_value(home: Path) -> None:
    user = write(home / "user.toml", COMMENTED)
    set_user_value("fs.max_file_size", None, user_file=user)
    assert "max_file_size" not in user.read_text()
    assert unset_user_value("logging.level", user_file=user) == user
    text = user.read_text()
    assert "level" not in text
    assert "# keep it quiet" in text
    assert load(home).get("logging.level") == "info"
    before = user.read_bytes()
    unset_user_value("logging.level", user_file=user)  # already gone: no-op
    unset_user_value("nosection.key", user_file=user)
    assert user.read_bytes() == before
    missing = home / "missing.toml"
    assert unset_user_value("logging.level", user_file=missing) == missing
    assert not missing.exists()


def test_unset_removes_stale_unknown_keys(home: Path) -> None:
    user = write(home / "user.toml", '[gone_plugin]\nkey = 1\n[logging]\nlevel = "error"\n')
    unset_user_value("gone_plugin", user_file=user)
    assert load(home).get("logging.level") == "error"
