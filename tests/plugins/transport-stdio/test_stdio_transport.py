"""The stdio transport: JSON-RPC 2.0 over NDJSON against real child processes, and the decoder."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.bus._message import Message
from symphony.bus._registries import TransportRegistry
from symphony.bus._transport import open_transport
from symphony.commons.errors import (
    ConfigError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    SymphonyError,
    TransportError,
    ValidationError,
)
from symphony_bus_remote import BusClient
from symphony_transport_stdio import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SERVER_ERROR,
    JsonRpcCodec,
    JsonRpcError,
    LineSplitter,
    StdioTransport,
    error_from_jsonrpc,
    parse_stdio_url,
)
from symphony_transport_stdio import plugin as stdio_plugin

HERE = Path(__file__).parent
CHILD = HERE / "stdio_child.py"
RAW_CHILD = HERE / "raw_jsonrpc_child.py"


def _url(script: Path) -> str:
    return "stdio:?" + urllib.parse.urlencode([("cmd", sys.executable), ("arg", str(script))])


# -- URL and codec -----------------------------------------------------------------------------------


def test_url_parsing_and_registration() -> None:
    spec = parse_stdio_url("stdio:?cmd=python&arg=-m&arg=my.mod&arg=two%20words&cwd=/tmp&env=A=1&env=B=x=y")
    assert spec == {
        "command": ["python", "-m", "my.mod", "two words"],
        "cwd": "/tmp",
        "env": {"A": "1", "B": "x=y"},
    }
    assert parse_stdio_url("stdio:")["command"] == []
    for bad in (
        "stdio:?arg=x",
        "stdio:?cmd=a&cmd=b",
        "stdio:?foo=1",
        "stdio:?cmd=",
        "stdio:/bin/sh",
        "stdio:?env=X",
        "tcp://x:1",
    ):
        with pytest.raises(ConfigError):
            parse_stdio_url(bad)
    registry = TransportRegistry()
    stdio_plugin.symphony_register_transports(registry)
    assert isinstance(open_transport("stdio:?cmd=x", registry), StdioTransport)


def test_encoding_messages_as_jsonrpc() -> None:
    codec = JsonRpcCodec()
    req = Message.request("math.add", {"a": 1}, headers={"trace": "t"}, version=2)
    assert json.loads(codec.encode(req)) == {
        "jsonrpc": "2.0",
        "id": req.id,
        "method": "math.add",
        "params": {"a": 1},
        "symphony": {"v": 2, "h": {"trace": "t"}},
    }
    assert json.loads(codec.encode(Message("note.x", 5))) == {
        "jsonrpc": "2.0",
        "method": "note.x",
        "params": [5],
    }
    assert json.loads(codec.encode(Message("note.x"))) == {"jsonrpc": "2.0", "method": "note.x"}
    # A numeric incoming id is echoed as a number.
    (incoming,) = codec.decode_line(b'{"jsonrpc":"2.0","id":7,"method":"math.add","params":[1,2]}')
    assert isinstance(incoming, Message) and incoming.id == "7" and incoming.payload == [1, 2]
    assert json.loads(codec.encode(incoming.reply(3))) == {"jsonrpc": "2.0", "id": 7, "result": 3}
    err = incoming.fail(PermissionDeniedError("no", code="demo.denied", context={"k": 1}))
    answer = json.loads(codec.encode(err))
    assert answer["error"]["code"] == SERVER_ERROR and answer["error"]["data"]["code"] == "demo.denied"
    with pytest.raises(SymphonyError):
        codec.encode(Message("note.x", b"bytes are not JSON"))


def test_decoding_responses_restores_type_and_errors() -> None:
    codec = JsonRpcCodec()
    req = Message.request("math.add", {"a": 1})
    codec.encode(req)
    (resp,) = codec.decode_line(json.dumps({"jsonrpc": "2.0", "id": req.id, "result": 2}).encode())
    assert isinstance(resp, Message) and resp.kind == "response" and resp.type == "math.add"
    assert resp.correlation_id == req.id
    wire = ValidationError("bad", code="demo.bad", context={"x": 1}, hint="h").to_wire()
    (fail,) = codec.decode_line(
        json.dumps(
            {"jsonrpc": "2.0", "id": "z", "error": {"code": -32602, "message": "bad", "data": wire}}
        ).encode()
    )
    assert isinstance(fail, Message) and fail.kind == "error"
    with pytest.raises(ValidationError) as info:
        fail.raise_if_error()
    assert (info.value.code, info.value.context, info.value.hint) == ("demo.bad", {"x": 1}, "h")


@pytest.mark.parametrize(
    ("code", "cls", "symphony_code"),
    [
        (PARSE_ERROR, SymphonyError, "jsonrpc.parse_error"),
        (INVALID_REQUEST, ValidationError, "jsonrpc.invalid_request"),
        (METHOD_NOT_FOUND, NotFoundError, "jsonrpc.method_not_found"),
        (INVALID_PARAMS, ValidationError, "jsonrpc.invalid_params"),
        (INTERNAL_ERROR, InternalError, "jsonrpc.internal_error"),
        (-32050, InternalError, "jsonrpc.server_error"),
    ],
)
def test_plain_jsonrpc_errors_map_to_symphony_errors(code: int, cls: type, symphony_code: str) -> None:
    err = error_from_jsonrpc({"code": code, "message": "m", "data": "extra"})
    assert isinstance(err, cls) and err.code == symphony_code
    assert err.context == {"jsonrpc_code": code, "data": "extra"}


def test_invalid_input_yields_the_standard_codes() -> None:
    codec = JsonRpcCodec()

    def first(line: bytes) -> JsonRpcError:
        (item,) = codec.decode_line(line)
        assert isinstance(item, JsonRpcError)
        return item

    assert first(b"{not json").rpc_code == PARSE_ERROR
    assert first(b"[]").rpc_code == INVALID_REQUEST
    assert first(b'{"jsonrpc":"1.0","id":1,"method":"a"}').rpc_id == 1
    assert first(b'{"jsonrpc":"2.0","id":1,"method":"a/b"}').rpc_code == METHOD_NOT_FOUND
    assert first(b'{"jsonrpc":"2.0","id":1,"method":"a","params":3}').rpc_code == INVALID_REQUEST
    assert first(b'{"jsonrpc":"2.0","id":1,"result":1,"error":{}}').rpc_code == INVALID_REQUEST
    assert first(b'{"jsonrpc":"2.0","id":[1],"method":"a"}').rpc_code == INVALID_REQUEST
    batch = codec.decode_line(b'[{"jsonrpc":"2.0","method":"a.b"}, 5, {"jsonrpc":"2.0","id":2,"method":"c"}]')
    assert [type(x).__name__ for x in batch] == ["Message", "JsonRpcError", "Message"]


def test_line_splitter_handles_partial_crlf_and_overlong_lines() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b'{"a":1}\r\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n\n   \n") == [b'{"b":2}']
    out = splitter.feed(b"x" * 25)
    assert len(out) == 1 and isinstance(out[0], JsonRpcError) and out[0].code == "jsonrpc.line_too_long"
    assert splitter.feed(b"yyy\nok\n") == [b"ok"]  # resynchronised at the next newline
    splitter.feed(b"partial")
    problem = splitter.check_eof()
    assert problem is not None and problem.code == "jsonrpc.truncated_line"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_rpc_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.one_of(
            st.integers(), st.text(max_size=8), st.none(), st.booleans(), st.lists(st.integers())
        ),
        "method": st.one_of(
            st.sampled_from(["math.add", "a/b", "", "rpc.x"]), st.text(max_size=12), st.integers()
        ),
        "params": _json,
        "result": _json,
        "error": st.one_of(
            _json,
            st.fixed_dictionaries(
                {"code": st.integers(), "message": st.text(max_size=5)}, optional={"data": _json}
            ),
        ),
        "symphony": _json,
    },
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(_rpc_like, st.lists(_rpc_like, max_size=4), _json))
def test_fuzz_structured_input_never_raises(value: Any) -> None:
    codec = JsonRpcCodec()
    line = json.dumps(value).encode()
    for item in codec.decode_line(line):
        assert isinstance(item, (Message, JsonRpcError))
        if isinstance(item, Message):
            codec.encode(item if item.kind != "request" else item.reply(None))


@settings(max_examples=1000, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=8))
def test_fuzz_arbitrary_bytes_only_yield_symphony_errors(chunks: list[bytes]) -> None:
    codec = JsonRpcCodec()
    splitter = LineSplitter(max_line=64)
    for chunk in chunks:
        for line in splitter.feed(chunk):
            if isinstance(line, JsonRpcError):
                continue
            for item in codec.decode_line(line):
                assert isinstance(item, (Message, JsonRpcError))
                if isinstance(item, JsonRpcError):
                    assert isinstance(item, SymphonyError) and item.rpc_code in {
                        PARSE_ERROR,
                        INVALID_REQUEST,
                        METHOD_NOT_FOUND,
                    }
    problem = splitter.check_eof()
    assert problem is None or isinstance(problem, JsonRpcError)


# -- against a real child process -----------------------------------------------------------------


@pytest.mark.anyio
async def test_requests_errors_and_notifications_with_a_python_child() -> None:
    async with BusClient.connect(_url(CHILD), reconnect=False) as client:
        assert not client.native
        assert (await client.request("math.add", {"a": 2, "b": 40}, timeout=20)).payload == 42

        with pytest.raises(ValidationError) as info:
            await client.request("demo.fail", timeout=10)
        assert (info.value.code, info.value.context, info.value.hint) == (
            "demo.widget_too_large",
            {"size": 12},
            "smaller",
        )
        with pytest.raises(PermissionDeniedError) as denied:
            await client.request("demo.deny", timeout=10)
        assert denied.value.context == {"who": "child"}
        with pytest.raises(InternalError) as crashed:
            await client.request("demo.crash", timeout=10)
        assert crashed.value.code == "bus.handler_crashed"
        with pytest.raises(NotFoundError) as missing:
            await client.request("demo.nothing", timeout=10)
        assert missing.value.code == "bus.no_route"

        assert (await client.request("demo.shout", timeout=10)).payload == "still fine"

        await client.send("note.a", {"n": 1})
        await client.send_many([("note.b", {"n": 2}), ("note.c", {"n": 3})])
        with anyio.fail_after(10):
            while (await client.request("notes.list", timeout=10)).payload != [{"n": 1}, {"n": 2}, {"n": 3}]:
                await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_the_child_can_call_and_notify_the_parent() -> None:
    async with BusClient.connect(_url(CHILD), reconnect=False) as client:
        await client.handle("parent.greet", lambda msg: {"hello": msg.payload["name"]})
        reply = await client.request("demo.ask_parent", {"name": "child"}, timeout=20)
        assert reply.payload == {"hello": "child"}
        async with client.subscribe("child.*") as ticks:
            assert (await client.request("demo.notify_parent", [3], timeout=10)).payload == 3
            assert [(await ticks.receive(timeout=10)).payload["i"] for _ in range(3)] == [0, 1, 2]


@pytest.mark.anyio
async def test_child_death_mid_request_fails_promptly_and_close_reaps_it() -> None:
    conn = await StdioTransport().connect(_url(CHILD))
    process = conn.process  # type: ignore[attr-defined]
    async with BusClient.connect(_url(CHILD), reconnect=False) as client:
        errors: list[SymphonyError] = []

        async def waiting() -> None:
            try:
                await client.request("demo.slow", [60], timeout=120)
            except SymphonyError as exc:
                errors.append(exc)

        with anyio.fail_after(30):  # safety net only: the error must come from the child's exit
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiting)
                await anyio.sleep(0.2)
                with pytest.raises(TransportError) as died:
                    await client.request("demo.die", timeout=60)
        assert died.value.code == "transport.peer_lost"
        assert errors and errors[0].code == "transport.peer_lost"
        assert "exited with code 3" in errors[0].message
    await conn.aclose()
    assert process is not None and process.returncode is not None


@pytest.mark.anyio
async def test_writing_to_a_dead_child_is_a_transport_error() -> None:
    conn = await StdioTransport().connect(_url(CHILD))
    await conn.send(Message.request("demo.die"))
    with anyio.fail_after(30):
        with pytest.raises(TransportError) as ended:
            await conn.receive()
        assert ended.value.code == "transport.child_exited" and ended.value.context["returncode"] == 3
        with pytest.raises(TransportError):
            for _ in range(50):
                await conn.send(Message("note.x", "x" * 10000))
    await conn.aclose()


@pytest.mark.anyio
async def test_interoperates_with_a_plain_jsonrpc_server(log_events: Any) -> None:
    async with BusClient.connect(_url(RAW_CHILD), reconnect=False) as client:
        assert (await client.request("sum", [1, 2, 3], timeout=20)).payload == 6
        assert (await client.request("sum", {"a": 4, "b": 5}, timeout=10)).payload == 9
        with pytest.raises(NotFoundError) as info:
            await client.request("other.method", timeout=10)
        assert info.value.code == "jsonrpc.method_not_found"
    assert log_events.named("transport.stdio.bad_input"), "the non-JSON banner line was logged and skipped"


@pytest.mark.anyio
async def test_the_serving_side_answers_bad_input_with_standard_errors() -> None:
    """Drive the child with raw lines, as any JSON-RPC client could."""
    process = await anyio.open_process([sys.executable, str(CHILD)])
    assert process.stdin is not None and process.stdout is not None
    from anyio.streams.buffered import BufferedByteReceiveStream

    reader = BufferedByteReceiveStream(process.stdout)

    async def ask(line: bytes) -> Any:
        await process.stdin.send(line + b"\n")  # type: ignore[union-attr]
        return json.loads(await reader.receive_until(b"\n", 1 << 20))

    try:
        with anyio.fail_after(30):
            assert (await ask(b"{oops"))["error"]["code"] == PARSE_ERROR
            bad = await ask(b'{"jsonrpc":"1.0","id":5,"method":"math.add"}')
            assert bad["id"] == 5 and bad["error"]["code"] == INVALID_REQUEST
            assert (await ask(b'{"jsonrpc":"2.0","id":6,"method":"no.such"}'))["error"][
                "code"
            ] == METHOD_NOT_FOUND
            invalid = await ask(b'{"jsonrpc":"2.0","id":7,"method":"demo.fail"}')
            assert invalid["error"]["code"] == INVALID_PARAMS
            assert invalid["error"]["data"]["code"] == "demo.widget_too_large"
            assert (await ask(b'{"jsonrpc":"2.0","id":8,"method":"demo.crash"}'))["error"][
                "code"
            ] == INTERNAL_ERROR
            denied = await ask(b'{"jsonrpc":"2.0","id":"s","method":"demo.deny"}')
            assert denied["id"] == "s" and denied["error"]["code"] == SERVER_ERROR
            assert denied["error"]["data"]["category"] == "permission"
            # An answer that cannot be encoded becomes an error answer with the same id, a
            # number still (issue #10.9).
            unencodable = await ask(b'{"jsonrpc":"2.0","id":42,"method":"demo.bytes"}')
            assert unencodable["id"] == 42 and unencodable["error"]["data"]["code"] == "bus.encode_failed"
            ok = await ask(b'{"jsonrpc":"2.0","id":9,"method":"math.add","params":{"a":1,"b":2}}')
            assert ok == {"jsonrpc": "2.0", "id": 9, "result": 3}
            # A notification gets no answer; the next request is answered normally.
            await process.stdin.send(b'{"jsonrpc":"2.0","method":"note.z","params":{"n":9}}\n')
            assert (await ask(b'{"jsonrpc":"2.0","id":10,"method":"notes.list"}'))["result"] == [{"n": 9}]
            await process.stdin.aclose()
            assert await process.wait() == 0  # stdin closed: the child exits cleanly
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


@pytest.mark.anyio
async def test_bad_commands_are_clear_errors() -> None:
    with pytest.raises(TransportError) as info:
        await StdioTransport().connect("stdio:?cmd=/nonexistent/program-xyz")
    assert info.value.code == "transport.connect_failed"
    with pytest.raises(ConfigError):
        await StdioTransport().connect("stdio:")
    with pytest.raises(ConfigError):
        await StdioTransport().serve("stdio:?cmd=python", lambda conn: anyio.sleep(0))
