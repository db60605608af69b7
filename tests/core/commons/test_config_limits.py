"""Every numeric setting has a maximum (issue 10.8): limits the code cannot honour are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from symphony.bus._config import BUS_CONFIG_SCHEMA
from symphony.commons.config import CORE_SCHEMAS, load_config, set_user_value
from symphony.commons.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
SYMPHONY = str(Path(sys.executable).parent / "symphony")
HUGE = "99999999999999999999"


def _manifest_schemas() -> Iterator[tuple[str, Any]]:
    for folder in ("core", "plugins", "examples", "sdk"):
        for manifest in sorted((REPO / folder).rglob("symphony.toml")):
            doc = tomllib.loads(manifest.read_text())
            if "config_schema" in doc:
                yield str(manifest.relative_to(REPO)), doc["config_schema"]


def all_schemas() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [(f"core:{name}", schema) for name, schema in CORE_SCHEMAS.items()]
    found.append(("core:bus", BUS_CONFIG_SCHEMA))
    found.extend(_manifest_schemas())
    return found


def numeric_without_maximum(schema: Any, path: str) -> Iterator[str]:
    """Dotted paths of numeric schemas (integer/number) that declare no upper bound."""
    if not isinstance(schema, Mapping):
        return
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if {"integer", "number"} & set(types) and "maximum" not in schema and "exclusiveMaximum" not in schema:
        if "enum" not in schema and "const" not in schema:
            yield path
    for key, sub in (schema.get("properties") or {}).items():
        yield from numeric_without_maximum(sub, f"{path}.{key}")
    for key, sub in (schema.get("patternProperties") or {}).items():
        yield from numeric_without_maximum(sub, f"{path}.<{key}>")
    for key in ("additionalProperties", "items", "not"):
        yield from numeric_without_maximum(schema.get(key), f"{path}.{key}")
    for key in ("oneOf", "anyOf", "allOf", "prefixItems"):
        for index, sub in enumerate(schema.get(key) or []):
            yield from numeric_without_maximum(sub, f"{path}.{key}[{index}]")
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            yield from numeric_without_maximum(sub, f"{path}.{key}.{name}")


def test_the_walk_finds_what_it_looks_for() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": ["integer", "null"]}, "b": {"oneOf": [{"type": "number"}]}},
    }
    assert list(numeric_without_maximum(schema, "x")) == ["x.a", "x.b.oneOf[0]"]


def test_every_schema_was_found() -> None:
    names = {name for name, _ in all_schemas()}
    assert {"core:kernel", "core:logging", "core:fs", "core:bus"} <= names
    assert any("workflow" in name for name in names) and any("textstats" in name for name in names)


@pytest.mark.parametrize(("name", "schema"), all_schemas(), ids=[name for name, _ in all_schemas()])
def test_every_numeric_setting_has_a_maximum(name: str, schema: Any) -> None:
    assert list(numeric_without_maximum(schema, name)) == []


def test_huge_frame_size_is_refused_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            schemas={"bus": BUS_CONFIG_SCHEMA},
            user_file=tmp_path / "none.toml",
            environ={"SYMPHONY_BUS__MAX_FRAME_SIZE": HUGE},
        )
    assert info.value.context["key"] == "bus.max_frame_size"
    assert info.value.context["rule"].startswith("maximum=")
    assert info.value.context["file"] == "env:SYMPHONY_BUS__MAX_FRAME_SIZE"


def test_huge_frame_size_is_refused_by_config_set(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    with pytest.raises(ConfigError) as info:
        set_user_value("bus.max_frame_size", HUGE, user_file=user, schemas={"bus": BUS_CONFIG_SCHEMA})
    assert info.value.context["rule"].startswith("maximum=")
    assert not user.exists()


def test_huge_frame_size_through_the_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMPHONY_")}
    env["SYMPHONY_USER_CONFIG"] = str(tmp_path / "user.toml")
    proc = subprocess.run(
        [SYMPHONY, "config", "set", "bus.max_frame_size", HUGE],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 4
    assert "bus.max_frame_size" in proc.stderr and "maximum=" in proc.stderr
    proc = subprocess.run(
        [SYMPHONY, "plugins", "list"],
        capture_output=True,
        text=True,
        env={**env, "SYMPHONY_BUS__MAX_FRAME_SIZE": HUGE},
        check=False,
    )
    assert proc.returncode == 4
    assert "SYMPHONY_BUS__MAX_FRAME_SIZE" in proc.stderr and "maximum=" in proc.stderr
