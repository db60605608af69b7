"""The port type system."""

from __future__ import annotations

import pytest

from symphony.commons.errors import ValidationError
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        ("text", "text", True),
        ("any", "number", True),
        ("number", "any", True),
        ("integer", "number", True),
        ("number", "integer", False),
        ("text", "number", False),
        ("text", "json", True),
        ("bool", "json", True),
        ("bytes", "json", False),
        ("file", "text", False),
        ("list[integer]", "list[number]", True),
        ("list[number]", "list[integer]", False),
        ("list[text]", "json", True),
        ("list[bytes]", "json", False),
        ("list[any]", "list[text]", True),
        ("list[text]", "text", False),
        ("text", "list[text]", False),
        ("list[list[integer]]", "list[list[number]]", True),
        ("list[ text ]", "list[text]", True),
    ],
)
def test_assignability(source: str, target: str, ok: bool) -> None:
    assert DEFAULT_TYPES.is_assignable(source, target) is ok


@pytest.mark.parametrize(
    "bad", ["", "strng", "list[", "list[text", "list[]", "text]", "x" * 300, "list[list[nope]]"]
)
def test_malformed_types_are_validation_errors(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        DEFAULT_TYPES.normalize(bad)
    assert info.value.code in ("workflow.type.unknown", "workflow.type.invalid")
    assert not DEFAULT_TYPES.is_valid(bad)


def test_non_string_type_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_TYPES.normalize(["text"])  # type: ignore[arg-type]


def test_extended_types_widen_as_declared() -> None:
    types = DEFAULT_TYPES.extended({"image": ["bytes"], "png": ["image"]})
    assert types.is_assignable("png", "bytes")
    assert types.is_assignable("list[png]", "list[image]")
    assert not types.is_assignable("image", "png")
    assert not DEFAULT_TYPES.is_valid("image")
    assert "png" in types.scalars


def test_extension_must_widen_to_known_types() -> None:
    with pytest.raises(ValidationError) as info:
        TypeSystem({"a": ["missing"]})
    assert info.value.context["target"] == "missing"
    with pytest.raises(ValidationError):
        DEFAULT_TYPES.extended({"not valid": []})
