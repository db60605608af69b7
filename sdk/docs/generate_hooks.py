"""Generate ``sdk/docs/hooks.md``, the hooks reference, from the hookspecs' docstrings.

    python sdk/docs/generate_hooks.py            # rewrite the page
    python sdk/docs/generate_hooks.py --check    # exit 1 if the page is out of date
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _docgen import write_or_check  # this folder holds the generators' helper

PAGE = Path(__file__).with_name("hooks.md")
SOURCES = (
    ("symphony.hookspecs", "the kernel (`symphony-core`)", "always available"),
    (
        "symphony_workflow.hookspecs",
        "the workflow plugin (`symphony-workflow`)",
        'added when the workflow plugin is activated; implementers list `requires = ["symphony-workflow"]`',
    ),
    (
        "symphony_conductor.hookspecs",
        "the conductor (`symphony-conductor`)",
        'added when the conductor is activated (at kernel start); implementers list `requires = ["symphony-conductor"]`',
    ),
)
COMMAND = "python sdk/docs/generate_hooks.py"
_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod):`~?([^`]+)`")


def _markdown(text: str) -> str:
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _annotation(value: object) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _hook_section(name: str, fn: object) -> list[str]:
    signature = inspect.signature(fn)  # type: ignore[arg-type]
    args = ", ".join(f"{p.name}: {_annotation(p.annotation)}" for p in signature.parameters.values())
    lines = [f"### `{name}({args}) -> {_annotation(signature.return_annotation)}`", ""]
    doc = inspect.cleandoc(fn.__doc__ or "").splitlines()
    params: list[list[str]] = []
    example: list[str] = []
    body: list[str] = []
    mode = "body"
    for line in doc:
        if line.startswith(":param "):
            mode = "param"
            head, _, rest = line[len(":param ") :].partition(":")
            params.append([f"- `{head.strip()}`: {rest.strip()}"])
        elif line.strip() == "Example::":
            mode = "example"
        elif mode == "param" and line.startswith("    "):
            params[-1].append(line.strip())
        elif mode == "example" and (line.startswith("    ") or not line.strip()):
            example.append(line[4:])
        else:
            mode = "body"
            body.append(line)
    lines += [_markdown(line) for line in body]
    while lines[-1] == "":
        lines.pop()
    lines += ["", "Arguments:", ""]
    lines += [_markdown(" ".join(p)) for p in params]
    while example and not example[0].strip():
        example.pop(0)
    while example and not example[-1].strip():
        example.pop()
    lines += ["", "Example:", "", "```python", *example, "```", ""]
    return lines


def render() -> str:
    """The whole page."""
    out = [
        "# Hooks reference",
        "",
        f"<!-- generated from the hookspecs' docstrings by `{COMMAND}`; do not edit by hand -->",
        "",
        "A plugin implements any of these hooks in the module its `symphony.plugins` entry point names,",
        "marked with `from symphony_sdk import hookimpl`. An implementation may omit arguments it does",
        "not use. An implementation whose name matches no hook fails its plugin with the name in the",
        "reason (`symphony plugins inspect ID --load` shows it). A hook added by another plugin needs",
        "that plugin in the manifest's `requires`; if the other plugin is optional, mark the",
        "implementation `@hookimpl(optionalhook=True)` instead: it is called when that plugin arrives.",
        "",
    ]
    for module_name, owner, when in SOURCES:
        module = importlib.import_module(module_name)
        out += [f"## Hooks of {owner}", "", f"Module `{module_name}`: {when}.", ""]
        for name, fn in vars(module).items():
            if name.startswith("symphony_") and inspect.isfunction(fn) and hasattr(fn, "symphony_spec"):
                out += _hook_section(name, fn)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Write the page, or with ``--check`` say whether it is up to date."""
    return write_or_check(PAGE, render, COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
