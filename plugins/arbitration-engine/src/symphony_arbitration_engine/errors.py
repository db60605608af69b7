"""Errors of the arbitration engine. Decisions are values; these are raised only by the async
API (a denied or preempted acquisition), by bad input, and by audit checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symphony.commons.errors import (
    ConflictError,
    OperationTimeoutError,
    PermissionDeniedError,
    ValidationError,
)

if TYPE_CHECKING:
    from symphony_arbitration_engine.model import Decision

__all__ = [
    "AuditTamperedError",
    "DeniedError",
    "PreemptedError",
    "ReplayMismatchError",
    "WaitTimeoutError",
]


class DeniedError(PermissionDeniedError):
    """An acquisition was denied; ``decision`` carries the reason and rationale."""

    default_code = "arbitration.denied"

    def __init__(self, message: str, *, decision: Decision, **kwargs: Any) -> None:
        context = dict(kwargs.pop("context", None) or {})
        context.update(decision.to_dict())
        super().__init__(message, context=context, **kwargs)
        self.decision = decision


class PreemptedError(ConflictError):
    """A grant was taken back to serve a higher priority class; the work inside was cancelled."""

    default_code = "arbitration.preempted"


class WaitTimeoutError(OperationTimeoutError):
    """A deferred request was not granted within the wait its caller allowed."""

    default_code = "arbitration.wait.timeout"


class AuditTamperedError(ValidationError):
    """An audit log line is malformed, out of sequence, or its hash chain is broken."""

    default_code = "arbitration.audit.tampered"


class ReplayMismatchError(ValidationError):
    """Replaying an audit log gave a different decision than the one recorded."""

    default_code = "arbitration.replay.mismatch"
