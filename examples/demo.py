"""`make demo`: the main job, end to end, with every plugin installed in this repo.

1. Open a kernel: discover every installed plugin by manifest (nothing imported yet).
2. Print the plugin table.
3. Run a short scenario through the plugins' services: text statistics of this repository's
   README (the example operator plugin), and more as plugins provide it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from rich.console import Console
from rich.table import Table

from symphony import Kernel, PluginState

ROOT = Path(__file__).resolve().parent.parent
console = Console()


def plugin_table(kernel: Kernel, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("plugin", "state", "kind", "provides"):
        table.add_column(column)
    for record in kernel.plugins:
        colour = {"active": "green", "discovered": "cyan"}.get(record.state.value, "red")
        table.add_row(
            record.id,
            f"[{colour}]{record.state.value}[/{colour}]",
            record.manifest.kind if record.manifest else "",
            ", ".join(record.manifest.provides) if record.manifest else "",
        )
    return table


def readme_prose() -> str:
    """The README without code blocks and tables: the words a reader meets."""
    lines, in_code = [], False
    for line in (ROOT / "README.md").read_text("utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith("|"):
            lines.append(line)
    return "\n".join(lines)


async def scenario_textstats(kernel: Kernel) -> None:
    console.rule("text statistics (symphony-textstats, an operator written against the SDK)")
    service = await kernel.aservice("text-stats")
    stats = service.analyze_file(ROOT / "README.md", root=ROOT)
    console.print(
        f"README.md: {stats.lines} lines, {stats.words} words, {stats.characters} characters, "
        f"~{stats.reading_minutes} min to read"
    )
    prose = service.analyze_text(readme_prose(), top=1000)
    subject = [(w, n) for w, n in prose.top_words if len(w) > 4 and w.isalpha()][:6]
    console.print(
        "README.md prose, most common words of 5+ letters: "
        + ", ".join(f"{w} ({n})" for w, n in subject),
        highlight=False,
    )


async def scenario_workflow(kernel: Kernel) -> None:
    console.rule("a melody (symphony-workflow): load, validate against the installed node types, analyse")
    workflows = await kernel.aservice("workflow")
    melody = workflows.load(ROOT / "examples" / "workflows" / "text-report.json")
    report = workflows.validate(melody)
    console.print(
        f"{melody.name!r}: {len(melody.nodes)} nodes, valid={report.valid}, "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings"
    )
    console.print(workflows.render(melody, "text"), highlight=False)
    from symphony_workflow import levels

    console.print("parallel levels: " + " | ".join(", ".join(level) for level in levels(melody)))
    binary = workflows.to_binary(melody)
    console.print(f"JSON {len(workflows.dumps(melody))} bytes, binary {len(binary)} bytes")


async def scenario_bus(kernel: Kernel) -> None:
    console.rule("the bus: a service behind a request handler, reached over a real Unix socket")
    import tempfile

    from symphony.commons.errors import SymphonyError
    from symphony_bus_remote import BusClient, BusServer

    stats = await kernel.aservice("text-stats")

    async def analyse(msg):  # a request handler: payload in, payload out, errors cross as themselves
        return stats.analyze_file(msg.payload["path"], root=ROOT).to_dict()

    kernel.bus.handle("demo.textstats.analyse", analyse)
    with tempfile.TemporaryDirectory(prefix="sy-") as tmp:
        async with BusServer(kernel.bus, f"unix://{tmp}/bus.sock", kernel=kernel) as server:
            console.print(f"serving on {server.url}")
            async with BusClient.connect(server.url, reconnect=False) as client:
                reply = await client.request("demo.textstats.analyse", {"path": "README.md"}, timeout=5)
                console.print(f"reply: {reply.payload['words']} words in README.md")
                try:
                    await client.request("demo.textstats.analyse", {"path": "/etc/passwd"}, timeout=5)
                except SymphonyError as err:
                    console.print(
                        f"error crossed the socket as {type(err).__name__} ({err.code}): {err.message}",
                        markup=False,
                    )
                async with kernel.bus.subscribe("demo.#") as sub:
                    await client.send("demo.tick", {"n": 1})
                    event = await sub.receive(timeout=5)
                    console.print(
                        f"event from the client reached the kernel's bus: {event.type} {event.payload}"
                    )
    console.print(f"bus metrics: {kernel.bus.metrics.snapshot()['counters']}")


async def main() -> int:
    async with Kernel.open(overrides={"logging": {"level": "warning"}}) as kernel:
        console.print(
            plugin_table(kernel, f"Discovered plugins (index: {kernel.index_status}) — none imported yet")
        )
        await scenario_textstats(kernel)
        await scenario_workflow(kernel)
        await scenario_bus(kernel)
        console.print(plugin_table(kernel, "After the scenario — only what was used got activated"))
        failures = [
            r
            for r in kernel.plugins
            if r.state not in (PluginState.ACTIVE, PluginState.DISCOVERED, PluginState.DISABLED)
        ]
        for record in failures:
            console.print(f"[red]{record.id}: {record.state.value}: {record.reason}[/red]")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
