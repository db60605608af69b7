"""Turning a :class:`RunRequest` into a checked :class:`Plan`: the workflow, its inputs, and which
plugin implements each node. Nothing runs here and no providing plugin is imported."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from symphony.commons.errors import NotFoundError, ValidationError
from symphony_conductor._request import RunRequest, coerce_input, input_ports

__all__ = [
    "Plan",
    "check_node_types",
    "choose_implementations",
    "default_choice",
    "installed_node_types",
    "load_workflow",
    "prepare",
    "resolve_inputs",
]

RUNNABLE_KINDS = frozenset({"instrument", "operator"})
"""Node kinds whose type a plugin implements (control, input and output nodes are built in)."""


@attrs.frozen
class Plan:
    """A checked run: the workflow, the values for its input nodes, and the plugin chosen to
    implement each instrument and operator node (node id -> plugin id)."""

    run_id: str
    workflow: Any
    inputs: Mapping[str, Any]
    implementations: Mapping[str, str]
    source: str
    template: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    priority: str = "normal"
    """The arbitration class of the run's instrument nodes (from the request)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (the workflow by id and name, not in full)."""
        return {
            "run_id": self.run_id,
            "workflow_id": self.workflow.id,
            "workflow": self.workflow.name,
            "source": self.source,
            "template": dict(self.template) if self.template else None,
            "inputs": sorted(self.inputs),
            "implementations": dict(self.implementations),
            "warnings": list(self.warnings),
            "priority": self.priority,
        }


def _kind(node: Any) -> str:
    return str(getattr(node.kind, "value", node.kind))


def load_workflow(service: Any, request: RunRequest) -> tuple[Any, Mapping[str, Any] | None, tuple[str, ...]]:
    """The workflow a request names (from a file, a document, an object or a template), the
    template it came from (id and parameters) and the instantiation's warnings."""
    if request.template is not None:
        result = service.instantiate(
            request.template, dict(request.params), version=request.template_version, check=False
        )
        template = {"id": request.template, "parameters": dict(result.values)}
        return result.workflow, template, tuple(result.warnings)
    source = request.workflow
    if isinstance(source, str | Path):
        return service.load(source), None, ()
    if isinstance(source, Mapping):
        try:
            text = json.dumps(source)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValidationError(
                f"the workflow document is not JSON: {exc}", code="conductor.request.malformed"
            ) from None
        return service.loads(text), None, ()
    if hasattr(source, "nodes") and hasattr(source, "edges"):
        return source, None, ()
    raise ValidationError(
        f"cannot run a {type(source).__name__}: give a file path, a workflow document or a Workflow",
        code="conductor.request.malformed",
    )


def installed_node_types(kernel: Any, service: Any) -> dict[str, list[str]]:
    """Node type -> ids of the usable plugins providing it (sorted; empty when only the name is
    known). The names are the workflow plugin's ``node_type_lookup()`` (manifests, nothing
    imported, plus what active plugins registered); providers come from the ``node-type:``
    slots of usable plugins' manifests and the registered specs."""
    lookup = service.node_type_lookup()
    found: dict[str, set[str]] = {}
    if lookup is not None and hasattr(lookup, "__iter__"):  # a set of names, or name -> spec
        for name in lookup:
            found.setdefault(name, set())
        if isinstance(lookup, Mapping):
            for name, spec in lookup.items():
                provider = getattr(spec, "provider", None)
                if provider:
                    found[name].add(provider)
    for record in kernel.providers("node-type:"):
        for slot in record.manifest.provides:
            if slot.startswith("node-type:"):
                found.setdefault(slot[len("node-type:") :], set()).add(record.id)
    if "node_types" in kernel.registry_names():
        for spec in kernel.registry("node_types").specs():
            found.setdefault(spec.name, set())
            if spec.provider:
                found[spec.name].add(spec.provider)
    return {name: sorted(ids) for name, ids in sorted(found.items())}


def check_node_types(kernel: Any, workflow: Any, installed: Mapping[str, Sequence[str]]) -> None:
    """Raise :class:`NotFoundError` naming every node type of ``workflow`` no usable plugin provides.

    The message names each missing type and its nodes, and what is installed; a type declared
    by a plugin that cannot be used (disabled, failed, conflicting) names that plugin and why.
    """
    missing: dict[str, list[str]] = {}
    for node in workflow.nodes.values():
        if _kind(node) in RUNNABLE_KINDS and node.type not in installed:
            missing.setdefault(node.type, []).append(node.id)
    if not missing:
        return
    blocked: dict[str, str] = {}
    for record in kernel.plugins:
        manifest = record.manifest
        if manifest is None:
            continue
        for name in missing:
            if f"node-type:{name}" in manifest.provides and name not in blocked:
                blocked[name] = f"{record.id} ({record.state.value}: {record.reason})"
    parts = []
    for name, nodes in missing.items():
        where = f"node {nodes[0]}" if len(nodes) == 1 else f"nodes {', '.join(nodes)}"
        parts.append(
            f"{name!r} ({where}): provided by {blocked[name]}" if name in blocked else f"{name!r} ({where})"
        )
    shown = ", ".join(installed) or "none"
    raise NotFoundError(
        f"no usable plugin provides node type {'; '.join(parts)}; installed node types: {shown}",
        code="conductor.unknown_node_type",
        context={
            "missing": sorted(missing),
            "nodes": {name: nodes for name, nodes in missing.items()},
            "installed": list(installed),
            "blocked": blocked,
        },
        hint="install the plugin that provides it (`symphony plugins list` shows what is installed "
        "and why a plugin cannot be used)",
    )


def default_choice(candidates: Sequence[str]) -> str:
    """The default decision policy: the first candidate in sorted order (deterministic)."""
    return sorted(candidates)[0]


def choose_implementations(
    kernel: Any, workflow: Any, installed: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Node id -> plugin id for every instrument and operator node, asking the
    ``symphony_choose_implementation`` hook where several plugins provide a type."""
    chosen: dict[str, str] = {}
    caller = getattr(kernel.hook, "symphony_choose_implementation", None)
    for node in workflow.nodes.values():
        if _kind(node) not in RUNNABLE_KINDS:
            continue
        candidates = sorted(installed[node.type])
        if not candidates:  # known by name only: the DAG tracker finds its implementation at run time
            continue
        pick: Any = None
        if len(candidates) > 1 and caller is not None:
            pick = caller(node_type=node.type, candidates=candidates, node=node, kernel=kernel)
            if pick is not None and pick not in candidates:
                raise ValidationError(
                    f"the decision policy chose {pick!r} for node {node.id!r} ({node.type}), "
                    f"which is not one of its providers: {', '.join(candidates)}",
                    code="conductor.bad_choice",
                    context={
                        "node": node.id,
                        "type": node.type,
                        "choice": repr(pick),
                        "candidates": candidates,
                    },
                )
        chosen[node.id] = pick if pick is not None else default_choice(candidates)
    return chosen


def resolve_inputs(workflow: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """The value of every input node: given ones (text is coerced to the port's type) or the
    port's default; :class:`ValidationError` for an unknown node or a missing value."""
    ports = input_ports(workflow)
    unknown = sorted(set(given) - set(ports))
    if unknown:
        raise ValidationError(
            f"the workflow has no input node {unknown[0]!r}; its input nodes: {', '.join(sorted(ports)) or 'none'}",
            code="conductor.unknown_input",
            context={"input": unknown[0], "inputs": sorted(ports)},
        )
    values: dict[str, Any] = {}
    for node_id, port_type in ports.items():
        if node_id in given:
            value = given[node_id]
            values[node_id] = (
                coerce_input(node_id, port_type, value) if isinstance(value, str | bytes) else value
            )
            continue
        outs = workflow.node(node_id).outputs
        default = outs[0].default if outs else None
        if default is None:
            raise ValidationError(
                f"input node {node_id!r} ({port_type}) needs a value",
                code="conductor.missing_input",
                context={"input": node_id, "type": port_type},
                hint=f"pass --input {node_id}=VALUE or --input {node_id}=@FILE",
            )
        values[node_id] = default
    return values


def prepare(kernel: Any, service: Any, request: RunRequest) -> Plan:
    """Load, check and plan ``request``; raise a :class:`SymphonyError` naming the first problem.

    Order: load (or instantiate the template), node types against installed plugins (from
    manifests: nothing imported), full validation, inputs, implementation choices.
    """
    workflow, template, warnings = load_workflow(service, request)
    installed = installed_node_types(kernel, service)
    check_node_types(kernel, workflow, installed)
    report = service.validate(workflow)
    what = f"workflow from template {request.template!r}" if request.template else "workflow"
    report.raise_for_errors(what=what)
    inputs = resolve_inputs(workflow, request.inputs)
    implementations = choose_implementations(kernel, workflow, installed)
    return Plan(
        run_id=request.run_id or uuid.uuid4().hex[:12],
        workflow=workflow,
        inputs=inputs,
        implementations=implementations,
        source=request.describe(),
        template=template,
        warnings=(*warnings, *(w.message for w in report.warnings)),
        priority=request.priority,
    )
