"""Hook implementations: the four node types, each registered with its implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony_demo_ops.ops import ComposeReport, DocSizes, JoinDocs, MarkdownOutline
from symphony_sdk import hookimpl

if TYPE_CHECKING:
    from symphony_workflow import NodeTypeRegistry


@hookimpl
def symphony_register_node_types(registry: NodeTypeRegistry) -> None:
    """Provide ``docs.join``, ``docs.sizes``, ``markdown.outline`` and ``report.compose``."""
    registry.add(
        "docs.join",
        kind="operator",
        inputs={"docs": "json"},
        outputs={"text": "text"},
        summary=JoinDocs.summary,
        implementation=JoinDocs(),
    )
    registry.add(
        "docs.sizes",
        kind="operator",
        inputs={"docs": "json"},
        outputs={"sizes": "json"},
        summary=DocSizes.summary,
        implementation=DocSizes(),
    )
    registry.add(
        "markdown.outline",
        kind="operator",
        inputs={"docs": "json"},
        outputs={"headings": "list[text]"},
        summary=MarkdownOutline.summary,
        implementation=MarkdownOutline(),
    )
    registry.add(
        "report.compose",
        kind="operator",
        inputs={"stats": "json", "sizes": "json", "headings": "list[text]"},
        outputs={"report": "text"},
        summary=ComposeReport.summary,
        implementation=ComposeReport(),
    )
