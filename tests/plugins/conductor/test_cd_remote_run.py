"""``symphony run --server/--socket`` as real processes against a real ``symphony serve``:
output and exit codes as a local run, cached nodes on a second run, Ctrl-C cancels on the
server and ``--resume`` finishes there, a dying server and a malformed URL."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import TEXT_REPORT
from .test_cd_cli import SYMPHONY, _gate_workflow, _symphony, _wait_for, env  # noqa: F401


@pytest.fixture
def served(env: dict[str, str], sock_dir: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:  # noqa: F811
    """A `symphony serve --socket` process (stopped with SIGINT, or already killed)."""
    sock = sock_dir / "bus.sock"
    server = subprocess.Popen(
        [SYMPHONY, "serve", "--socket", str(sock)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().startswith("listening on unix://")
        yield server, sock
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


def test_run_on_the_server_reports_like_a_local_run(
    env: dict[str, str],  # noqa: F811
    served: tuple[subprocess.Popen[str], Path],
    tmp_path: Path,
) -> None:
    _server, sock = served
    doc = tmp_path / "doc.txt"
    doc.write_text("plugins plugins kernel\n", "utf-8")
    first = _symphony(
        env, "run", str(TEXT_REPORT), "--input", f"document=@{doc}", "--socket", str(sock), "--json"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    status = json.loads(first.stdout)
    assert status["state"] == "completed" and status["outputs"]["report"]["digest"]
    again = _symphony(
        env, "run", str(TEXT_REPORT), "--input", f"document=@{doc}", "--server", f"unix://{sock}"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "  stats: cached" in again.stdout and "(1 cached)" in again.stdout
    assert "report = (json, " in again.stdout
    listed = json.loads(
        _symphony(env, "bus", "--socket", str(sock), "request", "run.list", "{}", "--json").stdout
    )
    assert {r["run_id"] for r in listed["p"]} >= {status["run_id"]}


def test_ctrl_c_cancels_on_the_server_and_resume_finishes_there(
    env: dict[str, str],  # noqa: F811
    served: tuple[subprocess.Popen[str], Path],
    tmp_path: Path,
) -> None:
    server, sock = served
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    workflow = _gate_workflow(tmp_path / "gated.json", log, gate)
    client = subprocess.Popen(
        [SYMPHONY, "run", str(workflow), "--input", "document=go", "--socket", str(sock)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(log, "second", server)
    time.sleep(0.3)  # the client is following the run
    client.send_signal(signal.SIGINT)
    out, err = client.communicate(timeout=60)
    assert client.returncode == 130, out + err
    assert f"--server unix://{sock}" in out
    run_id = out.split("symphony run --resume ", 1)[1].split()[0]
    gate.unlink()
    resumed = _symphony(env, "run", "--resume", run_id, "--socket", str(sock))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "result = go+first+second" in resumed.stdout
    assert log.read_text("utf-8").split() == ["first", "second", "second"]


def test_a_server_that_dies_mid_run_is_an_error(
    env: dict[str, str],  # noqa: F811
    served: tuple[subprocess.Popen[str], Path],
    tmp_path: Path,
) -> None:
    server, sock = served
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    workflow = _gate_workflow(tmp_path / "gated.json", log, gate)
    client = subprocess.Popen(
        [SYMPHONY, "run", str(workflow), "--input", "document=go", "--socket", str(sock)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(log, "second", server)
    server.kill()
    out, err = client.communicate(timeout=60)
    assert client.returncode == 1, out + err
    assert "server went away" in err and "Traceback" not in err


def test_bad_urls_are_usage_errors_and_no_server_is_an_error(env: dict[str, str], sock_dir: Path) -> None:  # noqa: F811
    for url in ("nonsense", "bogus://x"):
        proc = _symphony(env, "run", str(TEXT_REPORT), "--server", url)
        assert proc.returncode == 2, (url, proc.stderr)
        assert "--server" in proc.stderr
    both = _symphony(env, "run", str(TEXT_REPORT), "--server", "unix:///x", "--socket", "/x")
    assert both.returncode == 2 and "not both" in both.stderr
    absent = _symphony(
        env, "run", str(TEXT_REPORT), "--input", "document=x", "--socket", str(sock_dir / "none.sock")
    )
    assert absent.returncode == 1 and "error:" in absent.stderr and "Traceback" not in absent.stderr


def test_a_template_runs_on_the_server_with_parameters_typed_there(
    env: dict[str, str],  # noqa: F811
    served: tuple[subprocess.Popen[str], Path],
) -> None:
    _server, sock = served
    args = ["run", "document-stats", "-p", "title=README", "-p", "top=3", "--input", "document=hello"]
    proc = _symphony(env, *args, "--socket", str(sock), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["state"] == "completed"
    bad = _symphony(
        env, "run", "document-stats", "-p", "top=lots", "--input", "document=x", "--socket", str(sock)
    )
    assert bad.returncode == 1 and "'top'" in bad.stderr and "integer" in bad.stderr
    malformed = _symphony(
        env,
        "bus",
        "--socket",
        str(sock),
        "request",
        "run.submit",
        '{"template": "document-stats", "param_text": {"top": 3}}',
    )
    assert malformed.returncode == 1 and "param_text" in malformed.stderr
