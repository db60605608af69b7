"""Kernel benchmarks (DESIGN.md §6).

1. Kernel start: ``symphony plugins list --json`` as a whole process with 200 installed plugin
   distributions whose import costs ~2 ms each and a warm discovery index, beside the eager
   anchor — a process doing ``importlib.metadata.entry_points`` + import + pluggy register of
   the same 200. Target: ratio <= 0.3.
2. Hook call overhead: ``kernel.hook.<name>()`` with 5 implementations beside a plain pluggy
   ``PluginManager`` with the same 5. Target: ratio <= 1.2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import emit, log, median, time_per_call

N_PLUGINS = 200
RUNS = 9
IMPORT_COST = """
import time as _t
_end = _t.perf_counter() + 0.002
while _t.perf_counter() < _end:  # stands in for the ~2 ms a real plugin's imports cost
    pass

from symphony.hookspecs import hookimpl

@hookimpl
def symphony_activate(kernel):
    pass
"""

EAGER = """
import pluggy
from importlib.metadata import entry_points
pm = pluggy.PluginManager("symphony")
n = 0
for ep in entry_points(group="symphony.plugins"):
    if ep.name.startswith("bench-p"):
        pm.register(ep.load(), name=ep.name)
        n += 1
assert n == {n}, n
"""


def make_site(root: Path) -> None:
    from symphony_sdk.testing import write_plugin_distribution

    for i in range(N_PLUGINS):
        write_plugin_distribution(
            root,
            f"bench-p{i:03d}",
            manifest={"provides": [f"service:bench-{i}"], "summary": f"benchmark plugin {i}"},
            module_source=IMPORT_COST,
        )


def timed_process(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{args} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def bench_start() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        make_site(root)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(root)
        env["SYMPHONY_CACHE_DIR"] = str(Path(tmp) / "cache")
        env["SYMPHONY_USER_CONFIG"] = str(Path(tmp) / "user.toml")
        env.pop("SYMPHONY_CONFIG_DIR", None)
        symphony = [str(Path(sys.executable).parent / "symphony"), "plugins", "list", "--json"]
        eager = [sys.executable, "-c", EAGER.format(n=N_PLUGINS)]
        cold = timed_process(symphony, env)  # builds the index
        ours, anchor = [], []
        for _ in range(RUNS):
            ours.append(timed_process(symphony, env))
            anchor.append(timed_process(eager, env))
        emit(
            "kernel_start_200_plugins_warm_index",
            median(ours) * 1000,
            "ms",
            baseline="eager entry_points+import+pluggy register (process)",
            baseline_value=median(anchor) * 1000,
            target="ratio <= 0.3",
            check=lambda v, r: r is not None and r <= 0.3,
            cold_index_ms=round(cold * 1000, 1),
            runs=RUNS,
        )
        bare = [sys.executable, "-c", "pass"]
        emit("python_process_floor", median([timed_process(bare, env) for _ in range(RUNS)]) * 1000, "ms")


def bench_hook_overhead() -> None:
    import pluggy

    from symphony import hookspecs
    from symphony.kernel import Kernel
    from symphony.plugins.manifest import parse_manifest

    class Specs:
        @hookspecs.hookspec
        def symphony_bench_probe(self, value: int) -> int:  # type: ignore[empty-body]
            """Benchmark hook."""

    def make_impl(i: int) -> object:
        class Impl:
            @hookspecs.hookimpl
            def symphony_bench_probe(self, value: int) -> int:
                return value + i

        return Impl()

    impls = [make_impl(i) for i in range(5)]
    plain = pluggy.PluginManager("symphony")
    plain.add_hookspecs(Specs)
    for i, impl in enumerate(impls):
        plain.register(impl, name=f"impl-{i}")
    specs = [
        (
            parse_manifest(
                {"plugin": {"id": f"impl-{i}", "version": "1", "kind": "service", "api": ">=0.1"}}
            ),
            impl,
        )
        for i, impl in enumerate(impls)
    ]
    kernel = Kernel.create(autoload=False, plugins=specs)
    kernel.add_hookspecs(Specs)
    for i in range(5):
        kernel.activate(f"impl-{i}")
    assert sorted(kernel.hook.symphony_bench_probe(value=1)) == sorted(
        plain.hook.symphony_bench_probe(value=1)
    )
    n = 20000
    ours = time_per_call(lambda: kernel.hook.symphony_bench_probe(value=1), number=n, repeat=7)
    anchor = time_per_call(lambda: plain.hook.symphony_bench_probe(value=1), number=n, repeat=7)
    emit(
        "hook_call_5_impls",
        ours * 1e6,
        "us",
        baseline="plain pluggy, same 5 impls",
        baseline_value=anchor * 1e6,
        target="ratio <= 1.2",
        check=lambda v, r: r is not None and r <= 1.2,
    )


if __name__ == "__main__":
    log("kernel start (200 plugins) ...")
    bench_start()
    log("hook overhead ...")
    bench_hook_overhead()
