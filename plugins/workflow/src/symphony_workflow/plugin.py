"""Hook implementations: what the kernel calls when the workflow plugin is activated."""

from __future__ import annotations

from symphony.hookspecs import hookimpl
from symphony.kernel import Kernel
from symphony.services import CommandRegistry, ServiceRegistry


@hookimpl
def symphony_register_services(registry: ServiceRegistry, kernel: Kernel) -> None:
    """Provide the ``workflow`` service, configured from the ``[workflow]`` section."""
    from symphony_workflow._service import WorkflowService

    registry.add("workflow", WorkflowService.from_kernel(kernel))


@hookimpl
def symphony_register_commands(registry: CommandRegistry) -> None:
    """Add ``symphony workflow ...``."""
    from symphony_workflow._cli import workflow

    registry.add(workflow)


@hookimpl
def symphony_activate(kernel: Kernel) -> None:
    """Add the workflow hookspecs and the ``node_types`` registry they fill.

    Plugins that add node types require this plugin, so they are activated after it. What a
    plugin registers is checked against what its manifest declares
    (``[contributes.node_types."<name>"]``): a difference fails that plugin, naming both.
    """
    from symphony_workflow import hookspecs
    from symphony_workflow._node_types import NodeTypeRegistry, declared_by_plugins

    caller = getattr(kernel.hook, "symphony_register_node_types", None)
    if caller is None or not caller.has_spec():
        kernel.add_hookspecs(hookspecs)
    declared = declared_by_plugins(kernel)
    kernel.add_registry(
        "node_types", "symphony_register_node_types", lambda: NodeTypeRegistry(declared=declared)
    )
