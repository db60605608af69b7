"""The stale manager: snapshot a store, plan, apply the plan, empty the trash, watch the disk."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from symphony.commons.errors import ConflictError, NotFoundError, SymphonyError, ValidationError
from symphony.commons.gcpause import gc_paused
from symphony.commons.log import get_logger
from symphony_artifact_store import ArtifactStore, Digest
from symphony_stale_manager._plan import Action, Plan, Snapshot, _days, make_plan
from symphony_stale_manager._policy import StalePolicy

__all__ = ["GcReport", "RootsSource", "StaleManager"]

log = get_logger("symphony.stale_manager")

RootsSource = Callable[[], Iterable[Any]]
"""Returns roots: digests (or digest strings), or mappings of digest -> why it is needed."""


@attrs.frozen
class GcReport:
    """What a gc run did: its plan, what each step changed, and what changed under it.

    ``skipped`` lists planned actions the store refused because the artifact changed since the
    plan (re-put, pinned, moved or gone), each with the reason.
    """

    trigger: str
    plan: Plan
    dry_run: bool
    trashed: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()
    purged: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the plan included)."""
        return {
            "trigger": self.trigger,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 4),
            "trashed": list(self.trashed),
            "restored": list(self.restored),
            "moved": [{"digest": d, "tier": t} for d, t in self.moved],
            "purged": list(self.purged),
            "skipped": [{"digest": d, "reason": r} for d, r in self.skipped],
            "plan": self.plan.to_dict(),
        }


def _root_items(value: Any, source: str) -> Iterable[tuple[str, str]]:
    """``(digest string, why)`` pairs from one roots answer; a bad digest raises naming ``source``."""
    if value is None:
        return
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (str, Digest)):
        items = [(value, source)]
    else:
        items = ((v, source) for v in value)
    for digest, why in items:
        try:
            text = str(digest) if isinstance(digest, Digest) else Digest.check(digest)
        except SymphonyError as err:
            raise ValidationError(
                f"{source} reported a bad artifact root {digest!r}: {err.message}",
                code="stale.root.invalid",
                context={"source": source, "root": repr(digest)[:200]},
                hint="a root must be a digest (algorithm:hex:size); gc refuses to run without every root",
            ) from None
        yield text, str(why or source)


class StaleManager:
    """Retention, tiering and gc for one :class:`ArtifactStore`.

    ``roots`` returns what other components still need (the plugin collects them through the
    ``symphony_collect_artifact_roots`` hook). Runs are serialized by a lock; each reads a
    fresh snapshot, so a plan never acts on stale rules.

    >>> manager = StaleManager(store, StalePolicy(grace=3600))      # doctest: +SKIP
    >>> print(manager.plan().counts())                               # doctest: +SKIP
    """

    def __init__(
        self, store: ArtifactStore, policy: StalePolicy | None = None, *, roots: RootsSource | None = None
    ) -> None:
        self.store = store
        self.policy = policy or StalePolicy()
        self._roots = roots
        self._lock = threading.Lock()
        self.last_report: GcReport | None = None

    def __repr__(self) -> str:
        return f"StaleManager(store={self.store!r})"

    # -- reading ------------------------------------------------------------------------------

    def roots(self) -> dict[str, str]:
        """Digest -> why it is needed, from the roots source (empty without one)."""
        roots: dict[str, str] = {}
        if self._roots is None:
            return roots
        for answer in self._roots():
            for digest, why in _root_items(answer, "symphony_collect_artifact_roots"):
                roots.setdefault(digest, why)
        return roots

    def snapshot(self) -> Snapshot:
        """Read what the planner needs from the store (a few queries, no per-artifact work)."""
        store = self.store
        rows = list(store.scan())
        history: dict[str, list[str]] = {}
        for entry in store.ref_history():
            history.setdefault(entry.name, []).append(str(entry.digest))
        tagged: dict[str, str] = {}
        for tag in self.policy.keep_tags:
            for info in store.iter_artifacts(tags=[tag], state="any"):
                tagged.setdefault(str(info.digest), tag)
        edges = [(str(c), str(p)) for c, p in store.lineage_edges()]
        return Snapshot(
            rows=rows,
            edges=edges,
            ref_history=history,
            tagged=tagged,
            roots=self.roots(),
            cold_available=store.cold_root is not None,
        )

    def plan(self, *, now: float | None = None, tiers: bool = True, delete: bool = True) -> Plan:
        """What a gc run would do now (nothing is changed)."""
        with gc_paused():  # hundreds of thousands of short-lived tuples, none in a cycle
            return make_plan(
                self.snapshot(), self.policy, time.time() if now is None else now, tiers=tiers, delete=delete
            )

    # -- acting -------------------------------------------------------------------------------

    def gc(
        self, *, dry_run: bool = False, tiers: bool = True, delete: bool = True, trigger: str = "manual"
    ) -> GcReport:
        """Plan and (unless ``dry_run``) apply: restore, trash, move tiers, then purge old trash.

        Trashing goes through :meth:`ArtifactStore.trash_many` with the policy's grace, which
        re-checks each artifact's last put inside the store's write transaction: an artifact
        re-put after the plan was made stays. Purging re-plans first, so nothing a rule keeps
        now is purged.
        """
        with self._lock:
            start = time.perf_counter()
            plan = self.plan(tiers=tiers, delete=delete)
            if dry_run:
                report = GcReport(trigger, plan, True, seconds=time.perf_counter() - start)
            else:
                report = self._apply(plan, trigger, start)
            self.last_report = report
        self._log(report)
        return report

    def apply(self, plan: Plan, *, trigger: str = "manual") -> GcReport:
        """Carry out a plan made earlier (by :meth:`plan`), with the same safety as :meth:`gc`.

        The store re-checks the grace window as it trashes, so an artifact put again since the
        plan was made is skipped (listed in ``skipped``), never lost. Before trashing, the plan
        is checked against a fresh one: what a rule keeps now (a ref set since, a new root) stays.
        """
        with self._lock:
            start = time.perf_counter()
            fresh = {a.digest for a in self.plan(tiers=False).of("trash")}
            stale = [a for a in plan.actions if a.action == "trash" and a.digest not in fresh]
            if stale:
                plan = attrs.evolve(plan, actions=tuple(a for a in plan.actions if a not in stale))
            report = self._apply(plan, trigger, start)
            if stale:
                skipped = tuple((a.digest, "a rule keeps it since the plan was made") for a in stale)
                report = attrs.evolve(report, skipped=report.skipped + skipped)
            self.last_report = report
        self._log(report)
        return report

    def _log(self, report: GcReport) -> None:
        plan = report.plan
        log.info(
            "stale_manager.gc", trigger=report.trigger, dry_run=report.dry_run, scanned=plan.scanned,
            trashed=len(report.trashed), restored=len(report.restored), moved=len(report.moved),
            purged=len(report.purged), skipped=len(report.skipped), seconds=round(report.seconds, 3),
        )  # fmt: skip

    def _apply(self, plan: Plan, trigger: str, start: float) -> GcReport:
        store = self.store
        skipped: list[tuple[str, str]] = []
        restored: list[str] = []
        for action in plan.of("restore"):
            try:
                if store.restore(action.digest):
                    restored.append(action.digest)
            except SymphonyError as err:
                skipped.append((action.digest, f"restore failed: {err.message}"))
        wanted = [a.digest for a in plan.of("trash")]
        trashed = [str(d) for d in store.trash_many(wanted, grace=self.policy.grace)] if wanted else []
        done = set(trashed)
        skipped += [(d, "put again, pinned or gone since the plan") for d in wanted if d not in done]
        moved: list[tuple[str, str]] = []
        for action in plan.of("warm", "cold"):
            try:
                store.move(action.digest, action.action)
                moved.append((action.digest, action.action))
            except (ConflictError, NotFoundError) as err:
                skipped.append((action.digest, f"move to {action.action}: {err.message}"))
        purged: list[str] = []
        if plan.of("purge"):
            purged = self._purge(self.policy.purge_after)
        return GcReport(
            trigger, plan, False, trashed=tuple(trashed), restored=tuple(restored), moved=tuple(moved),
            purged=tuple(purged), skipped=tuple(skipped), seconds=time.perf_counter() - start,
        )  # fmt: skip

    def _purge(self, older_than: float) -> list[str]:
        """Restore what a fresh plan keeps, then purge the trash older than ``older_than``."""
        fresh = self.plan(tiers=False)
        for action in fresh.of("restore"):
            try:
                self.store.restore(action.digest)
            except SymphonyError:
                continue
        return [str(d) for d in self.store.empty_trash(older_than=older_than)]

    def trash_list(self) -> list[Action]:
        """Everything in the trash, as ``purge`` actions whose rule says when it was trashed."""
        now = time.time()
        out: list[Action] = []
        for row in self.store.scan(state="trashed"):
            ago = now - (row.trashed_at or now)
            out.append(Action(row.digest, "purge", f"trashed {_days(ago)} ago", row.stored_size, row.tier))
        return out

    def empty_trash(self, *, older_than: float | None = None) -> list[str]:
        """Purge the trash (what was trashed more than ``older_than`` seconds ago; default all).

        Artifacts a rule keeps again (a new ref, root or kept child) are restored first.
        """
        with self._lock:
            return self._purge(0.0 if older_than is None else older_than)

    # -- async ---------------------------------------------------------------------------------

    async def agc(self, **options: Any) -> GcReport:
        """:meth:`gc` in a worker thread (anyio), for async callers."""
        import anyio

        return await anyio.to_thread.run_sync(lambda: self.gc(**options))

    async def aplan(self, **options: Any) -> Plan:
        """:meth:`plan` in a worker thread (anyio), for async callers."""
        import anyio

        return await anyio.to_thread.run_sync(lambda: self.plan(**options))

    # -- triggers -----------------------------------------------------------------------------

    def disk_usage(self) -> float:
        """The used fraction of the disk holding the store's root (``shutil.disk_usage``)."""
        usage = shutil.disk_usage(self.store.root)
        return usage.used / usage.total if usage.total else 0.0

    def over_threshold(self) -> bool:
        """True when a disk threshold is set and the store's disk is fuller than it."""
        return self.policy.disk_threshold > 0 and self.disk_usage() >= self.policy.disk_threshold

    def relieve_pressure(self) -> GcReport:
        """The disk trigger: a gc run, then (with ``pressure_empties_trash``) the whole trash emptied."""
        report = self.gc(trigger="disk")
        if self.policy.pressure_empties_trash:
            purged = self.empty_trash(older_than=0.0)
            report = attrs.evolve(report, purged=report.purged + tuple(purged))
            self.last_report = report
        return report
