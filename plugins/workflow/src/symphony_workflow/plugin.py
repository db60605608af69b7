"""Hook implementations: what the kernel calls when the workflow plugin is activated."""

from __future__ import annotations

from typing import Any

from symphony.hookspecs import hookimpl


@hookimpl
def symphony_register_services(registry: Any, kernel: Any) -> None:
    """Provide the ``workflow`` service, configured from the ``[workflow]`` section."""
    from symphony_workflow.service import WorkflowService

    registry.add("workflow", WorkflowService.from_kernel(kernel))


@hookimpl
def symphony_register_commands(registry: Any) -> None:
    """Add ``symphony workflow ...``."""
    from symphony_workflow.cli import workflow

    registry.add(workflow)


@hookimpl
def symphony_activate(kernel: Any) -> None:
    """Add the workflow hookspecs (``symphony_handle_workflow_event``, ``symphony_register_workflow_templates``)."""
    from symphony_workflow import hookspecs

    hook = kernel.hook
    if getattr(hook, "symphony_handle_workflow_event", None) is None or not _has_spec(hook.symphony_handle_workflow_event):
        kernel.add_hookspecs(hookspecs)


def _has_spec(caller: Any) -> bool:
    return getattr(caller, "spec", None) is not None
