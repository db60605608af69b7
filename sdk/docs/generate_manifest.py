"""Generate ``sdk/docs/manifest.md``, the manifest reference, from the manifest's JSON Schema.

The field tables come from the schema the kernel publishes (``symphony plugins schema``) and the
node-type table from the one the workflow plugin checks ``[contributes.node_types]`` against
(``NodeTypeRegistry.manifest_schema()``); the example is the textstats plugin's real manifest.

    python sdk/docs/generate_manifest.py            # rewrite the page
    python sdk/docs/generate_manifest.py --check    # exit 1 if the page is out of date
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from symphony.plugins.manifest import MANIFEST_SCHEMA
from symphony_workflow import NodeTypeRegistry

sys.path.insert(0, str(Path(__file__).parent))
from _docgen import write_or_check  # this folder holds the generators' helper

PAGE = Path(__file__).with_name("manifest.md")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "extensions" / "textstats" / "src" / "symphony_textstats" / "symphony.toml"
COMMAND = "python sdk/docs/generate_manifest.py"


def describe(schema: Mapping[str, Any]) -> str:
    """A short human reading of a JSON Schema fragment: ``list of string matching `...```."""
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "oneOf" in schema:
        return " or ".join(describe(s) for s in schema["oneOf"])
    kind = schema.get("type")
    if kind == "array":
        text = "list of " + describe(schema.get("items", {}))
        return text + (", no repeats" if schema.get("uniqueItems") else "")
    if kind == "object":
        if "properties" in schema and schema.get("additionalProperties") is False:
            keys = ", ".join(f"`{k}`" for k in schema["properties"])
            return f"table with {keys}"
        values = schema.get("additionalProperties")
        if isinstance(values, Mapping):
            names = schema.get("propertyNames", {}).get("pattern")
            keyed = f" (keys matching `{names}`)" if names else ""
            return f"table of {describe(values)}{keyed}"
        return "table"
    text = {"string": "string", "boolean": "boolean", "integer": "integer", "number": "number"}.get(
        str(kind), "value"
    )
    if "pattern" in schema:
        text += f" matching `{schema['pattern']}`"
    if "minLength" in schema:
        text += ", not empty"
    if "maxLength" in schema:
        text += f", at most {schema['maxLength']} characters"
    return text


def contributes_shape(schema: Mapping[str, Any]) -> str:
    """``[contributes.<registry>.<entry>]`` and the patterns of each level, from the schema."""
    entries = schema["additionalProperties"]
    table = entries["additionalProperties"]
    values = " or ".join(describe(v) for v in table["additionalProperties"]["oneOf"]).replace(
        "table of string (keys", "table of string (names"
    )
    return (
        f"`[contributes.<registry>.<entry>]` tables; `<registry>` matches "
        f"`{schema['propertyNames']['pattern']}`, `<entry>` matches "
        f"`{entries['propertyNames']['pattern']}`, their fields match "
        f"`{table['propertyNames']['pattern']}` and each value is a {values}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def field_table(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    """One row per property of ``schema``: key, required, value, meaning."""
    required = set(schema.get("required", ()))
    rows = ["| key | required | value | meaning |", "|---|---|---|---|"]
    for key, sub in schema["properties"].items():
        value = contributes_shape(sub) if key == "contributes" else describe(sub)
        rows.append(
            f"| `{prefix}{key}` | {'yes' if key in required else 'no'} | {_cell(value)} | "
            f"{_cell(sub.get('description', ''))} |"
        )
    return rows


SLOTS = [
    ("service:<name>", "a service, `kernel.service(name)`", "on first `kernel.service(name)`"),
    ("transport:<scheme>", "a bus transport (`unix`, `tcp`, `stdio`)", "when a bus URL uses the scheme"),
    ("codec:<name>", "a bus codec", "when the bus starts (every provider)"),
    ("message-type:<name>", "typed bus messages", "when the bus starts (every provider)"),
    (
        "node-type:<name>",
        "a workflow node type (its ports go in `[contributes.node_types]`)",
        'on `kernel.activate_slot("node-type:<name>")`; validation reads only the manifest',
    ),
]


def render() -> str:
    """The whole page."""
    plugin = MANIFEST_SCHEMA["properties"]["plugin"]
    top = MANIFEST_SCHEMA["properties"]
    node_type = NodeTypeRegistry.manifest_schema()
    out = [
        "# Manifest reference (`symphony.toml`)",
        "",
        f"<!-- generated from the manifest's JSON Schema by `{COMMAND}`; do not edit by hand -->",
        "",
        "Every plugin ships a `symphony.toml` inside its import package (next to the module its",
        "`symphony.plugins` entry point names; a wheel must include it). The kernel reads it",
        "*without importing the plugin*: discovery, `symphony --help`, configuration checks and",
        "workflow validation work even when the plugin's code is broken or slow to import.",
        "`symphony plugins schema` prints the JSON Schema below; `symphony plugins validate PATH`",
        "checks a manifest (or a project folder, building its wheel) and reports every problem at once.",
        "",
        "## A complete example",
        "",
        "The manifest of the example plugin `examples/extensions/textstats`:",
        "",
        "```toml",
        EXAMPLE.read_text().rstrip(),
        "```",
        "",
        "## `[plugin]`",
        "",
        *field_table(plugin, "plugin."),
        "",
        "## Top-level tables",
        "",
        *field_table(MANIFEST_SCHEMA, ""),
        "",
        "### `[config_schema]`",
        "",
        _cell(top["config_schema"]["description"]),
        "A bad value makes only this plugin `misconfigured`, with the file, key and rule in its",
        "reason; `symphony config set/unset` can always repair it.",
        "",
        "### `[contributes]`",
        "",
        _cell(top["contributes"]["description"]),
        "Shape: " + _cell(contributes_shape(top["contributes"])) + ".",
        "",
        "## Slots (`provides`)",
        "",
        "A slot is `<kind>:<name>`. Kinds in use:",
        "",
        "| slot | what it names | when its plugin is activated |",
        "|---|---|---|",
        *(f"| `{slot}` | {what} | {when} |" for slot, what, when in SLOTS),
        "",
        "Two usable plugins providing one slot are both `conflicting` (a part of Symphony itself",
        "keeps its slot against a newcomer); disable one in `plugins.disabled` to choose.",
        "",
        "## `requires`, `after` and `activation`",
        "",
        "`requires` names plugins that must be usable; they are activated first, and a plugin",
        "whose requirement is missing or failed is `incompatible` (or `activate-failed`) with the",
        "reason naming it. A plugin implementing a hook another plugin adds (such as",
        "`symphony_register_node_types`) requires that plugin. `after` only orders: the named",
        "plugins, when installed, are activated first. A cycle makes every plugin on it",
        '`incompatible`. With `activation = "on-demand"` (the default) nothing is imported until',
        'a slot, service or command of the plugin is used; `"on-startup"` activates it when the',
        "kernel opens.",
        "",
        "## `permissions`",
        "",
        "Strings `<area>` or `<area>:<detail>` (`fs:read`, `net:connect`), declared so a user can",
        "see what a plugin may do (`symphony plugins inspect ID`). The sandbox that will check",
        "them on every call of an out-of-process extension is a planned plugin: in process,",
        "nothing enforces them yet.",
        "",
        '## Node types: `[contributes.node_types."<name>"]`',
        "",
        "A plugin that adds workflow node types (it `requires` `symphony-workflow`) declares each",
        "one twice in its manifest: its name as a slot, and its ports in a table the workflow",
        "plugin reads. Then `symphony workflow validate` and the `workflow` service check every",
        "node of that type (port names, directions, types and kind) without importing the plugin.",
        "",
        "```toml",
        "[plugin]",
        "# ...",
        'provides = ["node-type:text.split"]',
        'requires = ["symphony-workflow"]',
        "",
        '[contributes.node_types."text.split"]',
        'kind = "operator"',
        'summary = "Split text into chunks."',
        'inputs = { text = "text", size = "integer" }',
        'outputs = { chunks = "list[text]" }',
        "```",
        "",
        *field_table(node_type),
        "",
        _cell(node_type["description"]),
        _cell(node_type["properties"]["inputs"]["additionalProperties"]["description"]),
        "",
        "Rules a workflow node of the type must follow (errors of `symphony workflow validate`):",
        "",
        "- each port the node declares exists on the type on the same side",
        "  (`workflow.node_type.unknown_port`, `workflow.node_type.port_direction`); a node may",
        "  declare fewer ports than the type has;",
        "- types fit by the workflow type rules: the node's input type must be assignable to the",
        "  type's input (`text` into `json` is fine), the type's output to the node's output",
        "  (`integer` into `number`) (`workflow.node_type.port_type`);",
        "- the node's kind is the type's (`workflow.node_type.kind`).",
        "",
        "When the plugin is activated, what its `symphony_register_node_types` hook registers must",
        "agree with this table (kind and ports): otherwise the plugin fails its activation",
        "(`node_types.manifest_mismatch`), the reason naming the manifest and the plugin. A type",
        "with a slot but no table is known by name only: its nodes' ports are checked against",
        "the registered spec once the plugin is active.",
        "",
        "## The JSON Schema",
        "",
        "As printed by `symphony plugins schema`:",
        "",
        "```json",
        json.dumps(MANIFEST_SCHEMA, indent=2),
        "```",
        "",
        'And of one `[contributes.node_types."<name>"]` table:',
        "",
        "```json",
        json.dumps(node_type, indent=2),
        "```",
    ]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Write the page, or with ``--check`` say whether it is up to date."""
    return write_or_check(PAGE, render, COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
