"""Registries: message types with compiled schemas (O(1) lookup, conflicts, error paths),
codecs and transports."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import Any

import pytest

from symphony.bus._codecs import JsonCodec
from symphony.bus._message import Message
from symphony.bus._registries import CodecRegistry, MessageTypeRegistry, TransportRegistry
from symphony.commons.errors import ConflictError, NotFoundError, ValidationError

SCHEMA = {
    "type": "object",
    "required": ["model", "inputs"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "pattern": "^[a-z]+$"},
        "priority": {"type": "integer", "minimum": 0, "maximum": 9},
        "mode": {"enum": ["fast", "exact"]},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}},
            },
        },
    },
}


@pytest.fixture
def reg() -> MessageTypeRegistry:
    r = MessageTypeRegistry()
    r.add("pit.pool.allocate", 1, schema=SCHEMA, summary="Allocate a model instance")
    return r


def test_add_get_contains_versions(reg: MessageTypeRegistry) -> None:
    entry = reg.get("pit.pool.allocate")
    assert entry.summary == "Allocate a model instance" and entry.version == 1
    reg.add("pit.pool.allocate", 2, schema={"type": "object"})
    assert reg.versions("pit.pool.allocate") == [1, 2]
    assert reg.latest("pit.pool.allocate").version == 2
    assert ("pit.pool.allocate", 3) not in reg
    assert ("pit.pool.allocate", 2) in reg and "pit.pool.allocate" in reg
    assert [(e.type, e.version) for e in reg] == [("pit.pool.allocate", 1), ("pit.pool.allocate", 2)]
    assert len(reg) == 2


def test_duplicates_conflict(reg: MessageTypeRegistry) -> None:
    with pytest.raises(ConflictError) as info:
        reg.add("pit.pool.allocate", 1)
    assert info.value.code == "bus.message_type_conflict"
    assert info.value.context == {"type": "pit.pool.allocate", "version": 1}


def test_unknown_get_is_not_found(reg: MessageTypeRegistry) -> None:
    with pytest.raises(NotFoundError) as info:
        reg.get("pit.pool.allocate", 7)
    assert info.value.code == "bus.unknown_message_type"
    assert info.value.context["known_versions"] == [1]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("bad..type",), {}),
        (("a.b", 0), {}),
        (("a.b", "1"), {}),
        (("a.b",), {"schema": {"type": "no-such-type"}}),
        (("a.b",), {"schema": {"minimum": "zero"}}),
        (("a.b",), {"schema": ["not", "a", "mapping"]}),
        (("a.b",), {"response_schema": {"required": "x"}}),
    ],
)
def test_bad_registrations(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        MessageTypeRegistry().add(*args, **kwargs)
    assert info.value.code in ("bus.bad_message_type", "bus.bad_message_schema")


def test_valid_payload_passes(reg: MessageTypeRegistry) -> None:
    reg.validate(Message("pit.pool.allocate", {"model": "tiny", "inputs": [{"name": "a"}], "priority": 3}))


@pytest.mark.parametrize(
    ("payload", "path", "rule"),
    [
        ({"inputs": []}, "$", "required"),
        ({"model": "Tiny", "inputs": []}, "$.model", "pattern"),
        ({"model": "t", "inputs": [], "priority": 12}, "$.priority", "maximum"),
        ({"model": "t", "inputs": [], "priority": -1}, "$.priority", "minimum"),
        ({"model": "t", "inputs": [], "mode": "slow"}, "$.mode", "enum"),
        ({"model": "t", "inputs": [{"name": "a"}, {"name": ""}]}, "$.inputs[1].name", "minLength"),
        ({"model": "t", "inputs": [{"name": "a"}, {}]}, "$.inputs[1]", "required"),
        ({"model": "t", "inputs": "x"}, "$.inputs", "type"),
        ({"model": "t", "inputs": [], "extra": 1}, "$", "additionalProperties"),
        ([1, 2], "$", "type"),
    ],
)
def test_invalid_payload_names_path_and_rule(
    reg: MessageTypeRegistry, payload: Any, path: str, rule: str
) -> None:
    msg = Message("pit.pool.allocate", payload, kind="request")
    with pytest.raises(ValidationError) as info:
        reg.validate(msg)
    err = info.value
    assert err.code == "bus.invalid_payload"
    assert err.context["type"] == "pit.pool.allocate" and err.context["version"] == 1
    assert err.context["path"] == path
    assert err.context["rule"] == rule
    assert path in err.message


def test_response_schema_applies_to_responses_only() -> None:
    reg = MessageTypeRegistry()
    reg.add("a.b", schema={"type": "object"}, response_schema={"type": "integer"})
    req = Message.request("a.b", {})
    reg.validate(req)
    reg.validate(req.reply(3))
    with pytest.raises(ValidationError) as info:
        reg.validate(req.reply("three"))
    assert info.value.context["kind"] == "response"
    # error payloads are never checked against the type's schemas
    reg.validate(req.fail(NotFoundError("x")))


def test_unknown_type_policy() -> None:
    reg = MessageTypeRegistry()
    reg.validate(Message("never.registered", 1))
    reg.unknown = "strict"
    with pytest.raises(NotFoundError) as info:
        reg.validate(Message("never.registered", 1))
    assert info.value.code == "bus.unknown_message_type"
    with pytest.raises(ValidationError):
        reg.unknown = "sometimes"  # type: ignore[assignment]
    assert MessageTypeRegistry(unknown="strict").unknown == "strict"


def _count_calls(fn: Callable[[], Any]) -> tuple[int, set[str]]:
    """Python-level function calls made while running ``fn`` (a deterministic work measure)."""
    calls = 0
    names: set[str] = set()

    def profiler(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
            names.add(frame.f_code.co_name)

    # No garbage collection meanwhile: finalizers of objects left by earlier tests (sockets,
    # event-loop transports) would be counted as if ``fn`` had called them.
    gc.collect()
    gc.disable()
    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
        gc.enable()
    return calls, names


def test_lookup_work_does_not_grow_with_the_registry() -> None:
    small = MessageTypeRegistry()
    big = MessageTypeRegistry()
    for reg, size in ((small, 10), (big, 10_000)):
        for i in range(size):
            reg.add(f"t.n{i}", schema={"type": "object"} if i == 5 else None)
    msg = Message("t.n5", {})
    small_get, _ = _count_calls(lambda: small.get("t.n5"))
    big_get, _ = _count_calls(lambda: big.get("t.n5"))
    assert small_get == big_get
    small_val, _ = _count_calls(lambda: small.validate(msg))
    big_val, names = _count_calls(lambda: big.validate(msg))
    assert small_val == big_val
    # the schema was compiled at registration: validating never re-checks or re-builds it
    assert not names & {"check_schema", "validator_for", "_compile", "__init__"}


def test_codec_registry() -> None:
    reg = CodecRegistry()
    assert reg.names() == ["json", "msgpack"] and "json" in reg and len(reg) == 2

    class Upper(JsonCodec):
        name = "upper"  # type: ignore[misc]

    codec = Upper()
    reg.add(codec)
    reg.add(codec)  # the same object again is fine
    assert reg.get("upper") is codec
    with pytest.raises(ConflictError):
        reg.add(JsonCodec())
    with pytest.raises(ValidationError):
        reg.add(object())  # type: ignore[arg-type]
    with pytest.raises(NotFoundError) as info:
        reg.get("cbor")
    assert info.value.context["known"] == ["json", "msgpack", "upper"]
    assert CodecRegistry(builtins=False).names() == []


def test_transport_registry() -> None:
    reg = TransportRegistry()

    def factory(**options: Any) -> object:
        return object()

    reg.add("unix", factory)
    reg.add("unix", factory)
    assert reg.get("unix") is factory and reg.names() == ["unix"] and "unix" in reg
    with pytest.raises(ConflictError) as conflict:
        reg.add("unix", lambda: None)
    assert conflict.value.code == "bus.transport_conflict"
    with pytest.raises(ValidationError):
        reg.add("Bad Scheme", factory)
    with pytest.raises(NotFoundError) as info:
        reg.get("pipe")
    assert info.value.code == "bus.unknown_transport"
    assert info.value.context["known"] == ["unix"]
    assert len(reg) == 1
