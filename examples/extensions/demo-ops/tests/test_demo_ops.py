"""The demo operators, called directly and through the kernel's node-type registry."""

from __future__ import annotations

from symphony_demo_ops import ComposeReport, DocSizes, JoinDocs, MarkdownOutline

DOCS = {
    "b/README.md": "# Bee\n\nSome words here.\n\n```sh\n# not a heading\n```\n| a | table |\n## Use\n",
    "a/README.md": "# Aye\ntext\n### deep\n",
}


def test_join_keeps_prose_in_path_order() -> None:
    text = JoinDocs().run({"docs": DOCS})["text"]
    assert text.index("# Aye") < text.index("# Bee")
    assert "not a heading" not in text and "| a |" not in text


def test_sizes_largest_first() -> None:
    rows = DocSizes().run({"docs": DOCS})["sizes"]
    assert [r["path"] for r in rows] == ["b/README.md", "a/README.md"]
    assert rows[1] == {"path": "a/README.md", "lines": 3, "words": 5}


def test_outline_levels_one_and_two_outside_code() -> None:
    assert MarkdownOutline().run({"docs": DOCS})["headings"] == ["Aye", "Bee", "  Use"]


def test_report_lists_every_document() -> None:
    sizes = DocSizes().run({"docs": DOCS})["sizes"]
    stats = {"words": 9, "reading_minutes": 0.04, "top_words": [["here", 1]]}
    report = ComposeReport().run({"stats": stats, "sizes": sizes, "headings": ["Aye"]})["report"]
    assert report.startswith("# 2 documents, 9 words of prose")
    assert "| a/README.md | 3 | 5 |" in report and "here (1)" in report
