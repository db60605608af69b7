"""The manifest reference page is generated from the manifest's JSON Schema and kept up to date;
it covers every field and the node-type port syntax, and its examples are valid manifests."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from symphony.plugins.manifest import MANIFEST_SCHEMA, parse_manifest
from symphony_workflow import NodeTypeRegistry
from symphony_workflow._node_types import manifest_node_types

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "sdk" / "docs" / "generate_manifest.py"
PAGE = ROOT / "sdk" / "docs" / "manifest.md"


def test_the_manifest_reference_is_up_to_date(docs_generator: Callable[[str], ModuleType]) -> None:
    assert PAGE.read_text() == docs_generator("generate_manifest").render(), (
        "sdk/docs/manifest.md is out of date: run `python sdk/docs/generate_manifest.py`"
    )


def test_the_check_mode_fails_on_a_stale_page(
    tmp_path: Path, docs_generator: Callable[[str], ModuleType]
) -> None:
    ok = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    module = docs_generator("generate_manifest")
    module.PAGE = tmp_path / "manifest.md"
    module.PAGE.write_text("# stale\n")
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0 and module.main(["--check"]) == 0


def test_every_schema_field_is_documented() -> None:
    page = PAGE.read_text()
    plugin = MANIFEST_SCHEMA["properties"]["plugin"]["properties"]
    for key, sub in plugin.items():
        assert f"| `plugin.{key}` |" in page, key
        assert sub.get("description"), f"plugin.{key} has no description in the schema"
    for key, sub in MANIFEST_SCHEMA["properties"].items():
        assert f"| `{key}` |" in page and sub.get("description"), key
    for key in NodeTypeRegistry.manifest_schema()["properties"]:
        assert f"| `{key}` |" in page, key
    for heading in (
        "### `[config_schema]`",
        "### `[contributes]`",
        "## Slots (`provides`)",
        "## `permissions`",
    ):
        assert heading in page
    for slot in ("service:", "transport:", "codec:", "message-type:", "node-type:"):
        assert f"`{slot}" in page, slot
    from symphony_workflow._types import BUILTIN_TYPES

    for port_type in BUILTIN_TYPES:
        assert f"`{port_type}`" in page, port_type


def test_the_pages_toml_examples_are_valid_manifests() -> None:
    page = PAGE.read_text()
    blocks = re.findall(r"```toml\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 2
    full = parse_manifest(tomllib.loads(blocks[0]), source="example")
    specs, problems = manifest_node_types(full)
    assert problems == [] and "textstats.analyze" in specs
    head = 'id = "symphony-textops"\nversion = "0.1.0"\nkind = "operator"\napi = ">=0.1,<0.2"\n'
    partial = blocks[1].replace("# ...\n", head)
    specs, problems = manifest_node_types(parse_manifest(tomllib.loads(partial), source="example"))
    assert problems == [] and specs["text.split"].outputs == {"chunks": "list[text]"}


def test_readmes_link_the_reference() -> None:
    assert "sdk/docs/manifest.md" in (ROOT / "README.md").read_text()
    assert "docs/manifest.md" in (ROOT / "sdk" / "README.md").read_text()
