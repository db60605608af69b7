"""What a run reports: per-node status and the final result."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["NodeStatus", "RunResult"]


@attrs.frozen
class NodeStatus:
    """One node of a run: state, attempts, whether it came from the memo table or the checkpoint."""

    node_id: str
    state: str
    attempts: int = 0
    cached: bool = False
    restored: bool = False
    duration: float | None = None
    digests: Mapping[str, str] = attrs.field(factory=dict)
    error: str | None = None
    traceback: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        data = attrs.asdict(self)
        data["digests"] = dict(self.digests)
        return data


@attrs.frozen
class RunResult:
    """How a run ended: state, the values of its output nodes, counts, and node statuses on demand."""

    run_id: str
    state: str
    outputs: Mapping[str, Any]
    error: str | None = None
    executed: int = 0
    cached: int = 0
    restored: int = 0
    status_of: Callable[[], Mapping[str, NodeStatus]] = attrs.field(default=dict, repr=False, eq=False)

    @property
    def nodes(self) -> Mapping[str, NodeStatus]:
        """Every node's final status (built when asked)."""
        return self.status_of()

    @property
    def ok(self) -> bool:
        """True when the run completed."""
        return self.state == "completed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (output values as given; bytes are not JSON)."""
        return {
            "run_id": self.run_id,
            "state": self.state,
            "error": self.error,
            "outputs": dict(self.outputs),
            "executed": self.executed,
            "cached": self.cached,
            "restored": self.restored,
            "nodes": {k: v.to_dict() for k, v in self.nodes.items()},
        }
