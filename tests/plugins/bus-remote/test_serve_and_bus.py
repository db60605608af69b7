"""`symphony serve` and `symphony bus ...` as a person runs them: real processes, a real socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SYMPHONY = str(Path(sys.executable).parent / "symphony")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    sock = Path(os.environ.get("TMPDIR", "/tmp")) / f"sy-{os.getpid()}-{time.monotonic_ns() % 10**8}.sock"
    proc = subprocess.Popen(
        [SYMPHONY, "serve", "--socket", str(sock)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until listening (or the process dies)
    try:
        assert line.startswith("listening on unix://"), (
            line,
            proc.stderr.read() if proc.poll() is not None else "",
        )
        yield f"unix://{sock}", sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def bus(url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYMPHONY, "bus", "--url", url, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_socket_is_private(server: tuple[str, Path]) -> None:
    _, sock = server
    assert sock.stat().st_mode & 0o777 == 0o600


def test_request_ping_and_plugins(server: tuple[str, Path]) -> None:
    url, _ = server
    proc = bus(url, "request", "symphony.ping")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pong"] is True
    proc = bus(url, "request", "symphony.plugins", "--json")
    envelope = json.loads(proc.stdout)
    assert envelope["kind"] == "response"
    assert "symphony-textstats" in {p["id"] for p in envelope["p"]}


def test_errors_cross_to_the_command_line(server: tuple[str, Path]) -> None:
    url, _ = server
    proc = bus(url, "request", "no.such.handler", '{"x": 1}')
    assert proc.returncode == 1
    assert "bus.no_route" in proc.stderr
    bad = bus(url, "request", "symphony.ping", "{not json")
    assert bad.returncode == 1 and "PAYLOAD is not JSON" in bad.stderr


def _monitor_output(url: str, args: list[str], poke: list[str]) -> str:
    """Run ``symphony bus monitor ARGS`` and repeat the ``symphony bus POKE`` command until the
    monitor (subscribed at some point) has shown its --count messages and exited; its stdout."""
    monitor = subprocess.Popen(
        [SYMPHONY, "bus", "--url", url, "monitor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while monitor.poll() is None and time.monotonic() < deadline:
            assert bus(url, *poke).returncode == 0
            try:
                out, err = monitor.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out, err = monitor.communicate(timeout=5)
        assert monitor.returncode == 0, err
        return out
    finally:
        if monitor.poll() is None:
            monitor.kill()


def test_monitor_sees_what_send_publishes(server: tuple[str, Path]) -> None:
    url, _ = server
    out = _monitor_output(url, ["demo.#", "--count", "1", "--json"], ["send", "demo.tick", '{"n": 7}'])
    envelope = json.loads(out.splitlines()[0])
    assert envelope["type"] == "demo.tick" and envelope["p"] == {"n": 7}


def test_monitor_shows_requests_with_their_answers(server: tuple[str, Path]) -> None:
    url, _ = server
    out = _monitor_output(url, ["symphony.ping", "--count", "2", "--json"], ["request", "symphony.ping"])
    request, response = (json.loads(line) for line in out.splitlines()[:2])
    assert (request["kind"], response["kind"]) == ("request", "response")
    assert response["cid"] == request["id"] and response["p"]["pong"] is True
    # --events leaves requests out: nothing to show, so it is still waiting when we stop it
    events = subprocess.Popen(
        [SYMPHONY, "bus", "--url", url, "monitor", "symphony.ping", "--count", "2", "--events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        assert bus(url, "request", "symphony.ping").returncode == 0
        with pytest.raises(subprocess.TimeoutExpired):
            events.communicate(timeout=1.0)
    finally:
        events.kill()
        events.communicate()


def test_no_server_is_a_clear_transport_error(tmp_path: Path) -> None:
    proc = bus(f"unix://{tmp_path / 'absent.sock'}", "request", "symphony.ping")
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_monitor_lines_link_answers_to_requests_and_escape_markup() -> None:
    from rich.console import Console

    from symphony.bus._message import Message
    from symphony.commons.errors import NotFoundError
    from symphony_bus_remote._bus_cmd import _traffic_line

    request = Message.request("users.lookup", {"name": "[bold]ada"})
    lines = [
        _traffic_line(request),
        _traffic_line(request.reply({"ok": True})),
        _traffic_line(request.fail(NotFoundError("no user", code="users.unknown", context={}))),
        _traffic_line(Message("demo.tick", {"n": 1})),
    ]
    console = Console(width=200, record=True, color_system=None)
    for line in lines:
        console.print(line, soft_wrap=True)
    request_line, response_line, error_line, event_line = console.export_text().splitlines()
    short = request.id[:8]
    assert "request " in request_line and f"#{short}" in request_line
    assert '"[bold]ada"' in request_line  # the payload's brackets are shown, not taken as markup
    assert "response" in response_line and f"→ #{short}" in response_line and '"ok": true' in response_line
    assert "error" in error_line and f"→ #{short}" in error_line and "users.unknown: no user" in error_line
    assert "event" in event_line and "demo.tick" in event_line and "#" not in event_line


def test_help_lists_serve_and_bus_from_the_manifest_without_importing_the_plugin() -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from symphony.cli._context import CliState\n"
        "from symphony.cli.main import cli\n"
        "result = CliRunner().invoke(cli, ['--help'], obj=CliState(), terminal_width=200)\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "print('imported' if 'symphony_bus_remote' in sys.modules else 'not imported')\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:1] == ["serve"] and "serves the message bus" in line for line in lines)
    assert any(line.split()[:1] == ["bus"] and "monitor messages" in line for line in lines)
    assert lines[-1] == "not imported"


def test_the_wheel_ships_the_manifest_with_both_commands(tmp_path: Path) -> None:
    import tomllib
    import zipfile

    dist = Path(__file__).resolve().parents[3] / "plugins" / "bus-remote"
    proc = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=dist,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = tmp_path.glob("symphony_bus_remote-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("symphony_bus_remote/symphony.toml").decode())
    assert "symphony_bus_remote/py.typed" in names
    assert not any(name.startswith("symphony/") for name in names)  # nothing of core's
    assert [c["name"] for c in manifest["plugin"]["commands"]] == ["serve", "bus"]


def _start_serve(sock: Path, *, limit: int | None = None) -> subprocess.Popen[str]:
    def lower_limit() -> None:
        import resource

        if limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    proc = subprocess.Popen(
        [SYMPHONY, "serve", "--socket", str(sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lower_limit,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on unix://"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts descriptors in /proc")
def test_serve_survives_running_out_of_file_descriptors() -> None:
    """Issue #10.2: accepting with no descriptor left is logged and serving goes on (nothing on
    the accept path is imported lazily, which would need a descriptor too)."""
    import socket as socket_module

    sock = Path("/tmp") / f"sy-fd-{os.getpid()}-{time.monotonic_ns() % 10**8}.sock"
    probe = _start_serve(sock)
    try:
        time.sleep(0.5)
        in_use = len(os.listdir(f"/proc/{probe.pid}/fd"))
    finally:
        _stop(probe)
    # Room for exactly one accepted connection: the first accept takes the last descriptor.
    proc = _start_serve(sock, limit=in_use + 1)
    clients: list[socket_module.socket] = []
    try:
        for _ in range(30):
            client = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
            client.connect(str(sock))
            clients.append(client)
        time.sleep(1.0)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        for client in clients:
            client.close()
        clients.clear()
        deadline = time.monotonic() + 30
        while True:  # the backlog drains as descriptors come free
            answer = bus(f"unix://{sock}", "request", "symphony.ping", "--timeout", "2")
            if answer.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["pong"] is True
    finally:
        for client in clients:
            client.close()
        err = _stop(proc)
    assert proc.returncode == 0, err
    assert "transport.accept_error" in err and "Too many open files" in err  # it did run out
    assert "Traceback" not in err and "plugin symphony-bus-remote failed" not in err


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"SYMPHONY_BUS__MAX_FRAME_SIZE": "99999999999999999999"}, "bus.max_frame_size"),
        ({"SYMPHONY_BUS__HEARTBEAT_INTERVAL": "10"}, "bus.heartbeat_interval"),
        ({"SYMPHONY_BUS__CODEC": "nope"}, "bus.codec"),
    ],
)
def test_serve_checks_its_settings_before_it_says_listening(env: dict[str, str], key: str) -> None:
    """Issue #10.8: a value the server cannot honour is a config error (exit 4), and nothing
    says "listening"."""
    sock = Path("/tmp") / f"sy-cfg-{os.getpid()}-{time.monotonic_ns() % 10**8}.sock"
    proc = subprocess.run(
        [SYMPHONY, "serve", "--socket", str(sock)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    assert "listening" not in proc.stdout
    assert key in proc.stderr and "Traceback" not in proc.stderr
    assert not sock.exists()


def bus_at(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``symphony bus --socket SOCK ARGS``, as a user types it."""
    return subprocess.run(
        [SYMPHONY, "bus", "--socket", str(sock), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _sock_path(tag: str) -> Path:
    return Path("/tmp") / f"sy-{tag}-{os.getpid()}-{time.monotonic_ns() % 10**8}.sock"


def _wait_monitoring(monitor: subprocess.Popen[str]) -> None:
    assert monitor.stdout is not None
    line = monitor.stdout.readline()  # printed once subscribed
    assert line.startswith("monitoring"), (line, monitor.stderr.read() if monitor.stderr else "")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "SIGSTOP"])
def test_monitor_notices_that_the_server_died(how: str) -> None:
    """Issue #9: a monitor exits with a clear message when its server stops, dies, or hangs
    (a stopped server is noticed by the heartbeat, 3 s of silence by default)."""
    sock = _sock_path("mon")
    proc = _start_serve(sock)
    monitor = subprocess.Popen(
        [SYMPHONY, "bus", "--socket", str(sock), "monitor"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        _wait_monitoring(monitor)
        proc.send_signal(getattr(signal, how))
        _, err = monitor.communicate(timeout=30)
    finally:
        if monitor.poll() is None:
            monitor.kill()
        if how == "SIGSTOP":
            proc.send_signal(signal.SIGCONT)
        _stop(proc)
    assert monitor.returncode == 1, err
    assert "the server went away" in err and "bus.server_gone" in err and "Traceback" not in err


def test_request_to_a_hung_then_dead_server_fails_within_the_heartbeat_timeout() -> None:
    sock = _sock_path("req")
    proc = _start_serve(sock)
    try:
        proc.send_signal(signal.SIGSTOP)  # accepts nothing, answers nothing
        hung = subprocess.Popen(
            [SYMPHONY, "bus", "--socket", str(sock), "request", "symphony.ping", "--timeout", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, err = hung.communicate(timeout=60)  # far less than the request's own 600 s
        finally:
            if hung.poll() is None:
                hung.kill()
        assert hung.returncode == 1, err
        assert "Traceback" not in err and ("bus.server_gone" in err or "handshake" in err), err
    finally:
        proc.send_signal(signal.SIGCONT)
        _stop(proc)


_SLOW_HANDLER = """
import sys, anyio
from symphony_bus_remote import BusClient

async def main():
    async with BusClient.connect(sys.argv[1], reconnect=False) as client:
        async def never(msg):
            await anyio.sleep(3600)
        await client.handle("demo.never", never)
        print("ready", flush=True)
        await anyio.sleep(3600)

try:
    anyio.run(main)
except Exception:
    pass
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_request_waiting_on_a_server_that_dies_or_hangs_mid_request_fails(how: str) -> None:
    """Issue #9: `bus request` in flight when the server dies exits at once, and when it hangs,
    after the heartbeat timeout -- not after its own --timeout."""
    sock = _sock_path("mid")
    proc = _start_serve(sock)
    helper = subprocess.Popen(
        [sys.executable, "-c", _SLOW_HANDLER, f"unix://{sock}"], stdout=subprocess.PIPE, text=True
    )
    request = None
    try:
        assert helper.stdout is not None and helper.stdout.readline().strip() == "ready"
        request = subprocess.Popen(
            [SYMPHONY, "bus", "--socket", str(sock), "request", "demo.never", "--timeout", "600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # the request is in flight: the server routed it to the helper
        assert request.poll() is None
        proc.send_signal(getattr(signal, how))
        _, err = request.communicate(timeout=60)
    finally:
        for child in (request, helper):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
        if how == "SIGSTOP":
            proc.send_signal(signal.SIGCONT)
        _stop(proc)
    assert request.returncode == 1, err
    assert "the server went away" in err and "bus.server_gone" in err and "Traceback" not in err


def test_socket_option_on_both_sides_and_url_usage_errors() -> None:
    sock = _sock_path("opt")
    proc = _start_serve(sock)
    try:
        ping = bus_at(sock, "request", "symphony.ping")
        assert ping.returncode == 0 and json.loads(ping.stdout)["pong"] is True, ping.stderr
        for bad in ["garbage", "unix://relative-host/x", "tcp://nohost", "tcp://127.0.0.1:99999", "http:"]:
            proc_bad = bus(bad, "request", "symphony.ping")
            assert proc_bad.returncode == 2, (bad, proc_bad.stderr)
            assert "--url" in proc_bad.stderr and "Traceback" not in proc_bad.stderr
        both = bus_at(sock, "--url", f"unix://{sock}", "request", "symphony.ping")
        assert both.returncode == 2 and "either --socket or --url" in both.stderr
    finally:
        _stop(proc)


def test_routes_lists_what_the_server_answers_including_plugin_handlers() -> None:
    """Issue #9: a plugin exposes a handler with `symphony_register_bus_handlers` (the example
    textstats plugin answers `textstats.analyze`); `bus routes` lists it with the built-ins."""
    sock = _sock_path("routes")
    proc = _start_serve(sock)
    try:
        listed = bus_at(sock, "routes", "--json")
        assert listed.returncode == 0, listed.stderr
        routes = {r["pattern"]: r for r in json.loads(listed.stdout)}
        assert {"symphony.ping", "symphony.plugins", "symphony.routes", "textstats.analyze"} <= set(routes)
        assert routes["textstats.analyze"]["summary"].startswith("Statistics of a text")
        plain = bus_at(sock, "routes")
        assert plain.returncode == 0 and "textstats.analyze\thandler:textstats.analyze" in plain.stdout
        answer = bus_at(sock, "request", "textstats.analyze", '{"text": "the cat and the hat"}')
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["words"] == 5
        refused = bus_at(sock, "request", "textstats.analyze", "42")
        assert refused.returncode == 1 and "textstats.bad_request" in refused.stderr
    finally:
        _stop(proc)


def test_served_socket_is_the_setting_or_the_platform_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from symphony_bus_remote import served_socket

    assert served_socket("/tmp/x.sock") == Path("/tmp/x.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert served_socket(None) == tmp_path / "symphony" / "bus.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert served_socket("").name == "bus.sock" and served_socket("").parent.name.startswith("symphony-")
