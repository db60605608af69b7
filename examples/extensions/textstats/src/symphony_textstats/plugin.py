"""Hook implementations: what the kernel calls when this plugin is activated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from symphony_sdk import (
    BusHandlerRegistry,
    CommandRegistry,
    Kernel,
    Message,
    ServiceRegistry,
    ValidationError,
    current_kernel,
    hookimpl,
)
from symphony_textstats.stats import TextStats, TextStatsOperator

if TYPE_CHECKING:
    from symphony_workflow import NodeTypeRegistry


@hookimpl
def symphony_register_services(registry: ServiceRegistry, kernel: Kernel) -> None:
    """Provide the ``text-stats`` service, configured from the ``[textstats]`` section."""
    registry.add("text-stats", TextStats(**kernel.config.section("textstats")))


@hookimpl
def symphony_register_node_types(registry: NodeTypeRegistry, kernel: Kernel | None) -> None:
    """Provide the ``textstats.analyze`` workflow node type (as its manifest declares it), run by
    :class:`TextStatsOperator`."""
    section = kernel.config.section("textstats") if kernel is not None else {}
    registry.add(
        "textstats.analyze",
        kind="operator",
        inputs={"text": "text", "top": "integer"},
        outputs={"stats": "json"},
        summary=TextStatsOperator.summary,
        provider="symphony-textstats",
        implementation=TextStatsOperator(TextStats(**section)),
    )


@hookimpl
def symphony_register_bus_handlers(registry: BusHandlerRegistry, kernel: Kernel) -> None:
    """Answer ``textstats.analyze`` requests on the bus: ``{"text": "..."}`` -> the statistics."""
    service = TextStats(**kernel.config.section("textstats"))

    def analyze(msg: Message) -> dict[str, object]:
        payload = msg.payload
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str):
            raise ValidationError(
                'textstats.analyze takes {"text": "..."}',
                code="textstats.bad_request",
                context={"payload": type(payload).__name__},
            )
        top = payload.get("top")
        return service.analyze_text(text, top=top if isinstance(top, int) and top >= 0 else None).to_dict()

    registry.add("textstats.analyze", analyze, summary="Statistics of a text: {\"text\": \"...\"}")


@click.command("textstats")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top", type=click.IntRange(min=0), default=None, help="How many common words to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def textstats_command(path: Path, top: int | None, as_json: bool) -> None:
    """Print statistics of the text file PATH."""
    kernel = current_kernel()
    assert kernel is not None  # current_kernel() raises outside the `symphony` command
    service: TextStats = kernel.service("text-stats")
    stats = service.analyze_file(path, top=top)
    if as_json:
        click.echo(json.dumps(stats.to_dict(), indent=2))
        return
    click.echo(f"{path}: {stats.lines} lines, {stats.words} words, {stats.characters} characters")
    click.echo(f"average word length {stats.average_word_length}, reading time {stats.reading_minutes} min")
    if stats.top_words:
        click.echo("top words: " + ", ".join(f"{w} ({n})" for w, n in stats.top_words))


@hookimpl
def symphony_register_commands(registry: CommandRegistry) -> None:
    """Add the ``symphony textstats`` command."""
    registry.add(textstats_command)
