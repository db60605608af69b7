"""Codecs: lossless round trips (1,000+ examples each) and decoders that only ever raise
SerializationError, whatever bytes or dicts they are fed."""

from __future__ import annotations

import json
import math

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.bus._codecs import BUILTIN_CODECS, Codec, JsonCodec, MsgpackCodec, get_codec
from symphony.bus._message import Message, message_from_wire, message_to_wire
from symphony.commons.errors import NotFoundError, SerializationError

from .bus_strategies import messages, same_message

ROUND_TRIP = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = JsonCodec()
MSGPACK = MsgpackCodec()


def test_builtins_follow_the_protocol() -> None:
    for name, codec in BUILTIN_CODECS.items():
        assert isinstance(codec, Codec)
        assert codec.name == name
        assert get_codec(name) is codec


def test_get_codec_unknown_lists_known() -> None:
    with pytest.raises(NotFoundError) as info:
        get_codec("bincode")
    assert info.value.code == "bus.unknown_codec"
    assert info.value.context["known"] == ["json", "msgpack"]


@ROUND_TRIP
@given(messages())
def test_json_and_wire_dict_round_trip(msg: Message) -> None:
    assert same_message(message_from_wire(message_to_wire(msg)), msg)
    data = JSON.encode(msg)
    assert isinstance(data, bytes)
    assert same_message(JSON.decode(data), msg)


@ROUND_TRIP
@given(messages(binary=True))
def test_msgpack_round_trip(msg: Message) -> None:
    data = MSGPACK.encode(msg)
    assert isinstance(data, bytes)
    assert same_message(MSGPACK.decode(data), msg)


def test_json_is_compact_utf8() -> None:
    data = JSON.encode(Message("a.b", {"k": "é"}, id="i", timestamp=1.0))
    assert data == b'{"id":"i","type":"a.b","kind":"event","v":1,"ts":1.0,"p":{"k":"\xc3\xa9"}}'


def test_msgpack_keeps_bytes_and_str_apart() -> None:
    msg = Message("a.b", {"s": "abc", "b": b"abc"})
    back = MSGPACK.decode(MSGPACK.encode(msg))
    assert type(back.payload["s"]) is str and type(back.payload["b"]) is bytes


@pytest.mark.parametrize(
    ("codec", "payload"),
    [
        (JSON, b"bytes"),
        (JSON, {1, 2}),
        (JSON, float("nan")),
        (JSON, {"x": float("inf")}),
        (JSON, object()),
        (MSGPACK, 2**64),
        (MSGPACK, -(2**63) - 1),
        (MSGPACK, {1, 2}),
        (MSGPACK, object()),
        (JSON, "\ud800"),
        (MSGPACK, "\ud800"),
    ],
)
def test_encode_failures_are_serialization_errors(codec: Codec, payload: object) -> None:
    with pytest.raises(SerializationError) as info:
        codec.encode(Message("a.b", payload))
    assert info.value.code == "bus.encode_failed"
    assert info.value.context["codec"] == codec.name
    # the codec still works afterwards (msgpack packer state is reset)
    ok = Message("a.b", 1)
    assert codec.decode(codec.encode(ok)) == ok


def test_msgpack_encode_of_nan_is_caught_on_decode() -> None:
    data = MSGPACK.encode(Message("a.b", {"x": math.nan}))
    with pytest.raises(SerializationError) as info:
        MSGPACK.decode(data)
    assert info.value.code == "bus.bad_envelope" and info.value.context["field"] == "p.x"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'{"id":"x","type":"a.b","ts":NaN}',
        b'{"id":"x","type":"a.b","ts":Infinity}',
        b"\xff\xfe{}",
        '{"id":"x","type":"a.b","ts":1}'.encode("utf-16"),
        b"[" * 100000,
        b'{"id":"x","type":"a.b","ts":1,"p":' + b"9" * 5000 + b"}",
    ],
)
def test_json_decode_garbage(data: bytes) -> None:
    with pytest.raises(SerializationError):
        JSON.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x91" * 100000,
        msgpack.packb({"id": "x", "type": "a.b", "ts": 1.0}) + b"\x00",  # trailing data
        msgpack.packb({1: 2}),
        msgpack.packb({"id": "x", "type": "a.b", "ts": 1.0, "p": msgpack.ExtType(5, b"x")}),
        msgpack.packb({"id": "x", "type": "a.b", "ts": 1.0, "p": {b"k": 1}}, use_bin_type=True),
        msgpack.packb({"id": b"x", "type": "a.b", "ts": 1.0}, use_bin_type=True),
        b"\xa3\xff\xfe\xfd",  # str with invalid utf-8
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4G items
    ],
)
def test_msgpack_decode_garbage(data: bytes) -> None:
    with pytest.raises(SerializationError):
        MSGPACK.decode(data)


def _decode_only_serialization_errors(codec: Codec, data: bytes) -> None:
    try:
        msg = codec.decode(data)
    except SerializationError as err:
        assert err.code in ("bus.decode_failed", "bus.bad_envelope")
        return
    assert isinstance(msg, Message)
    # anything accepted is a valid message that survives a round trip
    assert codec.decode(codec.encode(msg)) == msg


@FUZZ
@given(st.binary(max_size=512))
@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_decoders_fuzz_arbitrary_bytes(codec: Codec, data: bytes) -> None:
    _decode_only_serialization_errors(codec, data)


@FUZZ
@given(messages(binary=True), st.data())
@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_decoders_fuzz_mutated_valid_frames(codec: Codec, msg: Message, data: st.DataObject) -> None:
    try:
        raw = bytearray(codec.encode(msg))
    except SerializationError:
        return  # bytes payload under JSON
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[pos:]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    _decode_only_serialization_errors(codec, bytes(raw))


ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers() | st.binary(max_size=3), children, max_size=4)
    ),
    max_leaves=15,
)
KEYS = st.sampled_from(["id", "type", "kind", "v", "ts", "cid", "rto", "h", "p"]) | st.text(max_size=5)


@FUZZ
@given(st.dictionaries(KEYS, ANY_VALUE, max_size=10))
def test_from_wire_fuzz_arbitrary_dicts(obj: dict) -> None:
    try:
        msg = message_from_wire(obj)
    except SerializationError as err:
        assert err.code == "bus.bad_envelope"
        assert isinstance(err.context.get("field"), str)
        return
    assert isinstance(msg, Message)


@FUZZ
@given(
    messages(binary=True),
    st.sampled_from(["id", "type", "kind", "v", "ts", "cid", "rto", "h", "p"]),
    ANY_VALUE,
)
def test_from_wire_fuzz_one_bad_field(msg: Message, field: str, value: object) -> None:
    wire = message_to_wire(msg)
    wire[field] = value
    try:
        message_from_wire(wire)
    except SerializationError as err:
        assert err.code == "bus.bad_envelope"
        assert err.context["field"].split(".")[0].split("[")[0] == field


@FUZZ
@given(st.dictionaries(KEYS, ANY_VALUE, max_size=10))
def test_msgpack_decoder_fuzz_structured(obj: dict) -> None:
    try:
        data = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return
    _decode_only_serialization_errors(MSGPACK, data)


@FUZZ
@given(st.dictionaries(KEYS, ANY_VALUE.filter(lambda v: not isinstance(v, bytes)), max_size=10))
def test_json_decoder_fuzz_structured(obj: dict) -> None:
    try:
        data = json.dumps(obj, default=repr).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return
    _decode_only_serialization_errors(JSON, data)
