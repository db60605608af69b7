"""Example operators used by ``make demo``, written only against the SDK.

Each is a pure :class:`symphony_sdk.Operator` (same inputs give the same outputs), so a second
run of the same workflow takes every result from the memo.
"""

from symphony_demo_ops.ops import ComposeReport, DocSizes, JoinDocs, MarkdownOutline

__all__ = ["ComposeReport", "DocSizes", "JoinDocs", "MarkdownOutline"]
