"""Symphony's stale manager: keeps what is needed in the artifact store and cleans up the rest.

    from symphony_artifact_store import ArtifactStore
    from symphony_stale_manager import StaleManager, StalePolicy

    with ArtifactStore("/tmp/store") as store:
        manager = StaleManager(store, StalePolicy(grace=3600, keep_last=5))
        plan = manager.plan()                          # what would move or go, and why:
        reasons = {a.digest: (a.action, a.rule) for a in plan.actions}
        manager.gc()                                   # trash, restore, move tiers, purge old trash

Retention rules in restic's style (keep the last N versions of each ref, keep within a
duration, keep tagged and pinned, keep roots other plugins report through the
``symphony_collect_artifact_roots`` hook, and everything those were made from), mark and
sweep with git's grace window, hot/warm/cold tiers, a trash, and triggers (on demand, on a
schedule, on disk pressure). The package is also a Symphony plugin: the service
``stale-manager`` and the commands ``symphony artifacts gc``, ``tier`` and ``trash list|empty``.
Names are imported lazily, so that activating the plugin (on startup) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symphony_stale_manager._manager import GcReport, RootsSource, StaleManager
    from symphony_stale_manager._plan import ACTIONS, Action, Plan, Snapshot, make_plan
    from symphony_stale_manager._policy import StalePolicy, parse_duration
    from symphony_stale_manager._schedule import GcScheduler

_LAZY: dict[str, str] = {
    "GcReport": "_manager",
    "RootsSource": "_manager",
    "StaleManager": "_manager",
    "ACTIONS": "_plan",
    "Action": "_plan",
    "Plan": "_plan",
    "Snapshot": "_plan",
    "make_plan": "_plan",
    "StalePolicy": "_policy",
    "parse_duration": "_policy",
    "GcScheduler": "_schedule",
}

__all__ = [
    "ACTIONS",
    "Action",
    "GcReport",
    "GcScheduler",
    "Plan",
    "RootsSource",
    "Snapshot",
    "StaleManager",
    "StalePolicy",
    "make_plan",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symphony_stale_manager' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"symphony_stale_manager.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
