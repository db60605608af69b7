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
(:class:`WorkflowService`) and the ``symphony workflow`` command.
"""

from __future__ import annotations

from symphony_workflow.audit import AuditEntry, AuditLog, AuditSink, JsonlAuditStorage, MemoryAuditStorage
from symphony_workflow.builder import WorkflowBuilder
from symphony_workflow.dag import (
    CriticalPath,
    WorkflowDiff,
    all_paths,
    ancestors,
    critical_path,
    descendants,
    diff,
    levels,
    subgraph,
    topological_order,
)
from symphony_workflow.errors import CycleError, InvalidTransitionError, WorkflowValidationError
from symphony_workflow.events import (
    BusEventSink,
    CallbackSink,
    EventHub,
    EventKind,
    EventSink,
    ExecutionEvent,
    HookEventSink,
    Subscription,
)
from symphony_workflow.execution import (
    NODE_TRANSITIONS,
    RUN_TRANSITIONS,
    Cancel,
    Command,
    DurationEstimator,
    Execution,
    NodeRun,
    NodeRunState,
    Pause,
    Progress,
    ProvideInput,
    Resume,
    RetryNode,
    RunState,
    SkipNode,
    Start,
    Transition,
    command_from_dict,
    command_to_dict,
)
from symphony_workflow.expr import Expression
from symphony_workflow.model import (
    CONTROL_TYPES,
    Edge,
    EdgeKind,
    Node,
    NodeKind,
    Port,
    Workflow,
    WorkflowMetadata,
)
from symphony_workflow.render import render, render_dot, render_mermaid, render_text
from symphony_workflow.serialization import (
    DEFAULT_MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    MigrationRegistry,
    detect_format,
    dump,
    dumps,
    from_binary,
    from_document,
    json_schema,
    load,
    loads,
    to_binary,
    to_document,
)
from symphony_workflow.service import WorkflowService
from symphony_workflow.templates import (
    Constraints,
    Instantiation,
    Parameter,
    ParamType,
    SearchHit,
    Template,
    TemplateLibrary,
    UIHints,
    load_template,
)
from symphony_workflow.types import DEFAULT_TYPES, TypeSystem
from symphony_workflow.validation import (
    INTEGRITY_CODES,
    Issue,
    Severity,
    ValidationOptions,
    ValidationReport,
    check_parts,
    validate,
)
from symphony_workflow.versioning import SemVer, VersionConstraint

__all__ = [
    "CONTROL_TYPES",
    "DEFAULT_MIGRATIONS",
    "DEFAULT_TYPES",
    "INTEGRITY_CODES",
    "NODE_TRANSITIONS",
    "RUN_TRANSITIONS",
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditLog",
    "AuditSink",
    "BusEventSink",
    "CallbackSink",
    "Cancel",
    "Command",
    "Constraints",
    "CriticalPath",
    "CycleError",
    "DurationEstimator",
    "Edge",
    "EdgeKind",
    "EventHub",
    "EventKind",
    "EventSink",
    "Execution",
    "ExecutionEvent",
    "Expression",
    "HookEventSink",
    "Instantiation",
    "InvalidTransitionError",
    "Issue",
    "JsonlAuditStorage",
    "MemoryAuditStorage",
    "Migration",
    "MigrationRegistry",
    "Node",
    "NodeKind",
    "NodeRun",
    "NodeRunState",
    "ParamType",
    "Parameter",
    "Pause",
    "Port",
    "Progress",
    "ProvideInput",
    "Resume",
    "RetryNode",
    "RunState",
    "SearchHit",
    "SemVer",
    "Severity",
    "SkipNode",
    "Start",
    "Subscription",
    "Template",
    "TemplateLibrary",
    "Transition",
    "TypeSystem",
    "UIHints",
    "ValidationOptions",
    "ValidationReport",
    "VersionConstraint",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowDiff",
    "WorkflowMetadata",
    "WorkflowService",
    "WorkflowValidationError",
    "all_paths",
    "ancestors",
    "check_parts",
    "command_from_dict",
    "command_to_dict",
    "critical_path",
    "descendants",
    "detect_format",
    "diff",
    "dump",
    "dumps",
    "from_binary",
    "from_document",
    "json_schema",
    "levels",
    "load",
    "load_template",
    "loads",
    "render",
    "render_dot",
    "render_mermaid",
    "render_text",
    "subgraph",
    "to_binary",
    "to_document",
    "topological_order",
    "validate",
]
