"""The node execution contract of the SDK: Operator, Instrument, NodeContext, ResourceEstimate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from symphony_sdk import Instrument, NodeContext, Operator, ResourceEstimate, ValidationError
from symphony_workflow import NodeTypeRegistry

CTX = NodeContext("run", "node", "type", {"k": 1})


class Upper(Operator):
    name = "text.upper"
    input_schema = {"type": "object", "required": ["text"]}  # noqa: RUF012

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"text": inputs["text"].upper()}


class AsyncUpper(Upper):
    async def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:  # type: ignore[override]
        return {"text": inputs["text"].upper()}


class Words(Instrument):
    resources = ResourceEstimate(memory_bytes=1024, cost=0.5)

    async def stream(self, inputs: Mapping[str, Any], context: NodeContext) -> AsyncIterator[Any]:
        for word in inputs["prompt"].split():
            yield word


def test_an_operator_is_a_pure_node_implementation() -> None:
    op = Upper()
    assert op.pure and op.executor == "async" and op.version == "1"
    assert op.execute({"text": "hi"}, CTX) == {"text": "HI"}
    with pytest.raises(ValidationError, match="invalid input"):
        op.execute({}, CTX)


@pytest.mark.anyio
async def test_an_async_operator_returns_an_awaitable_from_execute() -> None:
    op = AsyncUpper()
    assert await op.execute({"text": "hi"}, CTX) == {"text": "HI"}
    assert await op.arun({"text": "yo"}) == {"text": "YO"}
    with pytest.raises(TypeError, match="call arun"):
        op.run({"text": "hi"})


@pytest.mark.anyio
async def test_an_instrument_streams_chunks_to_its_context() -> None:
    seen: list[Any] = []

    async def on_chunk(chunk: Any) -> None:
        seen.append(chunk)

    words = Words()
    ctx = NodeContext("run", "node", "words", on_chunk=on_chunk)
    assert await words.execute({"prompt": "a b c"}, ctx) == {"chunks": ["a", "b", "c"]}
    assert seen == ["a", "b", "c"]
    assert words.estimate({}, {}) == ResourceEstimate(1024, 0.5)
    assert not words.pure


@pytest.mark.anyio
async def test_an_instrument_without_output_is_a_clear_plugin_error() -> None:
    from symphony_sdk import PluginError

    class Silent(Instrument):
        pass

    with pytest.raises(PluginError) as info:
        await Silent().execute({}, CTX)
    assert info.value.code == "sdk.instrument.no_output" and "Silent" in info.value.message


@pytest.mark.anyio
async def test_batches_run_one_by_one_by_default() -> None:
    assert await Upper().execute_batch([{"text": "a"}, {"text": "b"}], CTX) == [{"text": "A"}, {"text": "B"}]


@pytest.mark.parametrize("bad", [{"memory_bytes": -1}, {"memory_bytes": True}, {"cost": -0.1}, {"cost": "1"}])
def test_resource_estimates_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ResourceEstimate(**bad)


def test_the_registry_keeps_the_implementation_and_refuses_a_non_implementation() -> None:
    reg = NodeTypeRegistry()
    op = Upper()
    spec = reg.add("text.upper", kind="operator", inputs={"text": "text"}, outputs={"text": "text"}, implementation=op)
    assert reg.get("text.upper").implementation is op and spec.to_dict()["name"] == "text.upper"
    with pytest.raises(ValidationError, match="no execute"):
        reg.add("text.lower", kind="operator", implementation=object())
