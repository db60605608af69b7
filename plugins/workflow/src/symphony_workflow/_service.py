"""The ``workflow`` service: one object bundling loading, validation, rendering, templates, runs.

Inside a kernel it is registered as the service ``"workflow"``::

    wf_service = kernel.service("workflow")
    workflow = wf_service.load("examples/workflows/text-report.json")
    report = wf_service.validate(workflow)            # node types checked against installed plugins

Standalone (no kernel) it works the same, except that node types cannot be checked against
installed plugins (validation says so with a warning) unless ``node_types`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from symphony.commons.errors import SymphonyError
from symphony_workflow._audit import AuditLog, JsonlAuditStorage
from symphony_workflow._events import BusEventSink, EventHub, EventSink, HookEventSink
from symphony_workflow._execution import DurationEstimator, Execution
from symphony_workflow._model import Workflow
from symphony_workflow._node_types import installed_node_types
from symphony_workflow._render import render
from symphony_workflow._serialization import DEFAULT_MAX_NODES, dumps, load, loads, to_binary
from symphony_workflow._templates import Instantiation, Template, TemplateLibrary
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem
from symphony_workflow._validation import NodeTypeLookup, ValidationOptions, ValidationReport, validate

__all__ = ["TEMPLATE_PATH_ENV", "WorkflowService"]

TEMPLATE_PATH_ENV = "SYMPHONY_WORKFLOW_TEMPLATES"
"""Environment variable: extra template directories, separated by the OS path separator."""


class WorkflowService:
    """Facade over the workflow package, optionally bound to a kernel."""

    def __init__(
        self,
        kernel: Any = None,
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        template_paths: Iterable[str | Path] = (),
        audit_path: str | Path | None = None,
        bus_events: bool = True,
        node_types: NodeTypeLookup | None = None,
        types: TypeSystem = DEFAULT_TYPES,
    ) -> None:
        self.kernel = kernel
        self.max_nodes = max_nodes
        self.template_paths = [Path(p) for p in template_paths]
        self.audit = AuditLog(JsonlAuditStorage(audit_path)) if audit_path else AuditLog()
        self.bus_events = bus_events
        self.types = types
        self.events = EventHub()
        """Every execution made by this service emits here too."""
        self.estimator = DurationEstimator()
        """Node durations learnt across this service's executions (for ETAs)."""
        self._node_types = node_types
        self._library: TemplateLibrary | None = None

    @classmethod
    def from_kernel(cls, kernel: Any) -> WorkflowService:
        """A service configured from the kernel's ``[workflow]`` config section."""
        try:
            section = dict(kernel.config.section("workflow"))
        except (SymphonyError, KeyError, AttributeError):
            section = {}
        return cls(
            kernel,
            max_nodes=int(section.get("max_nodes", DEFAULT_MAX_NODES)),
            template_paths=section.get("template_paths", ()),
            audit_path=section.get("audit_path") or None,
            bus_events=bool(section.get("bus_events", True)),
        )

    # -- node types -------------------------------------------------------------------------------

    def node_type_lookup(self) -> NodeTypeLookup | None:
        """Which node types are installed: explicit ``node_types``, else the kernel's plugins.

        From a kernel: a mapping of type name to :class:`NodeTypeSpec` (``None`` when only the
        name is known) built from usable plugins' manifests (``node-type:<name>`` slots and
        ``[contributes.node_types]`` tables; nothing imported), completed by what active plugins
        registered with ``symphony_register_node_types``. Validation checks each node's ports
        against its type's spec. ``None`` without a kernel (validation then skips that check
        with a warning).
        """
        if self._node_types is not None:
            return self._node_types
        if self.kernel is None:
            return None
        try:
            return installed_node_types(self.kernel)
        except SymphonyError:
            return None

    # -- documents --------------------------------------------------------------------------------

    def load(self, source: str | Path | IO[str] | IO[bytes], *, strict: bool = False) -> Workflow:
        """Read a workflow file (JSON or binary)."""
        return load(source, types=self.types, max_nodes=self.max_nodes, strict=strict)

    def loads(self, text: str | bytes, *, strict: bool = False) -> Workflow:
        """Parse a workflow document."""
        return loads(text, types=self.types, max_nodes=self.max_nodes, strict=strict)

    def validate(self, workflow: Workflow, *, options: ValidationOptions | None = None) -> ValidationReport:
        """Full validation, with node types checked against installed plugins when possible."""
        return validate(workflow, node_types=self.node_type_lookup(), options=options)

    def render(self, workflow: Workflow, format: str = "text", *, color: bool = False) -> str:
        """Render as ``text``, ``mermaid`` or ``dot``."""
        return render(workflow, format, color=color)

    def dumps(self, workflow: Workflow, *, indent: int | None = None) -> str:
        """JSON text."""
        return dumps(workflow, indent=indent)

    def to_binary(self, workflow: Workflow, *, compress: str | None = None) -> bytes:
        """Binary form."""
        return to_binary(workflow, compress=compress)

    # -- templates --------------------------------------------------------------------------------

    @property
    def templates(self) -> TemplateLibrary:
        """The template library: configured ``template_paths``, ``$SYMPHONY_WORKFLOW_TEMPLATES``,
        and whatever plugins add through ``symphony_register_workflow_templates(library)``. Built once."""
        if self._library is None:
            library = TemplateLibrary()
            extra = [Path(p) for p in os.environ.get(TEMPLATE_PATH_ENV, "").split(os.pathsep) if p]
            for path in [*self.template_paths, *extra]:
                if path.exists():
                    library.load_path(path, replace=True)
            if self.kernel is not None:
                caller = getattr(self.kernel.hook, "symphony_register_workflow_templates", None)
                if caller is not None:
                    caller(library=library)
            self._library = library
        return self._library

    def add_template_path(self, path: str | Path) -> list[Template]:
        """Load more templates into the library."""
        return self.templates.load_path(path, replace=True)

    def instantiate(
        self,
        template_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        check: bool = True,
    ) -> Instantiation:
        """Instantiate the best version of a template matching ``version``."""
        template = self.templates.get(template_id, version)
        return template.instantiate(
            values, overrides=overrides, node_types=self.node_type_lookup(), types=self.types, check=check
        )

    # -- executions -------------------------------------------------------------------------------

    def sinks(self) -> list[EventSink]:
        """Where execution events go: this service's hub, the plugin hook, and the bus if running."""
        sinks: list[EventSink] = [self.events]
        if self.kernel is not None:
            sinks.append(HookEventSink(self.kernel.hook))
            if self.bus_events and _bus_ready(self.kernel):
                try:
                    sinks.append(BusEventSink(self.kernel.bus))
                except SymphonyError:
                    pass
        return sinks

    def execution(self, workflow: Workflow, *, execution_id: str | None = None) -> Execution:
        """A new :class:`Execution` of ``workflow`` wired to :meth:`sinks` and the audit log."""
        return Execution(
            workflow,
            execution_id=execution_id,
            sinks=self.sinks(),
            audit=self.audit,
            estimator=self.estimator,
        )


def _bus_ready(kernel: Any) -> bool:
    running = getattr(kernel, "running", False)
    if callable(running):  # a method in some kernel versions, a property in others
        running = running()
    if not running:
        return False
    try:
        import symphony.bus  # noqa: F401
    except ImportError:  # pragma: no cover - the bus ships with core
        return False
    return True
