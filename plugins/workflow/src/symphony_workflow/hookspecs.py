"""Hooks the workflow plugin adds to the kernel (with ``kernel.add_hookspecs``) when activated.

A plugin implementing one of them lists ``symphony-workflow`` in its manifest's ``requires``,
so the workflow plugin (and these hookspecs) is active before it; otherwise the kernel reports
the implementation as an unknown hook. Implement them with the kernel's ``hookimpl`` marker::

    from symphony_sdk import hookimpl
    from symphony_workflow import ExecutionEvent

    @hookimpl
    def symphony_handle_workflow_event(event: ExecutionEvent) -> None:
        log.info("workflow event", kind=event.kind, node=event.node_id)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.hookspecs import hookspec

if TYPE_CHECKING:
    from symphony.kernel import Kernel
    from symphony_workflow._events import ExecutionEvent
    from symphony_workflow._node_types import NodeTypeRegistry
    from symphony_workflow._templates import TemplateLibrary


@hookspec
def symphony_register_node_types(registry: NodeTypeRegistry, kernel: Kernel) -> None:
    """Add the workflow node types (instruments and operators) this plugin can execute.

    Called once when the plugin is activated (after the workflow plugin, which adds the
    ``node_types`` registry): on first use of one of its services or slots, e.g.
    ``kernel.activate_slot("node-type:<name>")``. Declare each type in the manifest too, as
    ``provides = ["node-type:<name>"]`` and a ``[contributes.node_types."<name>"]`` table
    (``kind``, ``summary``, ``inputs``, ``outputs``), so workflows are checked (port names,
    directions, types) without importing the plugin. What the hook registers must agree with
    that table, or the plugin fails its activation with both named.

    :param registry: The kernel's ``node_types`` registry (:class:`symphony_workflow.NodeTypeRegistry`):
        ``registry.add(name, kind=..., inputs=..., outputs=..., summary=...)``; a name
        registered twice is a ``ConflictError`` naming both plugins.
    :param kernel: The activating kernel.

    Example::

        from symphony_sdk import hookimpl
        from symphony_workflow import NodeTypeRegistry

        @hookimpl
        def symphony_register_node_types(registry: NodeTypeRegistry) -> None:
            registry.add("text.split", kind="operator", inputs={"text": "text"},
                         outputs={"chunks": "list[text]"}, summary="Split text into chunks.")
    """


@hookspec
def symphony_handle_workflow_event(event: ExecutionEvent) -> None:
    """Receive every execution event (state changes, node progress, logs, commands).

    Called synchronously inside the state transition that caused the event, for every active
    plugin implementing it: keep it quick and never raise (a failing implementation is logged
    and skipped). Once the message bus runs the same events are also published as
    ``workflow.<kind>`` messages.

    :param event: The event (:class:`symphony_workflow.ExecutionEvent`): ``kind``,
        ``execution_id``, ``node_id``, ``seq``, ``data``.

    Example::

        from symphony_sdk import hookimpl
        from symphony_workflow import ExecutionEvent

        SEEN: list[tuple[int, str]] = []

        @hookimpl
        def symphony_handle_workflow_event(event: ExecutionEvent) -> None:
            SEEN.append((event.seq, event.kind))
    """


@hookspec
def symphony_register_workflow_templates(library: TemplateLibrary) -> None:
    """Add workflow templates to the library of the ``workflow`` service.

    Called once per library, when the ``workflow`` service first builds its template library
    (``service.templates``), for every active plugin implementing it.

    :param library: The library (:class:`symphony_workflow.TemplateLibrary`):
        ``library.add(template)`` or ``library.load_path(directory)``.

    Example::

        from pathlib import Path

        from symphony_sdk import hookimpl
        from symphony_workflow import TemplateLibrary

        @hookimpl
        def symphony_register_workflow_templates(library: TemplateLibrary) -> None:
            library.load_path(Path(__file__).parent / "templates")
    """
