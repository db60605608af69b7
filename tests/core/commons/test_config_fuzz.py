"""Property tests: the config parsers raise ConfigError on bad input, never anything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.config import CORE_SCHEMAS, Config, load_config, parse_env_value
from symphony.commons.errors import ConfigError

KNOWN_KEYS = [f"{section}.{key}" for section, schema in CORE_SCHEMAS.items() for key in schema["properties"]]

toml_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: repr(f).replace("inf", "inf").replace("nan", "nan")
    ),
    st.sampled_from(
        [
            "true",
            "false",
            '"debug"',
            '"info"',
            "'json'",
            '""',
            "[]",
            '["a", 1]',
            "{}",
            "1979-05-27",
            "{ x = 1 }",
            "[" * 3000,
        ]
    ),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


@st.composite
def toml_like(draw: st.DrawFn) -> str:
    """Mostly well-formed TOML over known and unknown keys, sometimes with damage."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        key = draw(
            st.one_of(st.sampled_from(KNOWN_KEYS), st.from_regex(r"[a-z_]{1,8}\.[a-z_]{1,8}", fullmatch=True))
        )
        section, name = key.split(".", 1)
        lines.append(f"[{section}]")
        lines.append(f"{name} = {draw(toml_scalars)}")
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=5)) + text[cut:]
    return text


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config-fuzz")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(), toml_like()))
def test_arbitrary_user_file_gives_config_or_config_error(fuzz_dir: Path, text: str) -> None:
    user = fuzz_dir / "user.toml"
    user.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(environ={}, user_file=user, config_dir=None)
    except ConfigError as exc:
        assert exc.code in {"config.parse", "config.unknown_key", "config.invalid"}
        assert exc.context["file"] == str(user) or exc.code != "config.parse"
    else:
        assert isinstance(config, Config)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_user_file_bytes(fuzz_dir: Path, raw: bytes) -> None:
    user = fuzz_dir / "user-bytes.toml"
    user.write_bytes(raw)
    try:
        load_config(environ={}, user_file=user, config_dir=None)
    except ConfigError:
        pass


env_names = st.one_of(
    st.sampled_from(KNOWN_KEYS).map(lambda k: "SYMPHONY_" + k.upper().replace(".", "__")),
    st.from_regex(r"SYMPHONY_[A-Za-z0-9_]{0,24}", fullmatch=True),
    st.just("SYMPHONY_KERNEL__HOOK_POLICY__SYMPHONY_STARTUP"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(environ=st.dictionaries(env_names, st.text(max_size=40), max_size=4))
def test_arbitrary_env_vars_give_config_or_config_error(fuzz_dir: Path, environ: dict[str, str]) -> None:
    try:
        config = load_config(environ=environ, user_file=fuzz_dir / "absent.toml", config_dir=None)
    except ConfigError as exc:
        assert exc.code.startswith("config.")
    else:
        assert isinstance(config, Config)


schemas = st.one_of(
    st.sampled_from(["integer", "number", "boolean", "array", "object", "string", "null"]).map(
        lambda t: {"type": t}
    ),
    st.lists(
        st.sampled_from(["integer", "number", "boolean", "array", "object", "string", "null"]),
        min_size=1,
        max_size=3,
    ).map(lambda ts: {"type": ts}),
    st.just({"type": "array", "items": {"type": "string"}}),
    st.just({}),
)


@settings(max_examples=1000, deadline=None)
@given(
    raw=st.one_of(st.text(), st.sampled_from(["[" * 3000, "{a=" * 2000, "1" * 5000, "1e999", "-0"])),
    schema=schemas,
)
def test_parse_env_value_fuzz(raw: str, schema: dict[str, Any]) -> None:
    try:
        value = parse_env_value(raw, schema)
    except ConfigError as exc:
        assert exc.code == "config.env_parse"
        assert exc.context["value"] == raw
        return
    types = schema.get("type")
    if types == "string":
        assert value == raw
    elif types == "integer":
        assert isinstance(value, int) and not isinstance(value, bool)
    elif types == "boolean":
        assert isinstance(value, bool)
    elif types == "array":
        assert isinstance(value, list)
    elif types == "object":
        assert isinstance(value, dict)
    elif types == "null":
        assert value is None


PLUGIN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}},
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(st.text(), toml_like()),
    environ=st.dictionaries(env_names, st.text(max_size=20), max_size=3),
)
def test_tolerant_load_never_raises(fuzz_dir: Path, text: str, environ: dict[str, str]) -> None:
    """``isolate=True`` (config show, doctor) reports whatever is wrong instead of raising."""
    user = fuzz_dir / "tolerant.toml"
    user.write_text(text, encoding="utf-8", errors="surrogatepass")
    config = load_config(
        environ=environ, user_file=user, config_dir=None, schemas={"plug": PLUGIN_SCHEMA}, isolate=True
    )
    for problem in [*config.problems, *config.warnings]:
        assert isinstance(problem, ConfigError) and problem.code.startswith("config.")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.one_of(st.just("plug"), st.from_regex(r"[a-z]{1,6}", fullmatch=True)), value=toml_scalars)
def test_plugin_section_problems_are_isolated(fuzz_dir: Path, section: str, value: str) -> None:
    """A plugin section's bad value is collected for that section; core keeps loading."""
    user = fuzz_dir / "isolated.toml"
    user.write_text(f"[{section}]\nn = {value}\n", encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(
            environ={},
            user_file=user,
            config_dir=None,
            schemas={"plug": PLUGIN_SCHEMA},
            isolate={"plug"},
            allow_unknown_sections=True,
        )
    except ConfigError as exc:  # the file itself is not TOML, or a core section was hit
        assert exc.code == "config.parse" or section in CORE_SCHEMAS
        return
    assert {p.context["section"] for p in config.problems} <= {"plug"}
