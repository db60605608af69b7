"""The envelope: construction checks, builders, the wire form and error crossing."""

from __future__ import annotations

import uuid

import attrs
import pytest

from symphony.bus._message import (
    ERROR,
    REQUEST,
    RESPONSE,
    Message,
    check_payload,
    is_valid_type,
    message_from_wire,
    message_to_wire,
    new_id,
)
from symphony.commons.errors import (
    ConfigError,
    NotFoundError,
    PreValidationError,
    SerializationError,
    SymphonyError,
    ValidationError,
)


def test_defaults_make_an_event_with_a_uuid4_id() -> None:
    msg = Message("workflow.node.started", {"node": "n1"})
    assert msg.kind == "event"
    assert msg.version == 1
    assert msg.headers == {}
    assert msg.correlation_id is None and msg.reply_to is None
    parsed = uuid.UUID(hex=msg.id)
    assert parsed.version == 4 and parsed.hex == msg.id
    assert msg.timestamp > 1_600_000_000


def test_new_ids_are_distinct() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000


def test_message_is_frozen_and_evolves() -> None:
    msg = Message("a.b", 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.type = "c"  # type: ignore[misc]
    changed = attrs.evolve(msg, payload=2)
    assert changed.payload == 2 and changed.id == msg.id and msg.payload == 1


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("type", {"type": "a..b"}),
        ("type", {"type": ""}),
        ("type", {"type": "a.b*"}),
        ("type", {"type": "a.#"}),
        ("type", {"type": "x" * 256}),
        ("kind", {"kind": "notify"}),
        ("version", {"version": 0}),
        ("version", {"version": True}),
        ("headers", {"headers": {"a": 1}}),
        ("headers", {"headers": [("a", "b")]}),
    ],
)
def test_construction_rejects_bad_fields(field: str, kwargs: dict) -> None:
    type_ = kwargs.pop("type", "a.b")
    with pytest.raises(ValidationError) as info:
        Message(type_, None, **kwargs)
    assert info.value.code == "bus.bad_message"
    assert info.value.context["field"] == field


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a", True),
        ("workflow.node.started", True),
        ("A-b_c.9", True),
        ("a.", False),
        (".a", False),
        ("a b", False),
        ("é", False),
        (3, False),
        (None, False),
    ],
)
def test_is_valid_type(value: object, ok: bool) -> None:
    assert is_valid_type(value) is ok


def test_request_reply_and_fail_builders() -> None:
    req = Message.request("pit.pool.allocate", {"model": "tiny"}, headers={"trace": "t1"})
    assert req.kind == REQUEST and req.headers == {"trace": "t1"}
    res = req.reply({"instance": "i-1"})
    assert (res.kind, res.type, res.correlation_id, res.payload) == (
        RESPONSE,
        req.type,
        req.id,
        {"instance": "i-1"},
    )
    assert res.raise_if_error() is res
    assert res.error() is None
    err = ConfigError("bad key", code="config.bad_key", context={"key": "x", "file": "a.toml"}, hint="fix it")
    failed = req.fail(err)
    assert failed.kind == ERROR and failed.is_error and failed.correlation_id == req.id
    assert failed.payload == err.to_wire()
    with pytest.raises(ConfigError) as info:
        failed.raise_if_error()
    assert (info.value.code, info.value.message, info.value.context, info.value.hint) == (
        "config.bad_key",
        "bad key",
        {"key": "x", "file": "a.toml"},
        "fix it",
    )
    assert Message.event("a.b", 1).kind == "event"


@pytest.mark.parametrize(
    "error",
    [
        NotFoundError("no such thing", code="x.missing", context={"name": "n"}),
        PreValidationError("too short", code="x.short", context={"min": 3}),
        ValidationError("nope", code="x.nope", stage="authoritative"),
        SymphonyError("generic", code="x.generic"),
    ],
)
def test_errors_keep_class_code_message_context(error: SymphonyError) -> None:
    failed = Message.request("a.b").fail(error)
    rebuilt = failed.error()
    assert type(rebuilt) is type(error)
    assert (rebuilt.code, rebuilt.message, rebuilt.context) == (error.code, error.message, error.context)


def test_raise_if_error_with_garbage_payload_still_raises_a_symphony_error() -> None:
    msg = Message("a.b", "not a wire error", kind=ERROR)
    with pytest.raises(SymphonyError):
        msg.raise_if_error()


def test_wire_form_keys_and_omissions() -> None:
    msg = Message("a.b", [1, 2])
    wire = message_to_wire(msg)
    assert set(wire) == {"id", "type", "kind", "v", "ts", "p"}
    full = Message("a.b", None, kind=RESPONSE, correlation_id="c", reply_to="r", headers={"k": "v"})
    wire = message_to_wire(full)
    assert set(wire) == {"id", "type", "kind", "v", "ts", "cid", "rto", "h", "p"}
    assert message_from_wire(wire) == full


def test_from_wire_accepts_missing_optional_fields_and_ignores_unknown_keys() -> None:
    msg = message_from_wire({"id": "x", "type": "a.b", "ts": 1, "future_field": [1]})
    assert msg.kind == "event" and msg.version == 1 and msg.payload is None and msg.headers == {}
    assert msg.timestamp == 1.0 and isinstance(msg.timestamp, float)
    msg = message_from_wire(
        {"id": "x", "type": "a.b", "ts": 1.5, "cid": None, "rto": None, "h": None, "p": None}
    )
    assert msg.correlation_id is None and msg.headers == {}


GOOD = {"id": "x", "type": "a.b", "kind": "event", "v": 1, "ts": 1.0, "p": None}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", 5),
        ("id", "x" * 300),
        ("id", None),
        ("type", "a..b"),
        ("type", ["a"]),
        ("type", None),
        ("kind", "nope"),
        ("kind", ["event"]),
        ("kind", {"a": 1}),
        ("v", 0),
        ("v", 1.0),
        ("v", True),
        ("v", 2**31),
        ("ts", "now"),
        ("ts", float("nan")),
        ("ts", float("inf")),
        ("ts", None),
        ("ts", 10**400),
        ("cid", 3),
        ("rto", ["x"]),
        ("h", {"a": 1}),
        ("h", [1]),
        ("h", {1: "a"}),
    ],
)
def test_from_wire_names_the_bad_field(field: str, value: object) -> None:
    wire = {**GOOD, field: value}
    with pytest.raises(SerializationError) as info:
        message_from_wire(wire)
    assert info.value.code == "bus.bad_envelope"
    assert info.value.context["field"] == field


def test_from_wire_rejects_non_mappings() -> None:
    for value in (None, [], "x", 3, b"x"):
        with pytest.raises(SerializationError) as info:
            message_from_wire(value)
        assert info.value.context["field"] == "<envelope>"


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (float("nan"), "p"),
        ({"a": [1, float("inf")]}, "p.a[1]"),
        ({"a": {1: "x"}}, "p.a"),
        ({"a": {b"k": "x"}}, "p.a"),
        ([1, {2, 3}], "p[1]"),
        ({"x": (1, 2)}, "p.x"),
        ({"deep": object()}, "p.deep"),
    ],
)
def test_payload_check_names_the_path(payload: object, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        check_payload(payload)
    assert info.value.code == "bus.bad_envelope"
    assert info.value.context["field"] == path


def test_payload_bytes_allowed_only_when_asked() -> None:
    check_payload({"b": b"\x00"})
    with pytest.raises(SerializationError):
        check_payload({"b": b"\x00"}, allow_bytes=False)


def test_payload_depth_is_bounded_without_recursion_errors() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(SerializationError) as info:
        check_payload(deep)
    assert "deeper" in info.value.message
    ok: object = 1
    for _ in range(150):
        ok = {"k": ok}
    check_payload(ok)
