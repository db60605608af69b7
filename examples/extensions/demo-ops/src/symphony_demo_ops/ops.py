"""Four small operators over a set of documents (``{"path": "text", ...}``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from symphony_sdk import Operator

__all__ = ["ComposeReport", "DocSizes", "JoinDocs", "MarkdownOutline"]

_DOCS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["docs"],
    "properties": {"docs": {"type": "object", "additionalProperties": {"type": "string"}}},
}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


class JoinDocs(Operator):
    """``docs.join``: every document's prose (no code blocks, no tables), in path order, as one text."""

    name = "docs.join"
    summary = "Join the prose of several documents into one text"
    input_schema = _DOCS_SCHEMA
    output_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string"}},
    }

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Join ``inputs["docs"]``."""
        docs: Mapping[str, str] = inputs["docs"]
        parts = []
        for path in sorted(docs):
            prose = [line for line in _prose_lines(docs[path]) if not line.lstrip().startswith("|")]
            parts.append("\n".join(prose))
        return {"text": "\n\n".join(parts)}


class DocSizes(Operator):
    """``docs.sizes``: lines and words of each document, largest first."""

    name = "docs.sizes"
    summary = "Lines and words per document"
    input_schema = _DOCS_SCHEMA
    output_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["sizes"],
        "properties": {"sizes": {"type": "array"}},
    }

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Measure every document of ``inputs["docs"]``."""
        docs: Mapping[str, str] = inputs["docs"]
        measured = sorted(
            (
                (len(text.split()), path, text.count("\n") + (bool(text) and not text.endswith("\n")))
                for path, text in docs.items()
            ),
            key=lambda row: (-row[0], row[1]),
        )
        return {"sizes": [{"path": path, "lines": lines, "words": words} for words, path, lines in measured]}


class MarkdownOutline(Operator):
    """``markdown.outline``: the level-1 and level-2 headings of each document, indented by level."""

    name = "markdown.outline"
    summary = "Headings of Markdown documents"
    input_schema = _DOCS_SCHEMA
    output_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["headings"],
        "properties": {"headings": {"type": "array", "items": {"type": "string"}}},
    }

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Outline every document of ``inputs["docs"]``, in path order."""
        docs: Mapping[str, str] = inputs["docs"]
        headings = []
        for path in sorted(docs):
            for line in _prose_lines(docs[path]):
                match = _HEADING.match(line)
                if match and len(match.group(1)) <= 2:
                    headings.append("  " * (len(match.group(1)) - 1) + match.group(2))
        return {"headings": headings}


class ComposeReport(Operator):
    """``report.compose``: a short Markdown report from the statistics, sizes and outline."""

    name = "report.compose"
    summary = "Compose a Markdown report"
    input_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["stats", "sizes", "headings"],
        "properties": {
            "stats": {"type": "object"},
            "sizes": {"type": "array"},
            "headings": {"type": "array", "items": {"type": "string"}},
        },
    }
    output_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["report"],
        "properties": {"report": {"type": "string"}},
    }

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Write the report."""
        stats: Mapping[str, Any] = inputs["stats"]
        sizes: list[Mapping[str, Any]] = inputs["sizes"]
        top = ", ".join(f"{w} ({n})" for w, n in stats.get("top_words", []))
        lines = [
            f"# {len(sizes)} documents, {stats.get('words', 0)} words of prose",
            "",
            f"Reading time ~{stats.get('reading_minutes', 0)} min; most common words: {top or 'none'}.",
            "",
            "| document | lines | words |",
            "|---|---:|---:|",
            *(f"| {r['path']} | {r['lines']} | {r['words']} |" for r in sizes),
            "",
            f"{len(inputs['headings'])} section headings.",
        ]
        return {"report": "\n".join(lines) + "\n"}
