"""Bad input to the conductor's decoders raises a SymphonyError, never anything else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symphony import Kernel
from symphony.commons.errors import SymphonyError
from symphony_conductor import CONTROL_COMMANDS, RunRequest
from symphony_conductor._request import coerce_input, coerce_parameter, split_assignment
from symphony_workflow import TemplateLibrary

from .conftest import TEMPLATES

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
TEMPLATE = TemplateLibrary.from_paths([TEMPLATES]).get("document-stats")
PORT_TYPES = ["text", "bytes", "integer", "number", "bool", "json", "list[text]", "file", "any", "image"]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["workflow", "template", "params", "inputs", "run_id", "resume", "template_version", "other"]
        ),
        json_values,
        max_size=5,
    )
)
def test_run_request_from_any_payload(payload: dict[str, Any]) -> None:
    try:
        request = RunRequest.from_dict(payload)
    except SymphonyError:
        return
    assert (request.workflow is None) != (request.template is None) or request.resume is not None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["title", "top", "full_top", "unknown"]), st.text(max_size=40))
def test_parameter_text_of_any_shape(name: str, text: str) -> None:
    try:
        coerce_parameter(TEMPLATE, name, text)
    except SymphonyError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PORT_TYPES), st.text(max_size=40) | st.binary(max_size=40))
def test_input_text_of_any_shape(port: str, raw: str | bytes) -> None:
    try:
        coerce_input("node", port, raw)
    except SymphonyError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_assignments_of_any_shape(text: str) -> None:
    try:
        name, value = split_assignment(text, "input")
    except SymphonyError:
        assert "=" not in text or not text.partition("=")[0].strip()
        return
    assert name == text.partition("=")[0].strip() and value == text.partition("=")[2]


BAD_PAYLOADS: list[tuple[str, Any]] = [
    ("run.submit", None),
    ("run.submit", []),
    ("run.submit", {"workflow": 3}),
    ("run.submit", {"workflow": {"schema_version": "1.0"}}),
    ("run.submit", {"template": "t", "workflow": "x"}),
    ("run.submit", {"workflow": "/nonexistent/wf.json"}),
    ("run.submit", {"template": "document-stats", "param_text": {"top": 3}}),
    ("run.submit", {"template": "document-stats", "param_text": {"top": "lots"}}),
    ("run.submit", {"template": "document-stats", "param_text": {}, "params": [1]}),
    ("run.submit", {"param_text": {"top": "3"}}),
    ("run.submit", {"template": "no-such-template", "param_text": {"top": "3"}}),
    ("run.submit", {"resume": "no-such-run"}),
    ("run.status", {}),
    ("run.status", {"run_id": 3}),
    ("run.list", {"state": 4}),
    ("run.list", "x"),
    ("run.control", {"run_id": "r", "command": "pause", "extra": 1}),
    *[("run.control", {"run_id": "none", "command": c}) for c in CONTROL_COMMANDS],
]


@pytest.mark.anyio
@pytest.mark.parametrize(("type_", "payload"), BAD_PAYLOADS, ids=lambda v: str(v)[:30])
async def test_bad_bus_requests_answer_with_a_symphony_error(
    kernel: Kernel, type_: str, payload: Any
) -> None:
    with pytest.raises(SymphonyError) as info:
        await kernel.bus.request(type_, payload, timeout=10)
    assert info.value.code != "bus.handler_crashed", info.value


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["template", "template_version", "params", "param_text"]),
        json_values
        | st.just("document-stats")
        | st.dictionaries(st.sampled_from(["top", "title"]), json_values),
        max_size=4,
    )
)
def test_param_text_of_any_shape(payload: dict[str, Any]) -> None:
    from types import SimpleNamespace

    from symphony_conductor._bus import _typed_params

    holder = SimpleNamespace(workflows=SimpleNamespace(templates=TemplateLibrary.from_paths([TEMPLATES])))
    try:
        typed = _typed_params(holder, payload)
    except SymphonyError:
        return
    assert "param_text" not in typed
