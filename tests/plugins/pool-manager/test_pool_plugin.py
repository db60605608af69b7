"""The pool manager inside a real kernel: the service, config, hooks (transitions, predictors), the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner
from pool_helpers import FakeClock, WordVectors

from symphony.commons.errors import SymphonyError
from symphony.kernel import Kernel
from symphony_pool_manager import ModelPool, ModelState, PoolConfig, TimeOfDayPredictor, WorkflowPredictor
from symphony_pool_manager.cli import pool as pool_cli
from symphony_sdk.testing import write_plugin_distribution

LISTENER = """
from symphony.hookspecs import hookimpl

SEEN = []

class Always:
    name = "always"
    def predict(self, now):
        from symphony_pool_manager import Prediction
        return [Prediction(0.9, "vec", self.name)]
    def observe(self, key, now):
        pass

@hookimpl
def symphony_pool_transition(transition):
    SEEN.append((transition.key, transition.target.value, transition.reason.value))

@hookimpl
def symphony_pool_predictors(pool):
    return [Always()]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    write_plugin_distribution(
        root,
        "symphony-pool-listener",
        manifest={"activation": "on-startup", "after": ["symphony-pool-manager"]},
        module_source=LISTENER,
    )
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("symphony_pool_listener"):
            del sys.modules[name]


def make_kernel(site: Path, **overrides: object) -> Kernel:
    return Kernel.create(
        search_path=[str(site)],
        plugins=["symphony_pool_manager.plugin"],
        env="test",
        overrides={"pool_manager": {"measure_memory": False, **overrides}},
    )


@pytest.mark.anyio
async def test_service_config_hooks_and_predictors(site: Path, vectors_file: Path) -> None:
    kernel = make_kernel(site, count_budget=1, keep_alive="2m", models={"vec": {"priority": 3}})
    try:
        kernel.activate("symphony-pool-listener")
        pool = kernel.service("pool-manager")
        assert isinstance(pool, ModelPool)
        assert pool.config.count_budget == 1 and pool.config.keep_alive == 120.0
        assert [p.name for p in pool.predictors] == ["time-of-day", "workflow", "always"]
        pool.register("vec", WordVectors(vectors_file))
        assert await pool.apply_predictions() == ["vec"]  # the plugin's predictor warmed it
        async with pool.lease("vec"):
            pass
        seen = sys.modules["symphony_pool_listener.plugin"].SEEN
        assert seen == [("vec", "warming", "predictive-prewarm"), ("vec", "hot", "predictive-prewarm")]
        stats = pool.status()["predictors"]["always"]
        assert stats == {"predictions": 1, "correct": 1, "prewarmed": 1, "cold_starts_avoided": 1}
        assert pool.status()["models"][0]["priority"] == 3
    finally:
        kernel.close()


def test_bad_config_fails_the_plugin_only(site: Path) -> None:
    with pytest.raises(SymphonyError):
        Kernel.create(
            search_path=[str(site)],
            plugins=["symphony_pool_manager.plugin"],
            env="test",
            overrides={"pool_manager": {"count_budget": -3}},
            strict=True,
        )


@pytest.mark.anyio
async def test_workflow_predictor_warms_what_a_run_needs(vectors_file: Path) -> None:
    clock = FakeClock()
    pool = ModelPool(PoolConfig(measure_memory=False, prewarm_threshold=0.5), clock=clock)
    pool.add_predictor(WorkflowPredictor(lookahead=2))
    for key in ("embed", "rank", "summarize"):
        pool.register(key, WordVectors(vectors_file))
    pool.expect_run("run-7", ["embed", "rank", "summarize"])
    assert await pool.apply_predictions() == ["embed", "rank"]  # 1.0 and 0.5
    async with pool.lease("embed"):
        pass
    assert await pool.apply_predictions() == ["summarize"]
    pool.run_done("run-7")
    stats = pool.status()["predictors"]["workflow"]
    assert stats["prewarmed"] == 3 and stats["cold_starts_avoided"] == 1


def test_time_of_day_predictor_learns_hours() -> None:
    hours = {0.0: 9, 1.0: 9, 2.0: 9, 3.0: 14}
    predictor = TimeOfDayPredictor(hour_of=lambda now: hours[now], min_uses=2)
    for now in (0.0, 1.0, 2.0):
        predictor.observe("chat", now)
    predictor.observe("embed", 3.0)
    assert [(p.key, p.probability) for p in predictor.predict(0.0)] == [("chat", 1.0)]
    assert predictor.predict(3.0) == []  # one use at 14h is not a habit yet


@pytest.mark.anyio
async def test_kernel_runs_and_stops_the_pool(vectors_file: Path) -> None:
    async with Kernel.open(
        env="test",
        overrides={"pool_manager": {"measure_memory": False, "keep_alive": 0.05}},
    ) as kernel:
        pool = await kernel.aservice("pool-manager")
        pool.register("vec", WordVectors(vectors_file))
        async with pool.lease("vec"):
            pass
        with anyio.fail_after(5):
            while pool.state("vec") is not ModelState.COLD:
                await anyio.sleep(0.01)


def test_cli_status_text_and_json(vectors_file: Path) -> None:
    result = CliRunner().invoke(pool_cli, ["status"], catch_exceptions=False)
    assert result.exit_code == 0 and "models (0):" in result.stdout and "unlimited" in result.stdout
    result = CliRunner().invoke(pool_cli, ["status", "--json"], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert data["models"] == [] and data["metrics"]["hit_rate"] is None


def test_cli_through_the_symphony_command(tmp_path: Path) -> None:
    exe = shutil.which("symphony", path=str(Path(sys.executable).parent))
    assert exe is not None
    env = dict(os.environ, SYMPHONY_ENV="test")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert "pool" in out.stdout
    out = subprocess.run([exe, "pool", "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["budgets"]["count"] == {"limit": None, "used": 0}


def test_time_of_day_predictor_forgets_old_habits() -> None:
    predictor = TimeOfDayPredictor(hour_of=lambda now: 9, min_uses=2, decay=0.5, decay_every=100.0)
    for _ in range(4):
        predictor.observe("old", 0.0)
    assert [p.key for p in predictor.predict(0.0)] == ["old"]
    for t in (100.0, 200.0):  # two decays: 4 -> 2 -> 1 use, below min_uses
        predictor.observe("new", t)
    predictor.observe("new", 200.0)
    assert [p.key for p in predictor.predict(200.0)] == ["new"]
