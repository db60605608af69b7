"""symphony-arbitration-engine: who gets scarce resources (the ``arbitration`` service).

::

    from symphony_arbitration_engine import ArbitrationConfig, ArbitrationEngine, Owner, Request, Resources

    engine = ArbitrationEngine(ArbitrationConfig(capacity=Resources(cpu_slots=8, memory=16e9)))
    engine.add_owner(Owner("alice", weight=2))
    decision = engine.submit(Request.make("alice", {"cpu_slots": 2}, priority="high"))
"""

from symphony_arbitration_engine.admission import (
    Admission,
    Grant,
    LeasingPool,
    acquire,
    admitted,
    request_for,
)
from symphony_arbitration_engine.audit import AuditLog, read_audit, verify_audit
from symphony_arbitration_engine.engine import ArbitrationConfig, ArbitrationEngine, Finished
from symphony_arbitration_engine.errors import (
    AuditTamperedError,
    DeniedError,
    PreemptedError,
    ReplayMismatchError,
    WaitTimeoutError,
)
from symphony_arbitration_engine.fairness import (
    FairnessReport,
    OwnerTotals,
    fairness_report,
    gini,
    percentile,
)
from symphony_arbitration_engine.model import (
    RESOURCES,
    Conflict,
    ConflictKind,
    Decision,
    DenialReason,
    Outcome,
    Owner,
    PriorityClass,
    Request,
    Resources,
)
from symphony_arbitration_engine.replay import ReplayReport, replay

__all__ = [
    "RESOURCES",
    "Admission",
    "ArbitrationConfig",
    "ArbitrationEngine",
    "AuditLog",
    "AuditTamperedError",
    "Conflict",
    "ConflictKind",
    "Decision",
    "DenialReason",
    "DeniedError",
    "FairnessReport",
    "Finished",
    "Grant",
    "LeasingPool",
    "Outcome",
    "Owner",
    "OwnerTotals",
    "PreemptedError",
    "PriorityClass",
    "ReplayMismatchError",
    "ReplayReport",
    "Request",
    "Resources",
    "WaitTimeoutError",
    "acquire",
    "admitted",
    "fairness_report",
    "gini",
    "percentile",
    "read_audit",
    "replay",
    "request_for",
    "verify_audit",
]
