"""Hooks the workflow plugin adds to the kernel (with ``kernel.add_hookspecs``) when activated.

Implement them in any plugin with the kernel's ``hookimpl`` marker::

    from symphony.hookspecs import hookimpl

    @hookimpl
    def symphony_handle_workflow_event(event):
        log.info("workflow event", kind=event.kind, node=event.node_id)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symphony.hookspecs import hookspec

if TYPE_CHECKING:
    from symphony_workflow.events import ExecutionEvent
    from symphony_workflow.templates import TemplateLibrary


@hookspec
def symphony_handle_workflow_event(event: ExecutionEvent) -> None:
    """Called for every execution event (state changes, node progress, logs, commands).

    Runs synchronously inside the state transition that caused it: keep it quick and never
    raise (a failing implementation is logged and skipped). Once the message bus is running
    the same events are also published as ``workflow.<kind>`` messages.
    """


@hookspec
def symphony_register_workflow_templates(library: TemplateLibrary) -> Any:
    """Add workflow templates to the library the ``workflow`` service builds.

    ``library.add(template)`` or ``library.load_path(directory)``; called once per library.
    """
