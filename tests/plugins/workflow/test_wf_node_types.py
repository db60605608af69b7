"""``symphony_workflow.NodeTypeRegistry``: what ``symphony_register_node_types`` hooks fill."""

from __future__ import annotations

import pytest

from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony_workflow import NodeKind, NodeTypeRegistry


def test_add_get_names_contains() -> None:
    reg = NodeTypeRegistry()
    spec = reg.add(
        "text.split",
        kind="operator",
        inputs={"text": "text"},
        outputs={"chunks": "list[text]"},
        summary="Split text.",
        provider="symphony-textops",
    )
    assert reg.get("text.split") == spec
    assert spec.inputs == {"text": "text"} and spec.outputs == {"chunks": "list[text]"}
    assert reg.names() == ["text.split"] and "text.split" in reg and "x" not in reg and 3 not in reg
    assert len(reg) == 1 and list(reg) == ["text.split"]
    assert spec.to_dict()["provider"] == "symphony-textops"
    with pytest.raises(TypeError):
        spec.inputs["x"] = "any"  # type: ignore[index]


def test_duplicates_name_both_providers() -> None:
    reg = NodeTypeRegistry()
    reg.add("llm.generate", kind="instrument", provider="symphony-a")
    with pytest.raises(ConflictError) as info:
        reg.add("llm.generate", kind="instrument", provider="symphony-b")
    assert info.value.context["providers"] == ["symphony-a", "symphony-b"]
    assert "symphony-a" in info.value.message and "symphony-b" in info.value.message


def test_current_plugin_is_the_default_provider() -> None:
    reg = NodeTypeRegistry()
    reg.current_plugin = "symphony-kernel-set"
    assert reg.add("a.b", kind="operator").provider == "symphony-kernel-set"
    assert reg.add("a.c", kind="operator", provider="explicit").provider == "explicit"
    with reg.providing("scoped") as r:
        assert r.add("a.d", kind="control").provider == "scoped"
    assert reg.current_plugin == "symphony-kernel-set"
    assert [s.name for s in reg.specs()] == ["a.b", "a.c", "a.d"]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("", {"kind": "operator"}),
        ("has space", {"kind": "operator"}),
        ("ok", {"kind": "gadget"}),
        ("ok", {"kind": ["operator"]}),
        ("ok", {"kind": "operator", "inputs": ["text"]}),
        ("ok", {"kind": "operator", "inputs": {"bad-port": "text"}}),
        ("ok", {"kind": "operator", "outputs": {"p": ""}}),
        ("ok", {"kind": "operator", "summary": 3}),
    ],
)
def test_bad_registrations_are_validation_errors(name: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NodeTypeRegistry().add(name, **kwargs)  # type: ignore[arg-type]


def test_get_unknown_and_kinds() -> None:
    with pytest.raises(NotFoundError) as info:
        NodeTypeRegistry().get("ghost")
    assert info.value.context["type"] == "ghost"
    spec = NodeTypeRegistry().add("op.enum", kind=NodeKind.OPERATOR)
    assert spec.kind == "operator" and type(spec.kind) is str
