"""Building the ``arbitration`` service from a kernel: config, audit file, the decision hook."""

from __future__ import annotations

from typing import Any

from symphony.commons.errors import SymphonyError
from symphony.commons.log import get_logger
from symphony_arbitration_engine.audit import AuditLog
from symphony_arbitration_engine.engine import ArbitrationConfig, ArbitrationEngine

__all__ = ["engine_from_kernel"]

_log = get_logger("symphony.arbitration")


def engine_from_kernel(kernel: Any) -> ArbitrationEngine:
    """An engine configured from ``[arbitration]``; decisions go to ``symphony_arbitration_decision``."""
    try:
        section = dict(kernel.config.section("arbitration"))
    except (SymphonyError, KeyError, AttributeError):
        section = {}
    audit_path = section.pop("audit_path", "") or None
    config = ArbitrationConfig.from_mapping(section)
    engine = ArbitrationEngine(config, audit=AuditLog(audit_path, keep=audit_path is None))
    hook = getattr(kernel.hook, "symphony_arbitration_decision", None)
    if hook is not None:

        def forward(decision: Any) -> None:
            try:
                hook(decision=decision)
            except Exception as exc:
                _log.warning("arbitration decision hook failed", error=repr(exc))

        engine.add_listener(forward)
    return engine
