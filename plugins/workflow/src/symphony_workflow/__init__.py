"""Symphony workflows: typed DAGs of instruments and operators, their validation, serialization,
templates and execution state.

    from symphony_workflow import WorkflowBuilder, dumps, loads, validate

    wf = (
        WorkflowBuilder("summarize")
        .input("document", "text")
        .instrument("summary", "llm.generate", inputs={"prompt": "text"}, outputs={"text": "text"})
        .connect("document.value", "summary.prompt")
        .output("result", "text")
        .connect_from("summary.text")
        .build()
    )
    assert loads(dumps(wf)) == wf
    assert validate(wf, node_types={"llm.generate"}).valid

The package is also a Symphony plugin: it registers the ``workflow`` service
(:class:`WorkflowService`), the ``symphony workflow`` command, and the ``node_types`` registry
(:class:`NodeTypeRegistry`) that ``symphony_register_node_types`` hooks fill.

This module is the package's front door: what ``__all__`` lists is its API. The other modules
are private (``_model``, ``_validation``, ...) and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony.commons.lazy import lazy_getattr

if TYPE_CHECKING:
    from symphony_workflow._builder import WorkflowBuilder
    from symphony_workflow._dag import critical_path, diff, levels, topological_order
    from symphony_workflow._errors import CycleError, WorkflowValidationError
    from symphony_workflow._events import ExecutionEvent
    from symphony_workflow._execution import Execution
    from symphony_workflow._model import Edge, EdgeKind, Node, NodeKind, Port, Workflow
    from symphony_workflow._node_types import NodeTypeRegistry, NodeTypeSpec
    from symphony_workflow._policy import NodePolicy
    from symphony_workflow._render import render
    from symphony_workflow._serialization import dump, dumps, load, loads, to_binary
    from symphony_workflow._service import WorkflowService
    from symphony_workflow._templates import Template, TemplateLibrary
    from symphony_workflow._validation import Issue, ValidationOptions, ValidationReport, validate

_LAZY: dict[str, str] = {
    "CycleError": "symphony_workflow._errors",
    "Edge": "symphony_workflow._model",
    "EdgeKind": "symphony_workflow._model",
    "Execution": "symphony_workflow._execution",
    "ExecutionEvent": "symphony_workflow._events",
    "Issue": "symphony_workflow._validation",
    "Node": "symphony_workflow._model",
    "NodeKind": "symphony_workflow._model",
    "NodePolicy": "symphony_workflow._policy",
    "NodeTypeRegistry": "symphony_workflow._node_types",
    "NodeTypeSpec": "symphony_workflow._node_types",
    "Port": "symphony_workflow._model",
    "Template": "symphony_workflow._templates",
    "TemplateLibrary": "symphony_workflow._templates",
    "ValidationOptions": "symphony_workflow._validation",
    "ValidationReport": "symphony_workflow._validation",
    "Workflow": "symphony_workflow._model",
    "WorkflowBuilder": "symphony_workflow._builder",
    "WorkflowService": "symphony_workflow._service",
    "WorkflowValidationError": "symphony_workflow._errors",
    "critical_path": "symphony_workflow._dag",
    "diff": "symphony_workflow._dag",
    "dump": "symphony_workflow._serialization",
    "dumps": "symphony_workflow._serialization",
    "levels": "symphony_workflow._dag",
    "load": "symphony_workflow._serialization",
    "loads": "symphony_workflow._serialization",
    "render": "symphony_workflow._render",
    "to_binary": "symphony_workflow._serialization",
    "topological_order": "symphony_workflow._dag",
    "validate": "symphony_workflow._validation",
}
"""Name -> private module; imported on first use, so activating the plugin (or a plugin that
requires it) does not import the whole package."""

__all__ = [
    "CycleError",
    "Edge",
    "EdgeKind",
    "Execution",
    "ExecutionEvent",
    "Issue",
    "Node",
    "NodeKind",
    "NodePolicy",
    "NodeTypeRegistry",
    "NodeTypeSpec",
    "Port",
    "Template",
    "TemplateLibrary",
    "ValidationOptions",
    "ValidationReport",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowService",
    "WorkflowValidationError",
    "critical_path",
    "diff",
    "dump",
    "dumps",
    "levels",
    "load",
    "loads",
    "render",
    "to_binary",
    "topological_order",
    "validate",
]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
