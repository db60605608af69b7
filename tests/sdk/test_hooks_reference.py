"""The hookspecs teach (typed arguments, a :param: line each, an example, when it is called) and
the hooks reference page generated from them is up to date."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import symphony_sdk
from symphony import hookspecs as kernel_specs
from symphony_conductor import hookspecs as conductor_specs
from symphony_workflow import hookspecs as workflow_specs

ROOT = Path(__file__).resolve().parents[2]


HOOKS = [
    (name, fn)
    for module in (kernel_specs, workflow_specs, conductor_specs)
    for name, fn in vars(module).items()
    if name.startswith("symphony_") and inspect.isfunction(fn) and hasattr(fn, "symphony_spec")
]


def test_the_hooks_reference_is_up_to_date(docs_generator: Callable[[str], ModuleType]) -> None:
    page = ROOT / "sdk" / "docs" / "hooks.md"
    expected = docs_generator("generate_hooks").render()
    assert page.read_text() == expected, (
        "sdk/docs/hooks.md is out of date: run `python sdk/docs/generate_hooks.py`"
    )
    for name, _ in HOOKS:
        assert f"### `{name}(" in expected


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[name for name, _ in HOOKS])
def test_every_hookspec_teaches(name: str, fn: object) -> None:
    doc = inspect.getdoc(fn) or ""
    signature = inspect.signature(fn)  # type: ignore[arg-type]
    for param in signature.parameters.values():
        assert param.annotation is not inspect.Parameter.empty and param.annotation != "Any", (name, param)
        assert f":param {param.name}:" in doc, (name, param.name)
    assert "Example::" in doc and "from symphony_sdk import" in doc and "hookimpl" in doc, name
    assert f"def {name}(" in doc, name
    assert "Called" in doc, name


def test_the_registry_classes_are_exported_for_annotations() -> None:
    from symphony.bus._registries import CodecRegistry, MessageTypeRegistry, TransportRegistry
    from symphony.services import CommandRegistry, ServiceRegistry

    for cls in (ServiceRegistry, CommandRegistry, TransportRegistry, CodecRegistry, MessageTypeRegistry):
        assert getattr(symphony_sdk, cls.__name__) is cls
        assert cls.__name__ in symphony_sdk.__all__


def test_readmes_link_the_reference() -> None:
    assert "sdk/docs/hooks.md" in (ROOT / "README.md").read_text()
    assert "docs/hooks.md" in (ROOT / "sdk" / "README.md").read_text()
