"""Bus over a Unix socket vs pyzmq over ipc: request/response latency and one-way throughput.

    .venv/bin/python tests/benchmarks/bench_bus_transport.py

Each figure is measured beside its anchor in the same run, servers in separate processes:

* ``bus.unix.request_p50`` / ``_p99``: ``BusClient.request`` -> ``BusServer`` -> a bus handler
  -> reply, msgpack codec, against pyzmq REQ/REP over ``ipc://`` (blocking sockets, raw bytes:
  the strictest anchor). Rounds alternate between the two so machine noise hits both alike,
  and each round starts with unrecorded requests so neither side pays for the switch.
  Target (DESIGN.md §6): p50 <= pyzmq p50 and < 0.3 ms. The bus runs with its default busy
  polling (:mod:`symphony_bus_remote._busypoll`, 100 µs): the client's reader polls only while
  a request of its own awaits the answer, within 100 µs of sending it, and the server's for
  100 µs after each answer it sends (and neither once polling stops catching). The same
  figure with busy polling off on both ends is printed as
  ``bus.unix.request_p50.no_busy_poll``, and ``bus.unix.request_cpu`` gives the CPU time
  (client + server process) per request with polling beside the same without it (pyzmq's in
  ``pyzmq_cpu``); ``bus.unix.request_cpu.sparse`` the same for requests 2 ms apart, where
  polling must cost no CPU between requests.
* ``bus.unix.killed_peer_noticed`` / ``hung_peer_noticed``: the worst of 5 trials, from the
  server's death (SIGKILL) or hang (SIGSTOP) to the failure (``transport.peer_lost``) of a
  request waiting for it. Target (M1): a dead peer is noticed within 100 ms. A hung one is
  noticed after ``heartbeat_timeout`` (tight here, 60 ms; 3 s by default).
* ``bus.unix.oneway_throughput``: events sent with ``BusClient.send_many`` (batches of 256, one
  write per batch), decoded and published on the server bus, where a subscriber counts them;
  against pyzmq PUSH/PULL carrying the same msgpack-encoded payloads. Target >= 100,000 msg/s.

The asyncio figures use uvloop when it is installed (``pip install uvloop``; anyio's
``use_uvloop`` backend option), as ``symphony serve`` does; the trio latency is printed too.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _report import emit, log, percentile

ROUNDS = 12
PER_ROUND = 300
WARMUP = 300
ROUND_WARMUP = 50
LOSS_TRIALS = 5
HUNG_INTERVAL = 0.02
HUNG_TIMEOUT = 0.06
SPARSE_N = 300
SPARSE_GAP = 0.002
ONEWAY_N = 200_000
BATCH = 256
PAYLOAD = {"i": 0, "data": "x" * 100}
SMALL = {"i": 0, "data": "x" * 32}


def _uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _backend_options(backend: str) -> dict[str, Any]:
    return {"use_uvloop": True} if backend == "asyncio" and _uvloop() else {}


def _anyio_backend(backend: str) -> str:
    return "asyncio" if backend == "asyncio-plain" else backend


# -- servers (run as child processes of this script) ---------------------------------------------


def serve_bus(url: str, backend: str, busy_poll: float | None = None) -> None:
    import anyio

    from symphony.bus._core import Bus
    from symphony.bus._message import Message
    from symphony_bus_remote import BusServer

    async def main() -> None:
        counted = [0]

        async def slow(msg: Message) -> Any:
            await anyio.sleep(600)

        async def echo(msg: Message) -> Any:
            return msg.payload

        def count(msg: Message) -> int:
            return counted[0]

        def on_event(msg: Message) -> None:
            counted[0] += 1

        config: dict[str, Any] = {"validate_inbound": False}
        if busy_poll is not None:
            config["busy_poll"] = busy_poll
        async with Bus(config=config) as bus:
            bus.handle("bench.echo", echo)
            bus.handle("bench.count", count)
            bus.handle("bench.slow", slow)
            bus.subscribe_callback("bench.event", on_event)
            async with BusServer(bus, url, heartbeat_interval=5, heartbeat_timeout=60) as server:
                print(f"READY {server.url}", flush=True)
                await anyio.sleep_forever()

    anyio.run(main, backend=_anyio_backend(backend), backend_options=_backend_options(backend))


def serve_zmq(rep_url: str, pull_url: str, done_url: str) -> None:
    import msgpack
    import zmq

    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.bind(rep_url)
    pull = ctx.socket(zmq.PULL)
    pull.bind(pull_url)
    done = ctx.socket(zmq.PUSH)
    done.bind(done_url)
    poller = zmq.Poller()
    poller.register(rep, zmq.POLLIN)
    poller.register(pull, zmq.POLLIN)
    print("READY zmq", flush=True)
    count = 0
    unpackb = msgpack.unpackb
    while True:
        for sock, _ in poller.poll():
            if sock is rep:
                rep.send(rep.recv())
            else:
                while True:
                    try:
                        data = pull.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if data == b"END":
                        done.send(str(count).encode())
                        count = 0
                    else:
                        unpackb(data)
                        count += 1


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "READY":
        proc.kill()
        raise RuntimeError(f"server {args} did not start")
    return proc, line[1]


# -- the measurements ----------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """CPU seconds a process has run so far, all its threads (nanosecond schedstat counters)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total / 1e9


class _Side:
    """One contender of the latency run: its samples and the CPU both processes spent."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.samples: list[float] = []
        self.cpu = 0.0
        self.requests = 0
        self.sparse_cpu = 0.0
        self.sparse_requests = 0

    def cpu_per_request_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else 0.0

    def sparse_cpu_per_request_us(self) -> float:
        return self.sparse_cpu / self.sparse_requests * 1e6 if self.sparse_requests else 0.0


async def _latency(
    url: str,
    zmq_url: str | None,
    *,
    quiet_url: str | None = None,
    pids: dict[str, int] | None = None,
    sparse: bool = False,
) -> dict[str, _Side]:
    """Alternate rounds of bus requests (and pyzmq REQ/REP, and bus requests with busy polling
    off, when their addresses are given); return each side's samples and CPU cost. ``sparse``:
    then send requests :data:`SPARSE_GAP` apart on each bus link and measure their CPU cost."""
    import anyio

    from symphony_bus_remote import BusClient

    pids = pids or {}
    sides = {"bus": _Side(pids.get("bus"))}
    req = None
    if zmq_url is not None:
        import msgpack
        import zmq

        req = zmq.Context.instance().socket(zmq.REQ)
        req.connect(zmq_url)
        body = msgpack.packb(PAYLOAD)
        sides["zmq"] = _Side(pids.get("zmq"))
    perf = time.perf_counter
    clients = {"bus": BusClient.connect(url, codec="msgpack", heartbeat_interval=5, heartbeat_timeout=60)}
    if quiet_url is not None:
        sides["quiet"] = _Side(pids.get("quiet"))
        clients["quiet"] = BusClient.connect(
            quiet_url,
            codec="msgpack",
            heartbeat_interval=5,
            heartbeat_timeout=60,
            options={"busy_poll": 0},
        )

    def cpu_now(side: _Side) -> float:
        server = _process_cpu(side.server_pid) if side.server_pid else 0.0
        return _process_cpu(os.getpid()) + server

    async with AsyncExitStack() as stack:
        links = {name: await stack.enter_async_context(cm) for name, cm in clients.items()}

        async def bus_round(name: str, count: int, record: bool) -> None:
            client = links[name]
            side = sides[name]
            c0 = cpu_now(side) if record else 0.0
            for _ in range(count):
                t0 = perf()
                await client.request("bench.echo", PAYLOAD)
                if record:
                    side.samples.append(perf() - t0)
            if record:
                side.cpu += cpu_now(side) - c0
                side.requests += count

        def zmq_round(count: int, record: bool) -> None:
            assert req is not None
            side = sides["zmq"]
            c0 = cpu_now(side) if record else 0.0
            for _ in range(count):
                t0 = perf()
                req.send(body)
                msgpack.unpackb(req.recv())
                if record:
                    side.samples.append(perf() - t0)
            if record:
                side.cpu += cpu_now(side) - c0
                side.requests += count

        for name in links:
            await bus_round(name, WARMUP, False)
        if req is not None:
            zmq_round(WARMUP, False)
        for _ in range(ROUNDS):
            if req is not None:
                zmq_round(ROUND_WARMUP, False)
                zmq_round(PER_ROUND, True)
            for name in links:
                await bus_round(name, ROUND_WARMUP, False)
                await bus_round(name, PER_ROUND, True)
        if sparse:
            # Requests far apart: busy polling must not burn CPU between them.
            for name, client in links.items():
                side = sides[name]
                c0 = cpu_now(side)
                for _ in range(SPARSE_N):
                    await client.request("bench.echo", PAYLOAD)
                    await anyio.sleep(SPARSE_GAP)
                side.sparse_cpu += cpu_now(side) - c0
                side.sparse_requests += SPARSE_N
    if req is not None:
        req.close(linger=0)
    return sides


async def _peer_loss(folder: Path, how: str, trials: int) -> list[float]:
    """Seconds from the server's death (SIGKILL) or hang (SIGSTOP) to the failure of a request
    that is waiting for it, over ``trials`` fresh server processes."""
    import anyio

    from symphony.commons.errors import TransportError
    from symphony_bus_remote import BusClient

    samples: list[float] = []
    for trial in range(trials):
        proc, bound = _start(["--serve-bus", f"unix://{folder}/loss-{how}-{trial}.sock", "--backend", "asyncio"])
        try:
            async with BusClient.connect(
                bound, reconnect=False, heartbeat_interval=HUNG_INTERVAL, heartbeat_timeout=HUNG_TIMEOUT
            ) as client:
                failed: dict[str, Any] = {}

                async def ask(failed: dict[str, Any] = failed) -> None:
                    try:
                        await client.request("bench.slow", timeout=30)
                    except TransportError as exc:
                        failed["at"] = time.perf_counter()
                        failed["code"] = exc.code

                async with anyio.create_task_group() as tg:
                    tg.start_soon(ask)
                    await anyio.sleep(0.05)  # the request is in flight, its handler waiting
                    t0 = time.perf_counter()
                    os.kill(proc.pid, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
                assert failed.get("code") == "transport.peer_lost", failed
                samples.append(failed["at"] - t0)
        finally:
            proc.kill()
            if how == "hung":
                os.kill(proc.pid, signal.SIGCONT)
            proc.wait()
    return samples


async def _bus_oneway(url: str) -> float:
    from symphony.bus._message import Message
    from symphony_bus_remote import BusClient

    async with BusClient.connect(url, codec="msgpack", heartbeat_interval=5, heartbeat_timeout=60) as client:
        before = (await client.request("bench.count", timeout=30)).payload
        t0 = time.perf_counter()
        sent = 0
        while sent < ONEWAY_N:
            n = min(BATCH, ONEWAY_N - sent)
            await client.send_many([Message("bench.event", SMALL) for _ in range(n)])
            sent += n
        after = (await client.request("bench.count", timeout=120)).payload  # behind every event on the link
        elapsed = time.perf_counter() - t0
    assert after - before == ONEWAY_N, (before, after)
    return ONEWAY_N / elapsed


def _zmq_oneway(pull_url: str, done_url: str) -> float:
    import msgpack
    import zmq

    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.connect(pull_url)
    done = ctx.socket(zmq.PULL)
    done.connect(done_url)
    time.sleep(0.2)
    packb = msgpack.packb
    t0 = time.perf_counter()
    for i in range(ONEWAY_N):
        push.send(packb({"i": i, "data": SMALL["data"]}))
    push.send(b"END")
    count = int(done.recv())
    elapsed = time.perf_counter() - t0
    assert count == ONEWAY_N, count
    push.close(linger=0)
    done.close(linger=0)
    return ONEWAY_N / elapsed


def main() -> None:
    import anyio

    start = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="symbench-", dir="/tmp"))
    url = f"unix://{folder}/bus.sock"
    trio_url = f"unix://{folder}/bus-trio.sock"
    zmq_urls = [f"ipc://{folder}/rep.ipc", f"ipc://{folder}/pull.ipc", f"ipc://{folder}/done.ipc"]
    procs: list[subprocess.Popen[str]] = []
    try:
        bus_proc, bound = _start(["--serve-bus", url, "--backend", "asyncio"])
        procs.append(bus_proc)
        quiet_proc, quiet_bound = _start(
            ["--serve-bus", f"unix://{folder}/bus-quiet.sock", "--backend", "asyncio", "--busy-poll", "0"]
        )
        procs.append(quiet_proc)
        trio_proc, trio_bound = _start(["--serve-bus", trio_url, "--backend", "trio"])
        procs.append(trio_proc)
        plain_bound = ""
        if _uvloop():
            plain_proc, plain_bound = _start(
                ["--serve-bus", f"unix://{folder}/bus-plain.sock", "--backend", "asyncio-plain"]
            )
            procs.append(plain_proc)
        zmq_proc, _ = _start(["--serve-zmq", *zmq_urls])
        procs.append(zmq_proc)
        loop = "uvloop" if _uvloop() else "asyncio"
        log(
            f"latency: {ROUNDS} rounds x {PER_ROUND} requests (+{ROUND_WARMUP} unrecorded each), bus ({loop}),"
            " pyzmq REQ/REP and bus without busy polling alternating"
        )
        sides = anyio.run(
            functools.partial(
                _latency,
                bound,
                zmq_urls[0],
                quiet_url=quiet_bound,
                pids={"bus": bus_proc.pid, "zmq": zmq_proc.pid, "quiet": quiet_proc.pid},
                sparse=True,
            ),
            backend_options=_backend_options("asyncio"),
        )
        bus_lat, zmq_lat, quiet_lat = sides["bus"].samples, sides["zmq"].samples, sides["quiet"].samples
        zmq_p50, zmq_p99 = percentile(zmq_lat, 50), percentile(zmq_lat, 99)
        emit(
            "bus.unix.request_p50",
            percentile(bus_lat, 50) * 1e3,
            "ms",
            baseline="pyzmq REQ/REP ipc p50",
            baseline_value=zmq_p50 * 1e3,
            target="<= pyzmq p50 and < 0.3 ms",
            check=lambda v, r: r is not None and r <= 1 and v < 0.3,
            loop=loop,
            busy_poll="100us (default): the client while its answer is awaited, the server after it answers",
            samples=len(bus_lat),
        )
        emit(
            "bus.unix.request_p99",
            percentile(bus_lat, 99) * 1e3,
            "ms",
            baseline="pyzmq REQ/REP ipc p99",
            baseline_value=zmq_p99 * 1e3,
            loop=loop,
        )
        emit(
            "bus.unix.request_p50.no_busy_poll",
            percentile(quiet_lat, 50) * 1e3,
            "ms",
            baseline="pyzmq REQ/REP ipc p50",
            baseline_value=zmq_p50 * 1e3,
            loop=loop,
            busy_poll="off (both ends)",
        )
        emit(
            "bus.unix.request_cpu",
            sides["bus"].cpu_per_request_us(),
            "us/request",
            baseline="the same with busy polling off (both ends)",
            baseline_value=sides["quiet"].cpu_per_request_us(),
            pyzmq_cpu=round(sides["zmq"].cpu_per_request_us(), 1),
            note="client + server process CPU per request, back-to-back requests; only the client"
            " polls, while its answer is awaited",
        )
        emit(
            "bus.unix.request_cpu.sparse",
            sides["bus"].sparse_cpu_per_request_us(),
            "us/request",
            baseline="the same with busy polling off",
            baseline_value=sides["quiet"].sparse_cpu_per_request_us(),
            note=f"requests {SPARSE_GAP * 1e3:g} ms apart: nothing polls between them (nothing is"
            " outstanding); the client polls at most one window per request while its answer comes",
        )
        variants = [("trio", trio_bound, "trio", {})]
        if _uvloop():
            variants.insert(0, ("asyncio_without_uvloop", plain_bound, "asyncio", {}))
        for suffix, variant_url, variant_loop, options in variants:
            samples = anyio.run(_latency, variant_url, None, backend=variant_loop, **options)["bus"].samples
            emit(
                f"bus.unix.request_p50.{suffix}",
                percentile(samples, 50) * 1e3,
                "ms",
                baseline="pyzmq REQ/REP ipc p50",
                baseline_value=zmq_p50 * 1e3,
                loop=variant_loop,
            )

        log(f"peer loss: {LOSS_TRIALS} servers killed, {LOSS_TRIALS} hung, each with a request in flight")
        for how, target, note in (
            ("killed", "< 100 ms", "SIGKILL: the socket's end of file fails the request"),
            (
                "hung",
                None,
                f"SIGSTOP: heartbeats notice the silence (heartbeat_interval={HUNG_INTERVAL}, "
                f"heartbeat_timeout={HUNG_TIMEOUT}; the defaults are 1 s and 3 s)",
            ),
        ):
            loss = anyio.run(
                functools.partial(_peer_loss, folder, how, LOSS_TRIALS), backend_options=_backend_options("asyncio")
            )
            emit(
                f"bus.unix.{how}_peer_noticed",
                max(loss) * 1e3,
                "ms",
                target=target,
                check=(lambda v, r: v < 100) if target else None,
                median=round(percentile(loss, 50) * 1e3, 3),
                trials=LOSS_TRIALS,
                note=note,
            )

        log(f"one-way: {ONEWAY_N} events, batches of {BATCH}")
        zmq_rate = _zmq_oneway(zmq_urls[1], zmq_urls[2])
        bus_rate = anyio.run(_bus_oneway, bound, backend_options=_backend_options("asyncio"))
        emit(
            "bus.unix.oneway_throughput",
            bus_rate,
            "msg/s",
            baseline="pyzmq PUSH/PULL ipc (msgpack payloads)",
            baseline_value=zmq_rate,
            target=">= 100000 msg/s",
            check=lambda v, r: v >= 100_000,
            loop=loop,
            batch=BATCH,
        )
        log(
            f"bus/pyzmq throughput ratio: {bus_rate / zmq_rate:.2f}; total {time.perf_counter() - start:.1f}s"
        )
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


async def _tcp_same_process(samples: int = 3000) -> float:
    """p50 seconds of a request over TCP loopback to a BusServer in this very process."""
    from symphony.bus import Bus
    from symphony_bus_remote import BusClient, BusServer

    token = {"token": "bench-token-of-some-length"}
    async with Bus() as bus, BusServer(bus, "tcp://127.0.0.1:0", options=token) as server:
        bus.handle("demo.echo", lambda msg: msg.payload)
        assert server.url is not None
        async with BusClient.connect(server.url, options=token) as client:
            for _ in range(300):
                await client.request("demo.echo", 1)
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                await client.request("demo.echo", 1)
                times.append(time.perf_counter() - t0)
    return percentile(times, 50)


def bench_tcp_same_process() -> None:
    """TCP loopback within one process: busy polling off (the peer is recognised) against on."""
    import anyio

    import symphony_bus_remote._socket_stream as socket_stream

    options = _backend_options("asyncio")
    detected = anyio.run(_tcp_same_process, backend_options=options)
    real = socket_stream.peer_is_this_process
    socket_stream.peer_is_this_process = lambda sock: False  # as if the peer were elsewhere
    try:
        polling = anyio.run(_tcp_same_process, backend_options=options)
    finally:
        socket_stream.peer_is_this_process = real
    emit(
        "bus.tcp.request_p50.same_process",
        detected * 1e3,
        "ms",
        baseline="the same with busy polling towards the in-process peer",
        baseline_value=polling * 1e3,
        loop="uvloop" if options else "asyncio",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-bus", metavar="URL")
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--busy-poll", type=float, default=None, help="[bus] busy_poll of the served bus")
    parser.add_argument("--serve-zmq", nargs=3, metavar=("REP", "PULL", "DONE"))
    ns = parser.parse_args()
    if ns.serve_bus:
        serve_bus(ns.serve_bus, ns.backend, ns.busy_poll)
    elif ns.serve_zmq:
        serve_zmq(*ns.serve_zmq)
    else:
        os.environ.setdefault("SYMPHONY_LOG_LEVEL", "warning")
        main()
        bench_tcp_same_process()
