"""Errors of the workflow package: narrow subclasses of the Symphony error family.

Every error the package raises is a :class:`symphony.commons.errors.SymphonyError`. Bad input
(documents, expressions, edges, commands) is a :class:`~symphony.commons.errors.ValidationError`
whose ``context`` names *where*: a JSON ``path`` such as ``$.workflow.nodes[3].kind``, a
``node`` id, an ``edge`` id or an expression ``column``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from symphony.commons.errors import SymphonyError, ValidationError

__all__ = ["CycleError", "InvalidTransitionError", "WorkflowValidationError"]


class WorkflowValidationError(ValidationError):
    """A workflow (or document) failed validation; ``issues`` holds every problem found.

    The message and ``context`` describe the first issue, so a caller that only reads
    ``str(err)`` still learns where it is; ``context["issues"]`` lists them all.
    """

    default_code = "workflow.invalid"

    def __init__(self, message: str, *, issues: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.issues: tuple[Any, ...] = tuple(issues)


class CycleError(ValidationError):
    """An edge (or a document) would close a cycle; ``path`` is the closed path ``[a, b, ..., a]``."""

    default_code = "workflow.cycle"

    def __init__(self, message: str, *, path: Sequence[str], **kwargs: Any) -> None:
        context = dict(kwargs.pop("context", None) or {})
        context.setdefault("cycle", list(path))
        super().__init__(message, context=context, **kwargs)
        self.path: list[str] = list(path)


class InvalidTransitionError(ValidationError):
    """An execution or node state change that the state machine does not allow."""

    default_code = "workflow.execution.invalid_transition"


def error_location(err: SymphonyError) -> str:
    """A short ``where`` string for an error: JSON path, node, edge, port and column if known."""
    ctx = err.context
    parts = []
    for key in ("file", "path", "node", "edge", "port", "parameter", "column", "line"):
        if key in ctx and ctx[key] is not None:
            parts.append(f"{key}={ctx[key]}")
    return " ".join(parts)
