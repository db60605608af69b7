"""Hooks the arbitration engine adds to the kernel (with ``kernel.add_hookspecs``) when activated.

::

    from symphony.hookspecs import hookimpl

    @hookimpl
    def symphony_arbitration_decision(decision):
        if decision.outcome.value == "denied":
            log.info("denied", request=decision.request, reason=decision.reason.value)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.hookspecs import hookspec

if TYPE_CHECKING:
    from symphony_arbitration_engine.model import Decision


@hookspec
def symphony_arbitration_decision(decision: Decision) -> None:
    """Called for every decision of the ``arbitration`` service (grants, denials, deferrals).

    :param decision: the request, owner, outcome, stage, reason, wait estimate and rationale.

    Runs synchronously inside the engine: keep it quick and never raise.
    """
