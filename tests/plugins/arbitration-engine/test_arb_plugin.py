"""The engine in a real kernel (service, config, decision hook, CLI) and the fairness report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from symphony.kernel import Kernel
from symphony_arbitration_engine import (
    ArbitrationConfig,
    ArbitrationEngine,
    Owner,
    Request,
    Resources,
    fairness_report,
    gini,
    read_audit,
)
from symphony_arbitration_engine.cli import arbitration
from symphony_sdk.testing import write_plugin_distribution

WATCHER = """
from symphony.hookspecs import hookimpl

SEEN = []

@hookimpl
def symphony_arbitration_decision(decision):
    SEEN.append((decision.request, decision.outcome.value, decision.reason and decision.reason.value))
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    write_plugin_distribution(
        root,
        "symphony-arb-watcher",
        manifest={"activation": "on-startup", "after": ["symphony-arbitration-engine"]},
        module_source=WATCHER,
    )
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("symphony_arb_watcher"):
            del sys.modules[name]


def test_service_config_audit_file_and_hook(site: Path, tmp_path: Path) -> None:
    audit = tmp_path / "arb" / "audit.jsonl"
    kernel = Kernel.create(
        search_path=[str(site)],
        plugins=["symphony_arbitration_engine.plugin"],
        env="test",
        overrides={
            "arbitration": {
                "capacity": {"cpu_slots": 2},
                "owners": {"alice": {"weight": 2, "kind": "user"}, "ci": {"kind": "run", "quota": {"cpu_slots": 0}}},
                "audit_path": str(audit),
            }
        },
    )
    try:
        engine = kernel.service("arbitration")
        kernel.activate("symphony-arb-watcher")
        assert isinstance(engine, ArbitrationEngine) and engine.owners() == ["alice", "ci"]
        engine.submit(Request.make("alice", {"cpu_slots": 1}))
        engine.submit(Request.make("ci", {"cpu_slots": 1}))
        seen = sys.modules["symphony_arb_watcher.plugin"].SEEN
        assert seen == [("r1", "granted", None), ("r2", "denied", "quota-exceeded")]
        assert [r["kind"] for r in read_audit(audit)][-4:] == ["submit", "decision", "submit", "decision"]
    finally:
        kernel.close()


def test_cli_status(tmp_path: Path) -> None:
    result = CliRunner().invoke(arbitration, ["status"], catch_exceptions=False)
    assert result.exit_code == 0 and "policy: staged (preemption off)" in result.stdout
    result = CliRunner().invoke(arbitration, ["status", "--json"], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert data["status"]["pending"] == 0 and data["fairness"]["max_deviation"] == 0


def test_cli_through_the_symphony_command(tmp_path: Path) -> None:
    exe = shutil.which("symphony", path=str(Path(sys.executable).parent))
    assert exe is not None
    user = tmp_path / "user.toml"
    user.write_text('[arbitration]\ncapacity = { cpu_slots = 4 }\nowners = { bob = { weight = 3 } }\n')
    env = dict(os.environ, SYMPHONY_ENV="test", SYMPHONY_USER_CONFIG=str(user))
    out = subprocess.run([exe, "arbitration", "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"]["capacity"]["cpu_slots"] == 4 and data["status"]["owners"]["bob"]["weight"] == 3


def test_gini() -> None:
    assert gini([]) == 0 and gini([5, 5, 5]) == 0
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)


def test_fairness_report_drf_versus_fcfs() -> None:
    """A greedy owner floods the queue: FCFS gives it most of the machine, DRF its fair share."""

    def run(policy: str) -> dict[str, float]:
        now = [0.0]
        engine = ArbitrationEngine(
            ArbitrationConfig(capacity=Resources(cpu_slots=4), policy=policy, aging=0), clock=lambda: now[0]
        )
        for name in ("greedy", "modest"):
            engine.add_owner(Owner(name))
        for _ in range(40):
            engine.submit(Request.make("greedy", {"cpu_slots": 1}))
        for _ in range(10):
            engine.submit(Request.make("modest", {"cpu_slots": 1}))
        for _ in range(20):  # each unit of time the oldest grant ends
            now[0] += 1
            engine.release(engine.grants()[0])
        report = fairness_report(engine)
        return {o.owner: o.share for o in report.owners} | {"max_deviation": report.max_deviation}

    fcfs, drf = run("fcfs"), run("staged")
    assert fcfs["greedy"] > 0.9 and fcfs["max_deviation"] > 0.8
    assert drf["greedy"] == pytest.approx(0.5, abs=0.1) and drf["max_deviation"] < 0.2


def test_fairness_report_window_and_classes() -> None:
    now = [0.0]
    engine = ArbitrationEngine(ArbitrationConfig(capacity=Resources(cpu_slots=1), window=100), clock=lambda: now[0])
    engine.add_owner(Owner("a"))
    engine.submit(Request.make("a", {"cpu_slots": 1}, priority="high"))
    engine.submit(Request.make("a", {"cpu_slots": 1}, priority="low"))
    now[0] = 10.0
    engine.release("r1")
    report = fairness_report(engine)
    assert report.by_class["high"] == {"count": 1, "p50_wait": 0.0, "p99_wait": 0.0}
    assert report.by_class["low"]["p99_wait"] == 10.0 and report.owners[0].requests == 2
    assert fairness_report(engine, now=500.0).owners[0].requests == 1  # only the running grant is left
    assert report.to_dict()["owners"][0]["owner"] == "a"
