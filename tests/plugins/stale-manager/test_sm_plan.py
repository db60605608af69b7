"""The planner alone (a pure function): every rule keeps what it should, and a property test that
no plan ever deletes what a rule keeps or anything younger than the grace window."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from symphony_artifact_store import ScanRow
from symphony_stale_manager import Snapshot, StalePolicy, make_plan

DAY = 86400.0
NOW = 1_800_000_000.0


def row(name: str, age_days: float, *, tier: str = "hot", inline: bool = False, pinned: bool = False,
        trashed_days: float | None = None, idle_days: float | None = None) -> ScanRow:  # fmt: skip
    put = NOW - age_days * DAY
    accessed = NOW - (age_days if idle_days is None else idle_days) * DAY
    state = "present" if trashed_days is None else "trashed"
    trashed_at = None if trashed_days is None else NOW - trashed_days * DAY
    return ScanRow(name, 100, 100, tier, inline, state, put, put, accessed, pinned, trashed_at)


POLICY = StalePolicy(grace=2 * DAY, keep_last=2, keep_within=5 * DAY, keep_tags=("keep",), warm_after=10 * DAY,
                     cold_after=40 * DAY, trash_retention=3 * DAY)  # fmt: skip


def decisions(snapshot: Snapshot, policy: StalePolicy = POLICY) -> dict[str, tuple[str, str]]:
    plan = make_plan(snapshot, policy, NOW)
    return {a.digest: (a.action, a.rule) for a in plan.actions}


def test_each_rule_keeps_and_says_so() -> None:
    rows = [row(n, 100) for n in ("pin", "root", "v1", "v2", "v3", "tagged", "old", "parent", "grand")]
    rows[0] = row("pin", 100, pinned=True)
    rows += [row("recent", 1.5), row("young", 4), row("young-parent", 100)]
    snapshot = Snapshot(
        rows=rows,
        edges=[("root", "parent"), ("parent", "grand"), ("young", "young-parent")],
        ref_history={"reports/weekly": ["v1", "v2", "v3"]},
        tagged={"tagged": "keep"},
        roots={"root": "run r-1 checkpoint"},
    )
    policy = StalePolicy(grace=5 * DAY, keep_last=2, keep_within=2 * DAY, warm_after=0, cold_after=0)
    plan = make_plan(snapshot, policy, NOW)
    assert [(a.digest, a.action) for a in plan.actions] == [("v1", "trash"), ("old", "trash")]
    assert "no rule keeps it" in plan.actions[0].rule
    assert plan.kept == {
        "pinned": 1,
        "root": 1,
        "ref": 2,
        "tag": 1,
        "within": 1,
        "grace": 1,
        "lineage": 2,
        "young-lineage": 1,
    }


def test_trash_is_restored_when_a_strong_rule_keeps_it_and_purged_after_retention() -> None:
    snapshot = Snapshot(
        rows=[row("needed", 100, trashed_days=10), row("old-trash", 100, trashed_days=10),
              row("fresh-trash", 100, trashed_days=1), row("hand-trashed-young", 1, trashed_days=0.5)],
        roots={"needed": "open workflow"},
    )  # fmt: skip
    got = decisions(snapshot)
    assert got["needed"] == ("restore", "root: open workflow")
    assert got["old-trash"][0] == "purge" and "trash_retention" in got["old-trash"][1]
    assert "fresh-trash" not in got and "hand-trashed-young" not in got


def test_purge_waits_for_grace_when_retention_is_shorter() -> None:
    policy = StalePolicy(grace=20 * DAY, trash_retention=1 * DAY, keep_within=0)
    got = decisions(Snapshot(rows=[row("a", 100, trashed_days=5), row("b", 100, trashed_days=25)]), policy)
    assert "a" not in got and got["b"][0] == "purge"


def test_tiers_by_idle_time() -> None:
    snapshot = Snapshot(
        rows=[row("warm-me", 100, idle_days=12), row("read-lately", 100, idle_days=3), row("cold-me", 100, idle_days=50),
              row("already-warm", 100, tier="warm", idle_days=12), row("inline", 100, inline=True, idle_days=50)],
        roots={d: "" for d in ("warm-me", "read-lately", "cold-me", "already-warm", "inline")},
        cold_available=True,
    )  # fmt: skip
    got = decisions(snapshot)
    assert got == {
        "warm-me": ("warm", "idle 12.0d (warm_after 10.0d)"),
        "cold-me": ("cold", "idle 50.0d (cold_after 40.0d)"),
    }
    no_cold = decisions(Snapshot(rows=snapshot.rows, roots=snapshot.roots, cold_available=False))
    assert no_cold["cold-me"][0] == "warm" and no_cold["warm-me"][0] == "warm"
    only_tiers = make_plan(Snapshot(rows=[row("x", 100, idle_days=50)]), POLICY, NOW, delete=False)
    assert [a.action for a in only_tiers.actions] == ["warm"]


# -- the property ----------------------------------------------------------------------------

names = st.sampled_from([f"d{i}" for i in range(12)])


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[Snapshot, StalePolicy]:
    digests = sorted(set(draw(st.lists(names, min_size=1, max_size=12))))
    rows = []
    for d in digests:
        trashed = draw(st.one_of(st.none(), st.floats(0, 60)))
        age_days = draw(st.floats(0, 60))
        rows.append(row(d, age_days, pinned=draw(st.booleans()), inline=draw(st.booleans()),
                        trashed_days=None if trashed is None else min(trashed, age_days),
                        idle_days=draw(st.floats(0, 60)), tier=draw(st.sampled_from(["hot", "warm", "cold"]))))  # fmt: skip
    edges = draw(st.lists(st.tuples(names, names), max_size=20))
    refs = draw(
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(names, min_size=1, max_size=6), max_size=3)
    )
    tagged = {d: "keep" for d in draw(st.lists(names, max_size=4))}
    roots = {d: "why" for d in draw(st.lists(names, max_size=4))}
    policy = StalePolicy(
        grace=draw(st.floats(0, 30)) * DAY, keep_last=draw(st.integers(1, 4)), keep_within=draw(st.floats(0, 30)) * DAY,
        keep_lineage=draw(st.booleans()), trash_retention=draw(st.floats(0, 30)) * DAY,
        warm_after=draw(st.floats(0, 60)) * DAY, cold_after=draw(st.floats(0, 60)) * DAY,
    )  # fmt: skip
    snap = Snapshot(
        rows=rows,
        edges=edges,
        ref_history=refs,
        tagged=tagged,
        roots=roots,
        cold_available=draw(st.booleans()),
    )
    return snap, policy


def kept_by_rules(snapshot: Snapshot, policy: StalePolicy) -> tuple[set[str], set[str]]:
    """An independent, naive reading of the rules: (strongly kept, kept by any rule)."""
    strong = {r.digest for r in snapshot.rows if r.pinned} | set(snapshot.roots) | set(snapshot.tagged)
    for versions in snapshot.ref_history.values():
        strong |= set(versions[-policy.keep_last :])
    weak = {
        r.digest for r in snapshot.rows if r.last_put >= NOW - policy.keep_within and policy.keep_within > 0
    }
    weak |= {r.digest for r in snapshot.rows if r.last_put > NOW - policy.grace}

    def closure(start: set[str]) -> set[str]:
        found = set(start)
        changed = policy.keep_lineage
        while changed:
            changed = False
            for child, parent in snapshot.edges:
                if child in found and parent not in found:
                    found.add(parent)
                    changed = True
        return found

    return closure(strong), closure(strong | weak)


def present(rows: Sequence[ScanRow]) -> set[str]:
    return {r.digest for r in rows if r.state == "present"}


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_a_plan_never_deletes_what_a_rule_keeps_or_anything_younger_than_grace(
    case: tuple[Snapshot, StalePolicy],
) -> None:
    snapshot, policy = case
    strong, kept = kept_by_rules(snapshot, policy)
    by_digest = {r.digest: r for r in snapshot.rows}
    plan = make_plan(snapshot, policy, NOW)
    for action in plan.actions:
        r = by_digest[action.digest]
        if action.action == "trash":
            assert r.state == "present" and action.digest not in kept
            assert r.last_put <= NOW - policy.grace and not r.pinned
        elif action.action == "purge":
            assert r.state == "trashed" and action.digest not in kept
            assert r.last_put <= NOW - policy.grace and r.trashed_at is not None
            assert r.trashed_at <= NOW - policy.trash_retention
        elif action.action == "restore":
            assert r.state == "trashed" and action.digest in strong
        else:
            assert (
                r.state == "present"
                and not r.inline
                and action.digest not in {a.digest for a in plan.of("trash")}
            )
    # every present artifact no rule keeps is trashed: the plan is complete, not just safe
    assert {a.digest for a in plan.of("trash")} == present(snapshot.rows) - kept
