"""gc against a real store (SQLite index, object files, cold root): every rule end to end,
plans that change nothing, the trash and restore, tiers with reads still working."""

from __future__ import annotations

import os
from typing import Any

import pytest

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_artifact_store import ArtifactStore
from symphony_stale_manager import StaleManager, StalePolicy

DAY = 86400.0

BIG = 8192  # above the inline limit: a file in the fan-out folders


def blob(label: str, size: int = BIG) -> bytes:
    return (label.encode() * size)[:size]


def test_rules_keep_what_they_name_and_gc_trashes_the_rest(store: ArtifactStore, age: Any) -> None:
    d = {
        name: store.put(blob(name))
        for name in ("v1", "v2", "v3", "pinned", "tagged", "root", "parent", "orphan")
    }
    store.set_ref("reports/weekly", d["v1"])
    store.set_ref("reports/weekly", d["v2"])
    store.set_ref("reports/weekly", d["v3"])
    store.pin(d["pinned"])
    store.tag(d["tagged"], "keep")
    child = store.put(blob("child"), parents=[d["parent"]])
    store.set_ref("derived", child)
    age(store, [*d.values(), child], 30 * DAY)
    young = store.put(blob("young"))
    manager = StaleManager(store, StalePolicy(grace=DAY, keep_last=2, keep_within=0, warm_after=0, cold_after=0),
                           roots=lambda: [{str(d["root"]): "run r-7 checkpoint"}])  # fmt: skip
    plan = manager.plan()
    assert {a.digest: a.action for a in plan.actions} == {str(d["v1"]): "trash", str(d["orphan"]): "trash"}
    assert plan.kept == {"pinned": 1, "root": 1, "ref": 3, "tag": 1, "grace": 1, "lineage": 1}
    report = manager.gc()
    assert set(report.trashed) == {str(d["v1"]), str(d["orphan"])} and not report.skipped
    assert not store.exists(d["orphan"]) and store.exists(young) and store.get(d["parent"]) == blob("parent")
    with pytest.raises(NotFoundError) as info:
        store.get(d["orphan"])
    assert info.value.code == "artifact.trashed"
    assert manager.plan().actions == ()  # a second run has nothing left to do


def test_dry_run_changes_nothing(store: ArtifactStore, age: Any) -> None:
    old = [store.put(blob(str(i))) for i in range(5)]
    age(store, old, 60 * DAY)
    before = sorted(store.scan())
    manager = StaleManager(store, StalePolicy(grace=DAY, keep_within=0))
    report = manager.gc(dry_run=True)
    assert report.dry_run and len(report.plan.of("trash")) == 5 and not report.trashed
    assert sorted(store.scan()) == before


def test_trash_restore_and_empty(store: ArtifactStore, age: Any, age_trash: Any) -> None:
    old = store.put(blob("old"))
    age(store, [old], 60 * DAY)
    manager = StaleManager(store, StalePolicy(grace=DAY, keep_within=0, trash_retention=2 * DAY))
    assert manager.gc().trashed == (str(old),)
    assert [a.digest for a in manager.trash_list()] == [str(old)]
    assert store.restore(old) and store.get(old) == blob("old")  # `symphony artifacts restore` is this call
    age(store, [old], 60 * DAY)
    manager.gc()
    assert manager.gc().purged == ()  # trashed just now: kept for trash_retention
    age_trash(store, [old], 3 * DAY)
    report = manager.gc()
    assert report.purged == (str(old),) and manager.trash_list() == []
    with pytest.raises(NotFoundError):
        store.restore(old)
    assert store.verify().ok


def test_trash_that_a_rule_keeps_again_comes_back(store: ArtifactStore, age: Any) -> None:
    parent = store.put(blob("parent"))
    age(store, [parent], 60 * DAY)
    manager = StaleManager(store, StalePolicy(grace=DAY, keep_within=0))
    assert manager.gc().trashed == (str(parent),)
    child = store.put(blob("child"), parents=[parent])  # a writer made something from it meanwhile
    store.set_ref("keep/child", child)
    report = manager.gc()
    assert report.restored == (str(parent),) and store.get(parent) == blob("parent")
    assert manager.empty_trash() == []


def test_gc_spares_what_was_put_again_after_the_plan(store: ArtifactStore, age: Any) -> None:
    """The race in slow motion: a plan says trash, a writer puts the same bytes, then the sweep runs."""
    digest = store.put(blob("again"))
    age(store, [digest], 60 * DAY)
    manager = StaleManager(store, StalePolicy(grace=DAY, keep_within=0))
    plan = manager.plan()
    assert [a.digest for a in plan.of("trash")] == [str(digest)]
    assert store.put(blob("again")) == digest  # refreshes last_put
    report = manager.apply(plan)
    assert report.trashed == () and report.skipped == (
        (str(digest), "a rule keeps it since the plan was made"),
    )
    assert store.get(digest) == blob("again")


def test_tiers_move_idle_artifacts_and_reads_still_work(store: ArtifactStore, age: Any) -> None:
    hot, warm, cold = (store.put(blob(n, 100_000), tags=["keep"]) for n in ("hot", "warm", "cold"))
    tiny = store.put(b"tiny", tags=["keep"])
    age(store, [warm], 10 * DAY)
    age(store, [cold, tiny], 40 * DAY)
    manager = StaleManager(store, StalePolicy(warm_after=7 * DAY, cold_after=30 * DAY))
    report = manager.gc(delete=False, trigger="tier")
    assert sorted(report.moved) == sorted([(str(warm), "warm"), (str(cold), "cold")])
    infos = {n: store.info(x) for n, x in (("hot", hot), ("warm", warm), ("cold", cold), ("tiny", tiny))}
    assert [infos[n].tier for n in ("hot", "warm", "cold", "tiny")] == ["hot", "warm", "cold", "hot"]
    assert infos["warm"].encoding == "zstd" and infos["warm"].stored_size < 100_000
    assert any(store.cold_root.rglob("*")) if store.cold_root else False
    assert store.get(cold) == blob("cold", 100_000) and store.get(warm) == blob("warm", 100_000)
    with store.open(cold) as reader:
        assert reader.read() == blob("cold", 100_000)
    assert store.verify().ok


def test_no_cold_root_means_warm_at_most(tmp_path: os.PathLike[str], age: Any) -> None:
    with ArtifactStore(os.path.join(tmp_path, "plain")) as store:
        d = store.put(blob("x"), tags=["keep"])
        age(store, [d], 90 * DAY)
        report = StaleManager(store).gc()
        assert report.moved == ((str(d), "warm"),)


def test_a_bad_root_stops_gc_instead_of_deleting(store: ArtifactStore, age: Any) -> None:
    d = store.put(blob("x"))
    age(store, [d], 90 * DAY)
    manager = StaleManager(store, roots=lambda: [["blake3:nothex:1"]])
    with pytest.raises(ValidationError) as info:
        manager.gc()
    assert info.value.code == "stale.root.invalid" and "blake3:nothex:1" in info.value.message
    assert store.exists(d)


def test_disk_threshold_trigger(store: ArtifactStore, age: Any) -> None:
    d = store.put(blob("x"))
    age(store, [d], 90 * DAY)
    off = StaleManager(store, StalePolicy(disk_threshold=0))
    assert not off.over_threshold() and 0 < off.disk_usage() <= 1
    on = StaleManager(store, StalePolicy(disk_threshold=0.000001, keep_within=0))
    assert on.over_threshold()
    report = on.relieve_pressure()
    assert report.trigger == "disk" and report.trashed == (str(d),) and report.purged == (str(d),)


def test_applying_an_old_plan_spares_what_a_rule_keeps_now(store: ArtifactStore, age: Any) -> None:
    digest = store.put(blob("late ref"))
    age(store, [digest], 60 * DAY)
    manager = StaleManager(store, StalePolicy(grace=DAY, keep_within=0))
    plan = manager.plan()
    store.set_ref("found/again", digest)  # sets a ref without a put: last_put stays old
    report = manager.apply(plan)
    assert report.trashed == () and report.skipped == (
        (str(digest), "a rule keeps it since the plan was made"),
    )
    assert store.get("found/again") == blob("late ref")


def test_tiers_move_to_a_cold_tier_at_an_fsspec_url(tmp_path: os.PathLike[str], age: Any) -> None:
    """The cold tier at ``memory://`` (fsspec's in-process filesystem): gc moves, reads follow."""
    import fsspec

    url = f"memory://sm-cold-{os.getpid()}-{os.path.basename(tmp_path)}"
    with ArtifactStore(os.path.join(tmp_path, "store"), cold_root=url) as store:
        cold = store.put(blob("cold", 100_000), tags=["keep"])
        age(store, [cold], 40 * DAY)
        report = StaleManager(store, StalePolicy(warm_after=7 * DAY, cold_after=30 * DAY)).gc(delete=False)
        assert report.moved == ((str(cold), "cold"),) and store.info(cold).tier == "cold"
        fs, path = fsspec.core.url_to_fs(url)
        assert len(fs.find(path)) == 1
        assert store.get(cold) == blob("cold", 100_000) and store.verify().ok
        fs.rm(path, recursive=True)
