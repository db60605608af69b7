"""Every key of the built-in defaults (core schemas and packaged profiles) is read by some code."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from symphony.commons.config import CORE_SCHEMAS

REPO = Path(__file__).resolve().parents[3]
PROFILES = REPO / "core" / "src" / "symphony" / "commons" / "profiles"


def _leaf_keys(schema: Mapping[str, Any], prefix: str) -> Iterator[str]:
    props = schema.get("properties")
    if not isinstance(props, Mapping) or ("default" in schema and prefix.count(".") > 0):
        yield prefix
        return
    for key, sub in props.items():
        yield from _leaf_keys(sub, f"{prefix}.{key}")


def default_keys() -> set[str]:
    keys = {key for section, schema in CORE_SCHEMAS.items() for key in _leaf_keys(schema, section)}
    for profile in PROFILES.glob("*.toml"):
        for section, table in tomllib.loads(profile.read_text("utf-8")).items():
            keys.update(f"{section}.{key}" for key in table)
    return keys


def _strings(tree: ast.AST, skip: Iterable[ast.AST]) -> set[str]:
    """String constants in code, leaving out docstrings and the ``skip`` subtrees."""
    skipped = {id(node) for root in skip for node in ast.walk(root)}
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                skipped.add(id(body[0].value))
    return {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skipped
    }


def code_strings_by_file(src_dirs: Iterable[Path]) -> list[set[str]]:
    """Per source file, the strings its code uses; the schema definitions themselves do not count."""
    found = []
    for src in src_dirs:
        for path in sorted(src.rglob("*.py")):
            tree = ast.parse(path.read_bytes())
            skip = [
                node
                for node in ast.walk(tree)
                if isinstance(node, (ast.Assign, ast.AnnAssign))
                and any(isinstance(t, ast.Name) and t.id == "CORE_SCHEMAS" for t in ast.walk(node))
            ]
            found.append(_strings(tree, skip))
    return found


def unread(keys: Iterable[str], files: list[set[str]]) -> list[str]:
    """Keys no file reads: neither the dotted key nor (section and key) appear in one file's code."""
    missing = []
    for dotted in sorted(keys):
        section, _, rest = dotted.partition(".")
        leaf = rest.split(".")[-1]
        if not any(dotted in strings or (section in strings and leaf in strings) for strings in files):
            missing.append(dotted)
    return missing


def _src_dirs() -> list[Path]:
    return [REPO / "core" / "src", REPO / "sdk" / "src", *sorted(REPO.glob("plugins/*/src"))]


def test_every_default_key_is_read_by_code() -> None:
    keys = default_keys()
    assert {"fs.max_file_size", "kernel.startup_timeout", "logging.level"} <= keys
    assert unread(keys, code_strings_by_file(_src_dirs())) == []


def test_the_check_can_fail(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "mod.py").write_text(
        '"""Mentions fs.never_read in a docstring only."""\n'
        'CORE_SCHEMAS = {"fs": {"properties": {"never_read": {"default": 1}}}}\n'
        'def f(config):\n    return config.get("fs.read_here")\n'
    )
    assert unread(["fs.never_read", "fs.read_here"], code_strings_by_file([src])) == ["fs.never_read"]
