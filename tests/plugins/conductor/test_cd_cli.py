"""``symphony run`` and ``symphony runs`` as real processes: exit codes, output, Ctrl-C, kill -9
and ``--resume``. A test plugin (written as an installed distribution on PYTHONPATH) provides
``test.gate``: it records each execution in a file and waits while a gate file exists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symphony_sdk.testing import write_plugin_distribution

from .conftest import README_REPORT, TEMPLATES, TEXT_REPORT

SYMPHONY = str(Path(sys.executable).with_name("symphony"))

GATE_PLUGIN = '''
from pathlib import Path

import anyio

from symphony_sdk import NodeImplementation, hookimpl


class Gate(NodeImplementation):
    """Record the execution, wait while the gate file exists, pass the text on."""

    pure = True

    async def execute(self, inputs, context):
        log = Path(context.config["log"])
        with log.open("a") as fh:
            fh.write(context.node_id + "\\n")
        gate = Path(context.config["gate"])
        while gate.exists():
            await anyio.sleep(0.02)
        return {"text": inputs["text"] + "+" + context.node_id}


@hookimpl
def symphony_register_node_types(registry):
    registry.add("test.gate", kind="operator", inputs={"text": "text"}, outputs={"text": "text"},
                 implementation=Gate())
'''


def _gate_workflow(path: Path, log: Path, gate: Path) -> Path:
    config = {"log": str(log), "gate": str(gate)}
    doc = {
        "schema_version": "1.0",
        "workflow": {
            "id": "8a0f6a38-52a4-4c8f-a6d9-0b2a7f1f3c11",
            "name": "Gated",
            "nodes": [
                {
                    "id": "document",
                    "kind": "input",
                    "type": "input",
                    "outputs": [{"name": "value", "type": "text"}],
                },
                {
                    "id": "first",
                    "kind": "operator",
                    "type": "test.gate",
                    "config": {**config, "gate": str(gate) + ".never"},
                    "inputs": [{"name": "text", "type": "text"}],
                    "outputs": [{"name": "text", "type": "text"}],
                },
                {
                    "id": "second",
                    "kind": "operator",
                    "type": "test.gate",
                    "config": config,
                    "inputs": [{"name": "text", "type": "text"}],
                    "outputs": [{"name": "text", "type": "text"}],
                },
                {
                    "id": "result",
                    "kind": "output",
                    "type": "output",
                    "inputs": [{"name": "value", "type": "text"}],
                },
            ],
            "edges": [
                {"source": "document", "source_port": "value", "target": "first", "target_port": "text"},
                {"source": "first", "source_port": "text", "target": "second", "target_port": "text"},
                {"source": "second", "source_port": "text", "target": "result", "target_port": "value"},
            ],
        },
    }
    path.write_text(json.dumps(doc), "utf-8")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An isolated environment for `symphony` processes, with the gate plugin installed."""
    site = tmp_path / "site"
    write_plugin_distribution(
        site,
        "test-gate",
        manifest={"kind": "operator", "provides": ["node-type:test.gate"], "requires": ["symphony-workflow"]},
        module_source=GATE_PLUGIN,
    )
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(site),
        "SYMPHONY_ENV": "test",
        "SYMPHONY_DATA_DIR": str(tmp_path / "data"),
        "SYMPHONY_CACHE_DIR": str(tmp_path / "cache"),
        "SYMPHONY_CONFIG_DIR": str(tmp_path / "config"),
        "SYMPHONY_USER_CONFIG": str(tmp_path / "user.toml"),
        "SYMPHONY_WORKFLOW_TEMPLATES": str(TEMPLATES),
        "COLUMNS": "160",
    }


def _symphony(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYMPHONY, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_run_a_file_prints_each_node_the_summary_and_the_outputs(env: dict[str, str], tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("plugins plugins kernel\n", "utf-8")
    proc = _symphony(env, "run", str(TEXT_REPORT), "--input", f"document=@{doc}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "  stats: completed" in proc.stdout
    assert "completed in" in proc.stdout and "3 completed" in proc.stdout
    assert "outputs:" in proc.stdout and "report = (json, " in proc.stdout
    assert "print one with: symphony runs output" in proc.stdout
    again = _symphony(env, "run", str(TEXT_REPORT), "--input", f"document=@{doc}")
    assert "  stats: cached" in again.stdout and "(1 cached)" in again.stdout


def test_run_json_and_runs_list_show_logs(env: dict[str, str]) -> None:
    proc = _symphony(
        env, "run", str(README_REPORT), "--json", "--input", 'readmes={"a.md": "# A\\nsome words"}'
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["state"] == "completed" and status["outputs"]["report"]["value"].startswith("# 1 documents")
    run_id = status["run_id"]
    listing = json.loads(_symphony(env, "runs", "list", "--json").stdout)
    assert listing[0]["run_id"] == run_id and listing[0]["state"] == "completed"
    shown = json.loads(_symphony(env, "runs", "show", run_id, "--json").stdout)
    assert shown["state"] == "completed" and shown["nodes"]["compose"]["state"] == "completed"
    logs = _symphony(env, "runs", "logs", run_id)
    assert logs.returncode == 0 and "compose  completed" in logs.stdout
    report = _symphony(env, "runs", "output", run_id, "report")
    assert report.returncode == 0 and report.stdout.startswith("# 1 documents, 3 words of prose\n")
    none = _symphony(env, "runs", "output", run_id, "compose")
    assert none.returncode == 1 and "code: conductor.no_output" in none.stderr
    plain = _symphony(env, "runs", "list")
    assert plain.stdout.splitlines()[0].split("\t")[:3] == ["run", "workflow", "state"]
    missing = _symphony(env, "runs", "show", "no-such-run")
    assert missing.returncode == 1 and "no run 'no-such-run'" in missing.stderr


def test_run_priority_reaches_the_plan_and_a_bad_one_is_refused(env: dict[str, str]) -> None:
    proc = _symphony(
        env, "run", str(README_REPORT), "--json", "--priority", "background", "--input", 'readmes={"a.md": "# A"}'
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["plan"]["priority"] == "background"
    bad = _symphony(env, "run", str(README_REPORT), "--priority", "urgent")
    assert bad.returncode == 2 and "urgent" in bad.stderr


def test_a_run_that_fails_exits_non_zero(env: dict[str, str]) -> None:
    proc = _symphony(env, "run", str(README_REPORT), "--input", 'readmes={"a.md": 3}')
    assert proc.returncode == 1
    assert "  prose: failed" in proc.stdout and "run " in proc.stdout and " failed" in proc.stdout


def test_unknown_node_type_is_named_with_what_is_installed(env: dict[str, str], tmp_path: Path) -> None:
    doc = json.loads(TEXT_REPORT.read_text("utf-8"))
    doc["workflow"]["nodes"][1]["type"] = "llm.summarize"
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps(doc), "utf-8")
    proc = _symphony(env, "run", str(path), "--input", "document=x")
    assert proc.returncode == 1
    assert "no usable plugin provides node type 'llm.summarize' (node stats)" in proc.stderr
    assert "installed node types:" in proc.stderr and "textstats.analyze" in proc.stderr
    assert "code: conductor.unknown_node_type" in proc.stderr


def test_missing_and_wrongly_typed_parameters(env: dict[str, str]) -> None:
    missing = _symphony(env, "run", "document-stats", "--input", "document=x")
    assert missing.returncode == 1 and "missing required parameter 'title'" in missing.stderr
    typed = _symphony(
        env, "run", "document-stats", "-p", "title=T", "-p", "top=lots", "--input", "document=x"
    )
    assert typed.returncode == 1
    assert "parameter 'top' needs a whole number, got 'lots'" in typed.stderr
    ok = _symphony(
        env, "run", "document-stats", "-p", "title=2024", "-p", "top=2", "--input", "document=a b a"
    )
    assert ok.returncode == 0, ok.stderr
    assert "Statistics of 2024" in ok.stdout


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text("utf-8").split():
            return
        if proc.poll() is not None:
            raise AssertionError(f"symphony run ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def _start_gated(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path, Path]:
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    workflow = _gate_workflow(tmp_path / "gated.json", log, gate)
    proc = subprocess.Popen(
        [SYMPHONY, "run", str(workflow), "--input", "document=go"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(log, "second", proc)
    return proc, log, gate, workflow


def _run_id_from(output: str) -> str:
    (line,) = [x for x in output.splitlines() if x.startswith("run ") and x.endswith("nodes)")]
    return line.split()[1].rstrip(":")


def test_ctrl_c_cancels_and_prints_the_resume_command_that_finishes_the_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    proc, log, gate, workflow = _start_gated(env, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    run_id = _run_id_from(out)
    assert f"resume with: symphony run --resume {run_id}" in out
    assert "nothing is left running" in out
    gate.unlink()
    resumed = _symphony(env, "run", str(workflow), "--resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "  first: cached" in resumed.stdout
    assert "result = go+first+second" in resumed.stdout
    assert log.read_text("utf-8").split() == ["first", "second", "second"]  # first never ran again


def test_resume_completes_a_run_killed_with_sigkill(env: dict[str, str], tmp_path: Path) -> None:
    proc, log, gate, _ = _start_gated(env, tmp_path)
    run_id = ""
    for _attempt in range(50):  # the tracker commits `first` before it waits on `second`
        listing = json.loads(_symphony(env, "runs", "list", "--json").stdout)
        if listing:
            run_id = listing[0]["run_id"]
            shown = json.loads(_symphony(env, "runs", "show", run_id, "--json").stdout)
            if shown["nodes"].get("first", {}).get("state") == "completed":
                break
        time.sleep(0.1)
    proc.kill()
    proc.communicate(timeout=30)
    shown = json.loads(_symphony(env, "runs", "show", run_id, "--json").stdout)
    assert shown["state"] not in ("completed", "failed", "cancelled")
    assert shown["nodes"]["first"]["state"] == "completed"
    assert "resume with: symphony run --resume" in _symphony(env, "runs", "show", run_id).stdout
    gate.unlink()
    resumed = _symphony(env, "run", "--resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "result = go+first+second" in resumed.stdout
    assert log.read_text("utf-8").split() == ["first", "second", "second"]
    finished = _symphony(env, "run", "--resume", run_id)
    assert finished.returncode == 1 and "already completed" in finished.stderr


def test_runs_steers_a_run_of_the_served_kernel(env: dict[str, str], tmp_path: Path, sock_dir: Path) -> None:
    env = {**env, "SYMPHONY_BUS__SOCKET": str(sock_dir / "bus.sock")}
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    workflow = _gate_workflow(tmp_path / "gated.json", log, gate)
    server = subprocess.Popen(
        [SYMPHONY, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("listening on unix://")
        request = json.dumps({"workflow": str(workflow), "inputs": {"document": "go"}})
        submitted = _symphony(env, "bus", "request", "run.submit", request, "--json")
        assert submitted.returncode == 0, submitted.stderr
        run_id = json.loads(submitted.stdout)["p"]["run_id"]
        _wait_for(log, "second", server)
        paused = _symphony(env, "runs", "pause", run_id)
        assert paused.returncode == 0 and f"run {run_id}: pause accepted; now paused" in paused.stdout
        resumed = _symphony(env, "runs", "resume", run_id, "--json")
        assert json.loads(resumed.stdout)["state"] == "running"
        cancelled = _symphony(env, "runs", "cancel", run_id)
        assert cancelled.returncode == 0 and "cancel accepted" in cancelled.stdout
        shown = json.loads(_symphony(env, "runs", "show", run_id, "--json").stdout)
        assert shown["state"] == "cancelled"
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    alone = _symphony(env, "runs", "pause", run_id)
    assert alone.returncode == 1 and "not running in a served kernel" in alone.stderr
