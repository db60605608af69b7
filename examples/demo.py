"""`make demo`: the main job, end to end, with every plugin installed in this repo.

1. Open a kernel: discover every installed plugin by manifest (only the conductor is imported).
2. Run a real workflow over this repository's READMEs through the conductor
   (``examples/workflows/readme-report.json``: ``docs.join`` -> ``textstats.analyze``,
   ``docs.sizes`` and ``markdown.outline`` in parallel, then ``report.compose``), with the live
   view the ``symphony run`` command uses; print the report it composed.
3. Run it again with ``symphony run`` (a separate process): every node is ``cached``.
4. Ask the same conductor over the bus (``run.list``, ``run.status``), as an editor would.

Runs, checkpoints and artifacts go to a fresh data directory, so the first run really runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "workflows" / "readme-report.json"
console = Console()


def plugin_table(kernel: Any, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("plugin", no_wrap=True)  # ids are never cut
    for column in ("state", "kind"):
        table.add_column(column)
    table.add_column("provides", overflow="fold")
    for record in kernel.plugins:
        colour = {"active": "green", "discovered": "cyan"}.get(record.state.value, "red")
        table.add_row(
            record.id,
            f"[{colour}]{record.state.value}[/{colour}]",
            record.manifest.kind if record.manifest else "",
            "\n".join(record.manifest.provides) if record.manifest else "",
        )
    return table


def readmes() -> dict[str, str]:
    """This repository's READMEs: path (relative to the repository) -> text."""
    paths = [ROOT / "README.md", ROOT / "core" / "README.md", ROOT / "sdk" / "README.md"]
    paths += sorted(ROOT.glob("plugins/*/README.md")) + sorted(ROOT.glob("examples/extensions/*/README.md"))
    return {str(p.relative_to(ROOT)): p.read_text("utf-8") for p in paths if p.is_file()}


async def run_in_process(kernel: Any, docs_file: Path) -> str:
    """Run the workflow through the conductor, showing the live view; return the run id."""
    from symphony_conductor import RunRequest, RunView

    console.rule("run 1: the conductor runs the README report (in process, live view)")
    conductor = await kernel.aservice("conductor")
    plan = conductor.prepare(
        RunRequest(workflow=str(WORKFLOW), inputs={"readmes": docs_file.read_text("utf-8")})
    )
    console.print(f"plan {plan.run_id}: " + ", ".join(f"{n} -> {p}" for n, p in plan.implementations.items()))
    view = RunView(plan.run_id, live=console.is_terminal, echo=console.print)
    with kernel.bus.subscribe("run.#", buffer=10_000, policy="drop-oldest") as events:
        run = await conductor.submit(plan)
        with (
            Live(view.render(), console=console, refresh_per_second=10) if view.live else _nothing() as screen
        ):
            while not run.done.is_set():
                with anyio.move_on_after(0.1):
                    msg = await events.receive()
                    view.feed(msg.type, msg.payload)
                if screen is not None:
                    screen.update(view.render())
            while (msg := events.receive_nowait()) is not None:
                view.feed(msg.type, msg.payload)
            if screen is not None:
                screen.update(view.render())
    for line in view.summary_lines():
        console.print(line, highlight=False, markup=False)
    if run.state != "completed":
        raise SystemExit(f"run 1 {run.state}: {run.error}")
    console.rule("the report (output node `report`)")
    console.print(run.outputs["report"]["value"], highlight=False, markup=False)
    return str(run.id)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def run_with_cli(docs_file: Path, env: dict[str, str]) -> None:
    """The same run again through `symphony run` in its own process: everything comes from the memo."""
    console.rule("run 2: `symphony run` again, same inputs -> every operator cached (from the memo)")
    command = [
        str(Path(sys.executable).with_name("symphony")),
        "run",
        str(WORKFLOW),
        "--input",
        f"readmes=@{docs_file}",
    ]
    console.print(
        "$ symphony run examples/workflows/readme-report.json --input readmes=@docs.json", markup=False
    )
    sys.stdout.flush()
    proc = subprocess.run(command, env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"`symphony run` exited with {proc.returncode}")


async def ask_over_the_bus(kernel: Any, first_run: str) -> None:
    """The bus API an editor uses: run.list and run.status, through a real client link."""
    from symphony_bus_remote import BusClient, BusServer

    console.rule("the bus: run.list and run.status through a client link (what an editor does)")
    async with BusServer(kernel.bus, "memory://demo-conductor", kernel=kernel) as server:
        assert server.url is not None
        async with BusClient.connect(server.url, reconnect=False) as client:
            listing = (await client.request("run.list", {}, timeout=10)).payload
            for row in listing[:3]:
                console.print(f"run.list: {row['run_id']} {row['workflow']} {row['state']}", markup=False)
            status = (await client.request("run.status", {"run_id": first_run}, timeout=10)).payload
            cached = sum(1 for n in status["nodes"].values() if n.get("cached"))
            console.print(
                f"run.status {first_run}: {status['state']}, {len(status['nodes'])} nodes, {cached} cached",
                markup=False,
            )


async def main() -> int:
    from symphony import Kernel, PluginState

    async with Kernel.open(overrides={"logging": {"level": "warning"}}) as kernel:
        console.print(
            plugin_table(
                kernel, f"Discovered plugins (index: {kernel.index_status}) — only the conductor imported"
            )
        )
        with tempfile.TemporaryDirectory(prefix="symphony-demo-docs-") as tmp:
            docs_file = Path(tmp) / "docs.json"
            docs = readmes()
            docs_file.write_text(json.dumps(docs), "utf-8")
            console.print(
                f"{len(docs)} READMEs, {sum(len(t) for t in docs.values())} characters -> {docs_file.name}"
            )
            first = await run_in_process(kernel, docs_file)
            await anyio.to_thread.run_sync(run_with_cli, docs_file, dict(os.environ))
            await ask_over_the_bus(kernel, first)
        console.print(plugin_table(kernel, "After the runs — only what was used got activated"))
        failures = [
            r
            for r in kernel.plugins
            if r.state not in (PluginState.ACTIVE, PluginState.DISCOVERED, PluginState.DISABLED)
        ]
        for record in failures:
            console.print(f"[red]{record.id}: {record.state.value}: {record.reason}[/red]")
        return 1 if failures else 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="symphony-demo-") as data:
        os.environ["SYMPHONY_DATA_DIR"] = data  # a fresh store, so the first run really runs
        code = anyio.run(main)
    sys.exit(code)
