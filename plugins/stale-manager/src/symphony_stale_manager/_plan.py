"""Planning: mark what a rule keeps, then decide for every other artifact (a pure function).

The planner sees a :class:`Snapshot` of the store (light rows, lineage, ref history, tags,
roots) and a policy, and returns a :class:`Plan`: every artifact that would move or go, with
the rule that decided it. Nothing here touches the store, so a plan is cheap, testable and
printable (``symphony artifacts gc --dry-run``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import attrs

from symphony.commons.gcpause import without_gc
from symphony_artifact_store import ScanRow
from symphony_stale_manager._policy import StalePolicy

__all__ = ["ACTIONS", "Action", "Plan", "Snapshot", "make_plan"]

ActionKind = Literal["trash", "purge", "restore", "warm", "cold"]
ACTIONS: tuple[str, ...] = ("trash", "purge", "restore", "warm", "cold")
"""What a plan can do to an artifact: ``trash`` it, ``purge`` it from the trash, ``restore`` it
from the trash (a rule keeps it again), or move it to the ``warm`` or ``cold`` tier."""


@attrs.frozen
class Snapshot:
    """What the planner reads from a store, all digests as canonical strings.

    ``rows``: every object (present and trashed); ``edges``: ``(child, parent)`` lineage pairs;
    ``ref_history``: each ref's digests, oldest version first; ``tagged``: digest -> a keep tag
    it carries; ``roots``: digest -> why a plugin needs it; ``cold_available``: whether the store
    has a cold tier.
    """

    rows: Sequence[ScanRow]
    edges: Sequence[tuple[str, str]] = ()
    ref_history: Mapping[str, Sequence[str]] = attrs.field(factory=dict)
    tagged: Mapping[str, str] = attrs.field(factory=dict)
    roots: Mapping[str, str] = attrs.field(factory=dict)
    cold_available: bool = False


class Action(NamedTuple):
    """One artifact that would move or go: what happens (one of :data:`ACTIONS`), and the rule that decided it.

    ``size`` is the bytes it takes in the store; ``tier`` the tier it is in now.
    """

    digest: str
    action: str
    rule: str
    size: int
    tier: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return self._asdict()


@attrs.frozen
class Plan:
    """The outcome of planning at time ``now``: the actions, and how many artifacts each rule kept.

    ``kept`` counts artifacts by the kind of rule that kept them first (``pinned``, ``root``,
    ``ref``, ``tag``, ``within``, ``lineage``, ``grace``).
    """

    now: float
    policy: StalePolicy
    actions: tuple[Action, ...]
    kept: Mapping[str, int]
    scanned: int

    def of(self, *kinds: str) -> list[Action]:
        """The actions of the given kinds (``trash``, ``purge``, ``restore``, ``warm``, ``cold``)."""
        return [a for a in self.actions if a.action in kinds]

    def counts(self) -> dict[str, int]:
        """How many actions of each kind."""
        counts = Counter(a.action for a in self.actions)
        return {kind: counts.get(kind, 0) for kind in ACTIONS}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "now": self.now,
            "scanned": self.scanned,
            "counts": self.counts(),
            "kept": dict(self.kept),
            "bytes": {k: sum(a.size for a in self.actions if a.action == k) for k in ACTIONS},
            "policy": self.policy.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
        }


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds:.0f}s"


def _keep_reasons(snapshot: Snapshot, policy: StalePolicy, now: float) -> dict[str, str]:
    """Digest -> the first rule that keeps it.

    Strong rules first (pins, roots, refs, keep tags) and what those were made from
    (``lineage``); then the rules of age (``within``, ``grace``) and what those were made from
    (``young-lineage``). Only strong reasons bring an artifact back from the trash.
    """
    keep: dict[str, str] = {}
    parents: defaultdict[str, list[str]] = defaultdict(list)
    if policy.keep_lineage:
        for child, parent in snapshot.edges:
            parents[child].append(parent)

    def close(start: list[str], label: str) -> None:
        frontier = [d for d in start if d in parents]
        while frontier:
            nxt: list[str] = []
            for child in frontier:
                for parent in parents[child]:
                    if parent not in keep:
                        keep[parent] = f"{label}: made {child[:24]}…"
                        if parent in parents:
                            nxt.append(parent)
            frontier = nxt

    for row in snapshot.rows:
        if row.pinned:
            keep[row.digest] = "pinned"
    for digest, why in snapshot.roots.items():  # absent ones too: what they were made from stays
        keep.setdefault(digest, f"root: {why}" if why else "root")
    for name, digests in snapshot.ref_history.items():
        count = len(digests)
        for version in range(max(0, count - policy.keep_last), count):
            keep.setdefault(digests[version], f"ref: {name} v{version + 1} (keep_last {policy.keep_last})")
    for digest, tag in snapshot.tagged.items():
        keep.setdefault(digest, f"tag: {tag}")
    if parents:
        close(list(keep), "lineage")
    young: list[str] = []
    since = now - policy.keep_within if policy.keep_within > 0 else math.inf
    grace_since = now - policy.grace
    for row in snapshot.rows:
        if row.digest in keep:
            continue
        if row.last_put >= since:
            keep[row.digest] = (
                f"within: put {_days(now - row.last_put)} ago (keep_within {_days(policy.keep_within)})"
            )
        elif row.last_put > grace_since:
            keep[row.digest] = f"grace: put {_days(now - row.last_put)} ago (grace {_days(policy.grace)})"
        else:
            continue
        young.append(row.digest)
    if parents and young:
        close(young, "young-lineage")
    return keep


def _tier_action(row: ScanRow, policy: StalePolicy, now: float, cold: bool) -> Action | None:
    if row.inline or row.state != "present":
        return None
    idle = now - max(row.last_put, row.accessed)
    if cold and policy.cold_after > 0 and row.tier != "cold" and idle >= policy.cold_after:
        return Action(
            row.digest,
            "cold",
            f"idle {_days(idle)} (cold_after {_days(policy.cold_after)})",
            row.stored_size,
            row.tier,
        )
    if policy.warm_after > 0 and row.tier == "hot" and idle >= policy.warm_after:
        return Action(
            row.digest,
            "warm",
            f"idle {_days(idle)} (warm_after {_days(policy.warm_after)})",
            row.stored_size,
            row.tier,
        )
    return None


_WEAK = ("grace", "within", "young-lineage")
"""Rules that spare an artifact from gc but do not bring back one trashed by hand."""


@without_gc  # hundreds of thousands of short-lived tuples and strings, none in a cycle
def make_plan(
    snapshot: Snapshot, policy: StalePolicy, now: float, *, tiers: bool = True, delete: bool = True
) -> Plan:
    """Decide, for every artifact in ``snapshot``, whether it stays, moves or goes, and why.

    A present artifact that no rule keeps is trashed; a trashed one that a rule keeps again is
    restored (unless only its age keeps it: a hand-trashed artifact stays trashed); a trashed
    one that no rule keeps, trashed longer ago than ``trash_retention`` (and ``grace``), is purged; a staying one idle long
    enough moves to the warm or cold tier (with ``tiers``). ``delete=False`` plans tiers only.
    """
    keep = _keep_reasons(snapshot, policy, now)
    kinds = Counter(keep[r.digest].split(":", 1)[0] for r in snapshot.rows if r.digest in keep)
    actions: list[Action] = []
    purge_before = now - policy.purge_after
    retention = f"trash_retention {_days(policy.trash_retention)}"
    get = keep.get
    for row in snapshot.rows:
        reason = get(row.digest)
        if row.state == "trashed":
            if reason is not None and not reason.startswith(_WEAK):
                actions.append(Action(row.digest, "restore", reason, row.stored_size, row.tier))
            elif reason is None and delete and row.trashed_at is not None and row.trashed_at <= purge_before:
                rule = f"trashed {(now - row.trashed_at) / 86400:.1f}d ago ({retention})"
                actions.append(Action(row.digest, "purge", rule, row.stored_size, row.tier))
            continue
        if reason is None:
            if delete:
                rule = f"no rule keeps it: put {(now - row.last_put) / 86400:.1f}d ago, no ref, root, pin, keep tag or kept child"
                actions.append(Action(row.digest, "trash", rule, row.stored_size, row.tier))
                continue
        if tiers and not row.inline:
            move = _tier_action(row, policy, now, snapshot.cold_available)
            if move is not None:
                actions.append(move)
    return Plan(now=now, policy=policy, actions=tuple(actions), kept=dict(kinds), scanned=len(snapshot.rows))
