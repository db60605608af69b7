"""The kinds of node and edge: a leaf module every other workflow module may import."""

from __future__ import annotations

import enum

__all__ = ["EdgeKind", "NodeKind"]


class NodeKind(enum.StrEnum):
    """What a node is: an AI model, a utility, flow control, or a workflow input or output."""

    INSTRUMENT = "instrument"
    OPERATOR = "operator"
    CONTROL = "control"
    INPUT = "input"
    OUTPUT = "output"


class EdgeKind(enum.StrEnum):
    """``data``: port to port; ``control``: ordering only; ``conditional``: guarded by an expression."""

    DATA = "data"
    CONTROL = "control"
    CONDITIONAL = "conditional"
