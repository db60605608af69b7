"""The statistics themselves, the ``text-stats`` service and the workflow operator."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from symphony.commons.fs import read_text
from symphony_sdk import NodeContext, Operator

__all__ = ["Stats", "TextStats", "TextStatsOperator"]

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)  # noqa: RUF001 (typographic apostrophe)


@attrs.frozen
class Stats:
    """Statistics of one text."""

    lines: int
    words: int
    characters: int
    bytes: int
    average_word_length: float
    reading_minutes: float
    top_words: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe mapping."""
        data = attrs.asdict(self)
        data["top_words"] = [list(pair) for pair in self.top_words]
        return data


@attrs.define
class TextStats:
    """The ``text-stats`` service."""

    max_bytes: int = 10 * 1024 * 1024
    words_per_minute: int = 230
    top: int = 5

    def analyze_text(self, text: str, *, top: int | None = None) -> Stats:
        """Compute statistics of ``text``."""
        words = [w.lower() for w in _WORD.findall(text)]
        n_top = self.top if top is None else top
        return Stats(
            lines=text.count("\n") + (1 if text and not text.endswith("\n") else 0),
            words=len(words),
            characters=len(text),
            bytes=len(text.encode("utf-8")),
            average_word_length=round(sum(map(len, words)) / len(words), 2) if words else 0.0,
            reading_minutes=round(len(words) / self.words_per_minute, 2),
            top_words=tuple(Counter(words).most_common(n_top)) if n_top else (),
        )

    def analyze_file(
        self, path: str | Path, *, root: str | Path | None = None, top: int | None = None
    ) -> Stats:
        """Read ``path`` (confined to ``root`` if given, at most ``max_bytes``) and analyse it."""
        return self.analyze_text(read_text(path, root=root, max_size=self.max_bytes), top=top)


class TextStatsOperator(Operator):
    """Workflow node type ``textstats.analyze``: ``{"text": str, "top"?: int}`` -> ``{"stats": {...}}``.

    Its schemas' top-level properties are the node type's ports (declared in the manifest's
    ``[contributes.node_types."textstats.analyze"]`` and registered by the plugin): inputs
    ``text`` (text) and ``top`` (integer), output ``stats`` (json: the :class:`Stats` fields).
    """

    name = "textstats.analyze"
    summary = "Statistics of a text"
    input_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string"}, "top": {"type": "integer", "minimum": 0}},
        "additionalProperties": False,
    }
    output_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["stats"],
        "additionalProperties": False,
        "properties": {
            "stats": {
                "type": "object",
                "required": ["lines", "words", "characters"],
                "properties": {
                    "lines": {"type": "integer"},
                    "words": {"type": "integer"},
                    "characters": {"type": "integer"},
                    "bytes": {"type": "integer"},
                    "average_word_length": {"type": "number"},
                    "reading_minutes": {"type": "number"},
                    "top_words": {"type": "array", "items": {"type": "array"}},
                },
            }
        },
    }

    def __init__(self, service: TextStats | None = None) -> None:
        self.service = service or TextStats()

    def process(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Analyse ``inputs["text"]``; the statistics go out through the ``stats`` port."""
        return {"stats": self.service.analyze_text(inputs["text"], top=inputs.get("top")).to_dict()}

    def execute(self, inputs: Mapping[str, Any], context: NodeContext) -> Mapping[str, Any]:
        """Run as the ``textstats.analyze`` node: port ``text`` in, port ``stats`` out (``top`` from
        the input port, else from the node's config)."""
        args = dict(inputs)
        top = context.config.get("top")
        if "top" not in args and top is not None:
            args["top"] = top
        return self.run(args)
