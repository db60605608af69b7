"""How the tracker reads a node's execution policy and its scheduling hints.

The policy is the workflow model's :class:`symphony_workflow.NodePolicy` on ``Node.policy``;
this module only answers the runner-side questions about it (is one plain attempt all there
is, is this error retried, how long to wait). Two scheduling hints that are not policy live in
the node's ``metadata``, beside the model's ``metadata["cost"]``: ``priority`` (a number;
higher starts first among ready nodes) and ``executor`` (the name of a tracker executor that
overrides the implementation's own ``executor``).
"""

from __future__ import annotations

import random
from typing import Any

from symphony.commons.errors import SymphonyError, ValidationError
from symphony_workflow import Node, NodePolicy

__all__ = ["executor_of", "is_simple", "priority_of", "retried", "retry_wait"]

_DEFAULT = NodePolicy()


def is_simple(policy: NodePolicy) -> bool:
    """True when one plain attempt is all there is (no retry, timeout or fallback)."""
    return policy is _DEFAULT or (
        policy.retries == 0 and policy.timeout is None and policy.fallback is None and policy.fallback_value is None
    )


def retried(policy: NodePolicy, error: BaseException) -> bool:
    """True if ``policy.retry_on`` selects ``error`` (by its code and, for a SymphonyError, category)."""
    code = getattr(error, "code", None)
    category = error.category if isinstance(error, SymphonyError) else ""
    return policy.selects(code if isinstance(code, str) else "", category)


def retry_wait(policy: NodePolicy, retry: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (1-based): the capped delay, jittered down."""
    delay = policy.delay(retry)
    if policy.retry_jitter:
        delay *= 1.0 - policy.retry_jitter * (rng or random).random()
    return delay


def _bad_hint(node: Node, key: str, rule: str) -> ValidationError:
    return ValidationError(
        f"node {node.id!r}: metadata[{key!r}] {rule}",
        code="dag.node.invalid_hint",
        context={"node": node.id, "field": f"metadata.{key}", "value": repr(node.metadata.get(key))[:200]},
    )


def priority_of(node: Node) -> float:
    """The node's ``metadata["priority"]`` (0 without one); higher starts first."""
    meta = node.metadata
    if not meta or "priority" not in meta:
        return 0.0
    value: Any = meta["priority"]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise _bad_hint(node, "priority", "must be a number")
    return float(value)


def executor_of(node: Node, implementation: object, known: Any) -> str:
    """The executor name for ``node``: ``metadata["executor"]``, else the implementation's, else ``async``."""
    meta = node.metadata
    name = meta.get("executor") if meta else None
    if name is None:
        return str(getattr(implementation, "executor", "async"))
    if not isinstance(name, str) or name not in known:
        raise _bad_hint(node, "executor", f"must name an executor of the tracker ({', '.join(sorted(known))})")
    return name
