"""The Symphony conductor: the one entry point for running workflows.

    from symphony import Kernel
    from symphony_conductor import RunRequest

    async with Kernel.open() as kernel:
        conductor = await kernel.aservice("conductor")
        run = await conductor.run(RunRequest(workflow="report.json", inputs={"document": "..."}))
        assert run.state == "completed", run.error   # run.outputs holds each output's value or digest

A request names a workflow file, document or object, or a template id with parameters, and
values for the workflow's input nodes. The conductor checks it against the installed node
types (from manifests, nothing imported), resolves parameters and inputs, asks the
``symphony_choose_implementation`` hook (:mod:`symphony_conductor.hookspecs`) which plugin runs
each node, hands the run to the DAG tracker and publishes ``run.*`` events on the kernel's bus.
The bus requests ``run.submit``, ``run.status``, ``run.list`` and ``run.control`` reach the same
conductor from other processes; ``symphony run`` and ``symphony runs`` from the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.commons.lazy import lazy_getattr

if TYPE_CHECKING:
    from symphony_conductor._bus import CONTROL_COMMANDS, REQUEST_TYPES
    from symphony_conductor._conductor import Conductor, Run
    from symphony_conductor._plan import Plan
    from symphony_conductor._request import RunRequest
    from symphony_conductor._view import RunView

_LAZY: dict[str, str] = {
    "CONTROL_COMMANDS": "symphony_conductor._bus",
    "REQUEST_TYPES": "symphony_conductor._bus",
    "Conductor": "symphony_conductor._conductor",
    "Run": "symphony_conductor._conductor",
    "Plan": "symphony_conductor._plan",
    "RunRequest": "symphony_conductor._request",
    "RunView": "symphony_conductor._view",
}
"""Name -> private module, imported on first use (activating the plugin stays cheap)."""

__all__ = ["CONTROL_COMMANDS", "REQUEST_TYPES", "Conductor", "Plan", "Run", "RunRequest", "RunView"]

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
