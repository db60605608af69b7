"""The loader's fast path accepts exactly what the full structural check accepts.

The fast path (one pass: check and build each node and edge) never words an error: when it
is unsure it hands the document to the slow path, which reports every problem. These
properties hold it to the slow path and to the published JSON Schema on random mutations of
valid documents, policies included.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.commons.errors import ValidationError
from symphony_workflow import Workflow, dumps, loads
from symphony_workflow._serialization import (
    DEFAULT_MAX_NODES,
    SCHEMA_VERSION,
    _fast_parts,
    _slow_parts,
    json_schema,
    to_document,
)

from .test_wf_serialization import _paths
from .workflow_strategies import json_values, workflows

_ODD_VALUES = st.sampled_from(
    [
        "data",
        "branch",
        "zz",
        "list[text]",
        "a.o > 1",
        "and",
        "",
        -1,
        0,
        1,
        101,
        2**64,
        -(2**63) - 1,
        1.5,
        -0.0,
        1e300,
        True,
        False,
        None,
        [],
        [1, 2],
        [1.0, 2**70],
        {},
        {"x": 1},
        "exponential",
        "fibonacci",
        ["timeout", "timeout"],
        ["Bad Code"],
    ]
)
_POLICY_KEYS = st.sampled_from(
    [
        *("retries", "backoff", "retry_delay", "retry_max_delay", "retry_jitter", "retry_on", "timeout"),
        *("fallback", "fallback_value", "optional", "cache", "cache_salt", "colour"),
    ]
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid document with 0 to 3 mutations: a value replaced, a key dropped, a policy field set."""
    wf = draw(workflows(max_nodes=5))
    doc: dict[str, Any] = json.loads(dumps(wf))
    paths = _paths(doc)[1:]
    nodes = list(doc["workflow"]["nodes"])
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.integers(0, 2))
        if action == 2 and nodes:
            node = draw(st.sampled_from(nodes))
            policy = node.setdefault("policy", {}) if isinstance(node, dict) else None
            if isinstance(policy, dict):  # an earlier mutation may have replaced either
                policy[draw(_POLICY_KEYS)] = draw(_ODD_VALUES | json_values)
            continue
        target = draw(st.sampled_from(paths))
        parent: Any = doc
        try:
            for key in target[:-1]:
                parent = parent[key]
            if action == 1 and isinstance(parent, dict):
                parent.pop(target[-1], None)
            else:
                parent[target[-1]] = draw(_ODD_VALUES | json_values)
        except (KeyError, IndexError, TypeError):
            pass
    return doc


def _slow_ok(doc: dict[str, Any]) -> bool:
    try:
        _slow_parts(doc, DEFAULT_MAX_NODES)
    except ValidationError:
        return False
    return True


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_documents())
def test_fast_path_agrees_with_the_slow_path_and_the_schema(doc: dict[str, Any]) -> None:
    doc["schema_version"] = SCHEMA_VERSION  # other versions are migrated before either path runs
    snapshot = copy.deepcopy(doc)
    fast = _fast_parts(doc, DEFAULT_MAX_NODES)
    slow = _slow_ok(doc)
    schema_ok = not list(jsonschema.Draft202012Validator(json_schema()).iter_errors(doc))
    assert (fast is not None) == slow, "the fast path must accept exactly what the slow path accepts"
    if fast is not None:
        assert schema_ok, "an accepted document must pass the published JSON Schema"
        assert (list(fast[0]), list(fast[1])) == _slow_parts(doc, DEFAULT_MAX_NODES)
    assert doc == snapshot  # neither path changes its input


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflows())
def test_fast_path_loads_every_valid_document(wf: Workflow) -> None:
    doc = to_document(wf)
    assert _fast_parts(doc, DEFAULT_MAX_NODES) is not None
    assert loads(dumps(wf)) == wf


def test_errors_come_from_the_slow_path_with_their_codes() -> None:
    doc = {
        "schema_version": "1.1",
        "workflow": {
            "id": "ce9fbd44-e088-4a3c-9416-a67d09235e92",
            "name": "x",
            "nodes": [
                {"id": "a", "kind": "operator", "type": "t.x", "position": [1, True]},
                {"id": "b", "kind": "robot", "type": "t.x", "policy": {"timeout": -1}},
            ],
        },
    }
    assert _fast_parts(doc, DEFAULT_MAX_NODES) is None
    try:
        loads(json.dumps(doc))
    except ValidationError as err:
        found = {(i.code, i.path) for i in err.issues}  # type: ignore[attr-defined]
    else:  # pragma: no cover - the document is invalid
        raise AssertionError("loaded an invalid document")
    assert found == {
        ("workflow.document.invalid", "$.workflow.nodes[0].position"),
        ("workflow.unknown_node_kind", "$.workflow.nodes[1].kind"),
        ("workflow.invalid_policy", "$.workflow.nodes[1].policy.timeout"),
    }
