"""Node execution policy: checked values, builder, validation, both serialized forms, migration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest

from symphony.commons.errors import ValidationError
from symphony_workflow import (
    Node,
    NodePolicy,
    Workflow,
    WorkflowBuilder,
    WorkflowValidationError,
    dumps,
    load,
    loads,
    to_binary,
    validate,
)
from symphony_workflow._serialization import SCHEMA_VERSION, from_binary, to_document

EXAMPLES = Path(__file__).parents[3] / "examples" / "workflows"


def test_default_policy_means_no_special_handling() -> None:
    p = NodePolicy()
    assert (p.retries, p.timeout, p.fallback, p.fallback_value, p.optional, p.cache) == (
        0,
        None,
        None,
        None,
        False,
        True,
    )
    assert p.is_default and Node.operator("a", "x.y").policy == p


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 101}, "retries"),
        ({"retries": True}, "retries"),
        ({"retries": 1.0}, "retries"),
        ({"backoff": "fibonacci"}, "backoff"),
        ({"retry_delay": -0.5}, "retry_delay"),
        ({"retry_delay": float("nan")}, "retry_delay"),
        ({"retry_delay": "1s"}, "retry_delay"),
        ({"retry_delay": 10.0, "retry_max_delay": 5.0}, "retry_max_delay"),
        ({"retry_jitter": 1.5}, "retry_jitter"),
        ({"retry_on": "timeout"}, "retry_on"),
        ({"retry_on": ["Timeout"]}, "retry_on"),
        ({"retry_on": ["io", "io"]}, "retry_on"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 1e9}, "timeout"),
        ({"fallback": "not an id"}, "fallback"),
        ({"fallback": "and"}, "fallback"),
        ({"fallback_value": [1]}, "fallback_value"),
        ({"fallback": "b", "fallback_value": {"out": 1}}, "fallback_value"),
        ({"optional": 1}, "optional"),
        ({"cache": "yes"}, "cache"),
        ({"cache_salt": "x" * 300}, "cache_salt"),
    ],
)
def test_bad_values_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        NodePolicy(**fields)
    assert info.value.code == "workflow.invalid_policy"
    assert info.value.context["field"] == field
    assert field in info.value.message


def test_node_refuses_a_policy_that_is_not_a_node_policy() -> None:
    with pytest.raises(ValidationError) as info:
        Node.operator("a", "x.y", policy={"retries": 2})
    assert info.value.context["field"] == "policy"


def test_delay_follows_the_backoff_and_the_cap() -> None:
    exp = NodePolicy(retries=5, retry_delay=0.5, retry_max_delay=3.0)
    assert [exp.delay(n) for n in range(0, 6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]
    lin = attrs.evolve(exp, backoff="linear")
    assert [lin.delay(n) for n in (1, 2, 3, 9)] == [0.5, 1.0, 1.5, 3.0]
    assert attrs.evolve(exp, backoff="constant").delay(7) == 0.5
    assert exp.delay(10_000) == 3.0  # no overflow on huge attempt numbers


def test_retry_on_selects_by_category_code_or_code_prefix() -> None:
    p = NodePolicy(retries=2, retry_on=("timeout", "llm", "io.read"))
    assert p.selects("anything", "timeout")
    assert p.selects("llm.rate_limited") and p.selects("llm")
    assert p.selects("io.read") and not p.selects("io.write") and not p.selects("llmx.y")
    assert NodePolicy(retries=1).selects("whatever", "validation")  # empty: every error


def _pipeline() -> WorkflowBuilder:
    return (
        WorkflowBuilder("policy demo")
        .input("doc", "text")
        .instrument("summary", "llm.generate", inputs={"prompt": "text"}, outputs={"text": "text"})
        .connect("doc.value", "summary.prompt")
        .retry(3, backoff="linear", delay=0.5, max_delay=5, jitter=0.2, on=["timeout", "llm.rate_limited"])
        .timeout(30)
        .fallback("cheap")
        .cache(salt="v2")
        .instrument("cheap", "llm.small", inputs={"prompt": "text"}, outputs={"text": "text"})
        .connect("doc.value", "cheap.prompt")
        .optional()
        .output("result", "text")
        .connect_from("summary.text")
    )


def test_builder_sets_the_current_node_policy() -> None:
    wf = _pipeline().build(node_types={"llm.generate", "llm.small"})
    p = wf.node("summary").policy
    assert p == NodePolicy(
        retries=3,
        backoff="linear",
        retry_delay=0.5,
        retry_max_delay=5,
        retry_jitter=0.2,
        retry_on=("timeout", "llm.rate_limited"),
        timeout=30,
        fallback="cheap",
        cache=True,
        cache_salt="v2",
    )
    assert wf.node("cheap").policy == NodePolicy(optional=True)
    wf2 = WorkflowBuilder("v").input("a", "text").fallback(value={"value": "n/a"}).policy(cache=False).build()
    assert wf2.node("a").policy == NodePolicy(fallback_value={"value": "n/a"}, cache=False)


def _codes(wf: Workflow) -> set[str]:
    return {i.code for i in validate(wf, node_types={"llm.generate", "llm.small"}).errors}


def test_validation_checks_fallback_targets() -> None:
    wf = _pipeline().build(node_types={"llm.generate", "llm.small"})
    ok = wf.node("summary")
    wf.replace_node(attrs.evolve(ok, policy=attrs.evolve(ok.policy, fallback="ghost")))
    report = validate(wf, node_types={"llm.generate", "llm.small"})
    [issue] = [i for i in report.errors if i.code == "workflow.policy.unknown_fallback"]
    assert issue.node == "summary" and issue.path == "$.workflow.nodes[1].policy.fallback"
    assert "'ghost'" in issue.message

    wf.replace_node(attrs.evolve(ok, policy=attrs.evolve(ok.policy, fallback="summary")))
    assert "workflow.policy.unknown_fallback" in _codes(wf)

    cheap = wf.node("cheap")
    wf.replace_node(ok)
    wf.replace_node(attrs.evolve(cheap, outputs=(attrs.evolve(cheap.outputs[0], type="number"),)))
    report = validate(wf, node_types={"llm.generate", "llm.small"})
    [issue] = [i for i in report.errors if i.code == "workflow.policy.fallback_outputs"]
    assert issue.port == "text" and issue.details["expected"] == "text" and issue.details["found"] == "number"


def test_validation_finds_fallback_loops_and_bad_fallback_values() -> None:
    wf = _pipeline().build(node_types={"llm.generate", "llm.small"})
    cheap = wf.node("cheap")
    wf.replace_node(attrs.evolve(cheap, policy=NodePolicy(fallback="summary")))
    report = validate(wf, node_types={"llm.generate", "llm.small"})
    [issue] = [i for i in report.errors if i.code == "workflow.policy.fallback_cycle"]
    assert issue.details["cycle"] in (["summary", "cheap", "summary"], ["cheap", "summary", "cheap"])

    wf.replace_node(attrs.evolve(cheap, policy=NodePolicy(fallback_value={"text": "", "nope": 1})))
    report = validate(wf, node_types={"llm.generate", "llm.small"})
    [issue] = [i for i in report.errors if i.code == "workflow.policy.fallback_value"]
    assert issue.port == "nope"


def test_both_forms_carry_the_policy_and_leave_defaults_out() -> None:
    wf = _pipeline().build(node_types={"llm.generate", "llm.small"})
    doc = to_document(wf)
    nodes = {n["id"]: n for n in doc["workflow"]["nodes"]}
    assert "policy" not in nodes["doc"]
    assert nodes["cheap"]["policy"] == {"optional": True}
    assert nodes["summary"]["policy"]["retry_on"] == ["timeout", "llm.rate_limited"]
    assert loads(dumps(wf)) == wf
    assert from_binary(to_binary(wf)) == wf
    assert from_binary(to_binary(wf, compress="zstd")) == wf


def test_bad_policy_in_a_document_is_located() -> None:
    wf = _pipeline().build(node_types={"llm.generate", "llm.small"})
    doc = to_document(wf)
    doc["workflow"]["nodes"][1]["policy"]["retries"] = "three"
    doc["workflow"]["nodes"][2]["policy"]["colour"] = "red"
    with pytest.raises(WorkflowValidationError) as info:
        loads(json.dumps(doc))
    found = {(i.code, i.path) for i in info.value.issues}
    assert ("workflow.invalid_policy", "$.workflow.nodes[1].policy.retries") in found
    assert ("workflow.document.invalid", "$.workflow.nodes[2].policy.colour") in found


def test_schema_1_0_documents_migrate_to_the_default_policy() -> None:
    wf = _pipeline().build(node_types={"llm.generate", "llm.small"})
    doc = to_document(wf)
    for node in doc["workflow"]["nodes"]:
        node.pop("policy", None)
    doc["schema_version"] = "1.0"
    back = loads(json.dumps(doc))
    assert all(n.policy == NodePolicy() for n in back)
    assert to_document(back)["schema_version"] == SCHEMA_VERSION == "1.1"
    legacy = load(EXAMPLES / "legacy-0.9.json")  # 0.9 -> 1.0 -> 1.1
    assert all(n.policy.is_default for n in legacy)


def test_schema_1_0_documents_cannot_carry_a_policy() -> None:
    doc = to_document(_pipeline().build(node_types={"llm.generate", "llm.small"}))
    doc["schema_version"] = "1.0"
    with pytest.raises(ValidationError) as info:
        loads(json.dumps(doc))
    assert info.value.code == "workflow.migration_failed"
    assert "schema 1.0 does not know" in info.value.message


def test_schema_1_0_binary_files_still_load() -> None:
    wf = WorkflowBuilder("old").input("a", "text").output("b", "text").connect_from("a.value").build()
    raw = to_binary(wf)
    top = msgpack.unpackb(raw[5:], raw=False)
    assert top[0] == "1.1"
    top[0] = "1.0"
    old = raw[:5] + msgpack.packb(top, use_bin_type=True)
    assert from_binary(old) == wf


def test_binary_rejects_a_bad_backoff_code() -> None:
    wf = WorkflowBuilder("b").input("a", "text").retry(2, backoff="linear").build()
    top = msgpack.unpackb(to_binary(wf)[5:], raw=False)
    top[3][7][0][13][1] = 9
    with pytest.raises(ValidationError) as info:
        from_binary(to_binary(wf)[:5] + msgpack.packb(top, use_bin_type=True))
    assert info.value.context["path"] == "$[3][7][0][13][1]"
