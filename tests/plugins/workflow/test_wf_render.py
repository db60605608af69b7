"""Pretty output: text tree, Mermaid, Graphviz DOT."""

from __future__ import annotations

import pytest

from symphony.commons.errors import ValidationError
from symphony_workflow import Node, Workflow, render
from symphony_workflow._render import render_dot, render_mermaid, render_text


def test_text_tree_lists_nodes_in_order_with_edges(triage: Workflow) -> None:
    text = render_text(triage)
    lines = text.splitlines()
    assert lines[0].startswith("Ticket triage  v2.1.0  (7 nodes, 8 edges)")
    ids = [line.split()[1] for line in lines if line[:2] in ("├─", "└─")]
    assert ids == ["ticket", "classify", "route", "file_issue", "review", "done", "link"]
    assert "if classify.label == 'bug' and classify.confidence >= 0.8" in text
    assert ".out → file_issue.text" in text
    assert "\033[" not in text
    assert "\033[" in render_text(triage, color=True)
    assert "author: Symphony examples" in render_text(triage, metadata=True)


def test_mermaid_escapes_labels(triage: Workflow) -> None:
    text = render_mermaid(triage)
    assert text.startswith("flowchart TD")
    assert 'n_route{"route<br/>branch"}' in text
    assert "#quot;" not in text or '"' not in text.split("#quot;")[0][-1:]
    assert "n_classify -.-> n_route" in text
    assert "#gt;=" in text
    wf = Workflow("q")
    wf.add_node(Node.operator("end", "op", name='say "hi" | <b>'))
    out = render_mermaid(wf, direction="LR")
    assert 'n_end["say #quot;hi#quot; #124; #lt;b#gt; (end)<br/>op"]' in out
    with pytest.raises(ValidationError):
        render_mermaid(wf, direction="up")


def test_dot_is_well_formed(embed: Workflow) -> None:
    text = render_dot(embed)
    assert text.startswith('digraph "Parallel embeddings" {') and text.endswith("}")
    assert '"index" -> "audit_log" [style=dashed];' in text
    assert '"audit_log" [label="audit_log\\nlog.write", shape=box, style=dashed];' in text
    wf = Workflow('quote"back\\slash')
    wf.add_node(Node.operator("a", "op", name='x"y'))
    assert 'digraph "quote\\"back\\\\slash"' in render_dot(wf)
    with pytest.raises(ValidationError):
        render_dot(wf, rankdir="diagonal")


def test_render_dispatch(report: Workflow) -> None:
    assert render(report, "dot") == render_dot(report)
    assert render(report, "mermaid") == render_mermaid(report)
    assert render(report) == render_text(report)
    with pytest.raises(ValidationError) as info:
        render(report, "svg")
    assert info.value.context["allowed"] == ["dot", "mermaid", "text"]
