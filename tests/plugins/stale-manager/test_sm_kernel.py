"""The stale manager inside a real kernel, on asyncio and trio: the service, roots reported by
other plugins through the hook, the schedule and disk triggers started and stopped with the
kernel, and the scheduler and async API on their own."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest

from symphony.commons.errors import PluginError, SymphonyError
from symphony.hookspecs import hookimpl
from symphony.kernel import Kernel
from symphony.plugins.manifest import parse_manifest
from symphony_artifact_store import ArtifactStore
from symphony_stale_manager import GcScheduler, StaleManager, StalePolicy
from symphony_stale_manager.plugin import scheduler_of

DAY = 86400.0
PACKAGE = Path(__file__).resolve().parents[3] / "plugins" / "stale-manager"


def roots_plugin(roots: dict[str, str], *, fail: bool = False) -> tuple[Any, Any]:
    """An on-demand plugin reporting ``roots`` (its manifest provides an artifact-roots slot)."""
    manifest = parse_manifest(
        {"plugin": {"id": "test-checkpoints", "version": "1", "kind": "pit", "api": ">=0.1",
                    "provides": ["artifact-roots:checkpoints"]}}
    )  # fmt: skip

    class Checkpoints:
        @hookimpl
        def symphony_activate(self, kernel: Any) -> None:
            if fail:
                raise RuntimeError("checkpoint index unreadable")

        @hookimpl
        def symphony_collect_artifact_roots(self, kernel: Any) -> dict[str, str]:
            return roots

    return manifest, Checkpoints()


def old_artifacts(root: Path, age: Any, *names: str) -> dict[str, str]:
    with ArtifactStore(root) as store:
        made = {n: str(store.put(n.encode() * 2000)) for n in names}
        age(store, made.values(), 60 * DAY)
    return made


def test_service_keeps_roots_other_plugins_report(tmp_path: Path, age: Any) -> None:
    made = old_artifacts(tmp_path / "s", age, "checkpoint", "junk")
    overrides = {
        "artifact_store": {"root": str(tmp_path / "s")},
        "stale_manager": {"grace": "1d", "keep_within": 0},
    }
    kernel = Kernel.create(
        env="test", overrides=overrides, plugins=[roots_plugin({made["checkpoint"]: "run r-1 step 4"})]
    )
    manager = kernel.service("stale-manager")
    assert isinstance(manager, StaleManager) and manager.policy.grace == DAY
    assert kernel.plugin("test-checkpoints").state.value == "discovered"  # on demand: not asked yet
    report = manager.gc()
    assert report.trashed == (made["junk"],)
    assert manager.store.get(made["checkpoint"]) == b"checkpoint" * 2000
    assert report.plan.kept.get("root") == 1


def test_gc_refuses_to_run_when_a_roots_plugin_is_broken(tmp_path: Path, age: Any) -> None:
    made = old_artifacts(tmp_path / "s", age, "needed")
    overrides = {
        "artifact_store": {"root": str(tmp_path / "s")},
        "stale_manager": {"grace": "1d", "keep_within": 0},
    }
    kernel = Kernel.create(env="test", overrides=overrides, plugins=[roots_plugin({}, fail=True)])
    with pytest.raises(PluginError) as info:
        kernel.service("stale-manager").gc()
    assert info.value.code == "stale.roots.unavailable" and info.value.context["plugin"] == "test-checkpoints"
    assert kernel.service("artifact-store").exists(made["needed"])


@pytest.mark.anyio
async def test_schedule_runs_gc_while_the_kernel_is_open(tmp_path: Path, age: Any) -> None:
    made = old_artifacts(tmp_path / "s", age, "junk")
    overrides = {"artifact_store": {"root": str(tmp_path / "s")},
                 "stale_manager": {"schedule_interval": 0.05, "keep_within": 0, "grace": "1d"}}  # fmt: skip
    async with Kernel.open(env="test", overrides=overrides) as kernel:
        scheduler = scheduler_of(kernel)
        assert isinstance(scheduler, GcScheduler)
        with anyio.fail_after(20):
            while scheduler.runs.count("schedule") < 2:
                await anyio.sleep(0.02)
        assert not kernel.service("artifact-store").exists(made["junk"])
    assert scheduler_of(kernel) is None and scheduler._stopped
    runs = len(scheduler.runs)
    await anyio.sleep(0.15)
    assert len(scheduler.runs) == runs  # stopped with the kernel


@pytest.mark.anyio
async def test_no_trigger_configured_starts_no_task(tmp_path: Path) -> None:
    async with Kernel.open(env="test", overrides={"artifact_store": {"root": str(tmp_path / "s")}}) as kernel:
        assert kernel.plugin("symphony-stale-manager").state.value == "active"
        assert scheduler_of(kernel) is None


@pytest.mark.anyio
async def test_disk_threshold_triggers_gc_and_empties_the_trash(tmp_path: Path, age: Any) -> None:
    made = old_artifacts(tmp_path / "s", age, "junk")
    with ArtifactStore(tmp_path / "s") as store:
        manager = StaleManager(
            store, StalePolicy(disk_threshold=1e-9, disk_check_interval=0.05, keep_within=0, grace=DAY)
        )
        scheduler = GcScheduler(manager)
        async with anyio.create_task_group() as tg:
            await tg.start(scheduler.run)
            with anyio.fail_after(20):
                while "disk" not in scheduler.runs or manager.last_report is None:
                    await anyio.sleep(0.02)
            scheduler.stop()
        last = manager.last_report
        assert last is not None and last.trigger == "disk" and last.purged == (made["junk"],)
        assert store.stats().trashed == 0 and not store.exists(made["junk"])


@pytest.mark.anyio
async def test_scheduler_without_triggers_returns_and_async_api(tmp_path: Path, age: Any) -> None:
    made = old_artifacts(tmp_path / "s", age, "junk")
    with ArtifactStore(tmp_path / "s") as store:
        manager = StaleManager(store, StalePolicy(keep_within=0, grace=DAY))
        with anyio.fail_after(5):
            await GcScheduler(manager).run()  # nothing configured: returns at once
        plan = await manager.aplan()
        assert [a.digest for a in plan.of("trash")] == [made["junk"]]
        report = await manager.agc()
        assert report.trashed == (made["junk"],)


def test_every_numeric_config_setting_has_a_maximum() -> None:
    manifest = tomllib.loads((PACKAGE / "src" / "symphony_stale_manager" / "symphony.toml").read_text())
    assert manifest["plugin"]["config_section"] == "stale_manager"
    assert manifest["plugin"]["activation"] == "on-startup"

    def walk(schema: dict[str, Any], path: str) -> list[str]:
        types = schema.get("type")
        numeric = (
            {types} & {"integer", "number"}
            if isinstance(types, str)
            else set(types or ()) & {"integer", "number"}
        )
        found = [path] if numeric and "maximum" not in schema else []
        for name, sub in schema.get("properties", {}).items():
            found += walk(sub, f"{path}.{name}")
        return found

    assert walk(manifest["config_schema"], "stale_manager") == []
    from symphony_stale_manager import StalePolicy as Policy

    assert set(manifest["config_schema"]["properties"]) == {a for a in Policy().to_dict()}


def test_config_from_a_user_file_with_a_bad_value_names_the_key(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[stale_manager]\nkeep_last = 0\n")
    kernel = Kernel.create(user, env="test", overrides={"artifact_store": {"root": str(tmp_path / "s")}})
    record = kernel.plugin("symphony-stale-manager")  # a bad plugin section fails that plugin only
    assert record.state.value == "misconfigured"
    assert "stale_manager.keep_last" in record.reason and str(user) in record.reason
    with pytest.raises(SymphonyError):
        kernel.service("stale-manager")


CHEAP = """
import sys
from symphony.kernel import Kernel
kernel = Kernel.create(env="test", overrides={OVERRIDES})
order = [r.id for r in kernel._activation_order]
print(kernel.plugin("symphony-stale-manager").state.value, "symphony_artifact_store._store" in sys.modules, order)
"""


@pytest.mark.parametrize(
    ("section", "store_loaded"),
    [({}, False), ({"schedule_interval": 60}, True), ({"disk_threshold": 0.95}, True)],
)
def test_on_startup_activation_is_cheap_unless_a_trigger_is_set(
    tmp_path: Path, section: dict[str, Any], store_loaded: bool
) -> None:
    import subprocess
    import sys

    overrides = {"artifact_store": {"root": str(tmp_path / "s")}, "stale_manager": section}
    code = CHEAP.replace("{OVERRIDES}", repr(overrides))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    state, loaded, order = out.split(" ", 2)
    assert state == "active" and loaded == str(store_loaded)
    if store_loaded:  # the store first, so the scheduler stops before the store closes
        assert order.index("symphony-artifact-store") < order.index("symphony-stale-manager")
