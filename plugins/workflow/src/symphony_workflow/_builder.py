"""A fluent builder: add nodes by id, wire them, and get a validated workflow.

>>> wf = (
...     WorkflowBuilder("summarize", version="1.0.0")
...     .input("document", "text")
...     .operator("split", "text.split", inputs={"text": "text"}, outputs={"chunks": "list[text]"})
...     .at(200, 0)
...     .connect("document.value", "split.text")
...     .output("chunks", "list[text]")
...     .connect_from("split.chunks")
...     .build()
... )
>>> [n for n in wf.nodes]
['document', 'split', 'chunks']

Every call is checked at once (an unknown node or port, a type mismatch or a cycle raises
right there); :meth:`WorkflowBuilder.build` then runs the full validation and refuses an
invalid workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from symphony.commons.errors import ValidationError
from symphony_workflow._model import Edge, EdgeKind, Node, Port, Workflow, WorkflowMetadata
from symphony_workflow._policy import NodePolicy
from symphony_workflow._types import DEFAULT_TYPES, TypeSystem
from symphony_workflow._validation import NodeTypeLookup, ValidationOptions, validate

__all__ = ["WorkflowBuilder"]

PortSpec = Mapping[str, str] | Iterable[Port]


class WorkflowBuilder:
    """Builds a :class:`Workflow` step by step; every method returns the builder.

    The *current node* is the one added last (or chosen with :meth:`select`); :meth:`at`,
    :meth:`meta`, :meth:`config`, :meth:`connect_to` and :meth:`connect_from` act on it.
    Endpoints are written ``"node.port"``, or just ``"node"`` when that node has exactly one
    port on the side that is needed.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "0.1.0",
        description: str = "",
        id: str | None = None,
        types: TypeSystem = DEFAULT_TYPES,
    ) -> None:
        self._wf = Workflow(name, version=version, description=description, id=id, types=types)
        self._meta: dict[str, Any] = {}
        self._current: str | None = None

    # -- workflow fields --------------------------------------------------------------------------

    def describe(self, description: str) -> WorkflowBuilder:
        """Set the workflow description."""
        self._wf.description = description
        return self

    def author(self, author: str) -> WorkflowBuilder:
        """Set the workflow author."""
        self._meta["author"] = author
        return self

    def tags(self, *tags: str) -> WorkflowBuilder:
        """Add tags to the workflow."""
        self._meta["tags"] = (*self._meta.get("tags", ()), *tags)
        return self

    def category(self, category: str) -> WorkflowBuilder:
        """Set the workflow category."""
        self._meta["category"] = category
        return self

    def custom(self, **values: Any) -> WorkflowBuilder:
        """Add custom workflow metadata (JSON values)."""
        self._meta["custom"] = {**self._meta.get("custom", {}), **values}
        return self

    # -- nodes ------------------------------------------------------------------------------------

    def node(self, node: Node) -> WorkflowBuilder:
        """Add a ready-made :class:`Node` and make it current."""
        self._wf.add_node(node)
        self._current = node.id
        return self

    def input(self, id: str, type: str = "any", **kwargs: Any) -> WorkflowBuilder:
        """Add a workflow input (output port ``value``)."""
        return self.node(Node.input_node(id, type, **kwargs))

    def output(self, id: str, type: str = "any", **kwargs: Any) -> WorkflowBuilder:
        """Add a workflow output (input port ``value``)."""
        return self.node(Node.output_node(id, type, **kwargs))

    def operator(
        self, id: str, type: str, *, inputs: PortSpec = (), outputs: PortSpec = (), **kwargs: Any
    ) -> WorkflowBuilder:
        """Add an operator node; ports as ``{"name": "type"}`` or :class:`Port` objects."""
        return self.node(Node.operator(id, type, inputs=inputs, outputs=outputs, **kwargs))

    def instrument(
        self, id: str, type: str, *, inputs: PortSpec = (), outputs: PortSpec = (), **kwargs: Any
    ) -> WorkflowBuilder:
        """Add an instrument (AI model) node."""
        return self.node(Node.instrument(id, type, inputs=inputs, outputs=outputs, **kwargs))

    def control(self, id: str, type: str, **kwargs: Any) -> WorkflowBuilder:
        """Add a control node (``branch``, ``merge``, ``parallel``, ``join``) with its default ports."""
        return self.node(Node.control(id, type, **kwargs))

    def branch(self, id: str, **kwargs: Any) -> WorkflowBuilder:
        """Add a branch node; give its ways out with :meth:`when`."""
        return self.control(id, "branch", **kwargs)

    def merge(self, id: str, **kwargs: Any) -> WorkflowBuilder:
        """Add a merge node (takes the first of several alternatives)."""
        return self.control(id, "merge", **kwargs)

    def parallel(self, id: str, **kwargs: Any) -> WorkflowBuilder:
        """Add a parallel (fan-out) node."""
        return self.control(id, "parallel", **kwargs)

    def join(self, id: str, **kwargs: Any) -> WorkflowBuilder:
        """Add a join node (waits for every incoming edge, outputs the list)."""
        return self.control(id, "join", **kwargs)

    def select(self, node_id: str) -> WorkflowBuilder:
        """Make ``node_id`` the current node."""
        self._wf.node(node_id)
        self._current = node_id
        return self

    def _current_node(self) -> Node:
        if self._current is None:
            raise ValidationError(
                "no current node: add a node first", code="workflow.builder.no_current_node"
            )
        return self._wf.node(self._current)

    def _evolve_current(self, **changes: Any) -> WorkflowBuilder:
        node = self._current_node()
        self._wf.replace_node(attrs.evolve(node, **changes))
        return self

    def at(self, x: float, y: float) -> WorkflowBuilder:
        """Position the current node on the canvas."""
        return self._evolve_current(position=(x, y))

    def meta(self, **values: Any) -> WorkflowBuilder:
        """Add metadata to the current node (``docs``, ``cost``, ...)."""
        node = self._current_node()
        return self._evolve_current(metadata={**node.metadata, **values})

    def config(self, **values: Any) -> WorkflowBuilder:
        """Add configuration to the current node."""
        node = self._current_node()
        return self._evolve_current(config={**node.config, **values})

    def disable(self) -> WorkflowBuilder:
        """Disable the current node (it will not run)."""
        return self._evolve_current(enabled=False)

    # -- execution policy of the current node (see NodePolicy) --------------------------------------

    def policy(self, policy: NodePolicy | None = None, **fields: Any) -> WorkflowBuilder:
        """Set the current node's policy: a :class:`NodePolicy`, and/or fields changed on it."""
        base = policy if policy is not None else self._current_node().policy
        return self._evolve_current(policy=attrs.evolve(base, **fields) if fields else base)

    def retry(
        self,
        retries: int,
        *,
        backoff: str = "exponential",
        delay: float = 1.0,
        max_delay: float = 60.0,
        jitter: float = 0.0,
        on: Iterable[str] = (),
    ) -> WorkflowBuilder:
        """Retry the current node up to ``retries`` more times on the errors ``on`` (all if empty)."""
        return self.policy(
            retries=retries,
            backoff=backoff,
            retry_delay=delay,
            retry_max_delay=max_delay,
            retry_jitter=jitter,
            retry_on=tuple(on),
        )

    def timeout(self, seconds: float | None) -> WorkflowBuilder:
        """Bound each attempt of the current node to ``seconds`` (``None``: no limit)."""
        return self.policy(timeout=seconds)

    def fallback(self, node: str | None = None, *, value: Mapping[str, Any] | None = None) -> WorkflowBuilder:
        """On final failure run ``node`` instead, or complete with the outputs ``value``."""
        return self.policy(fallback=node, fallback_value=None if value is None else dict(value))

    def optional(self, optional: bool = True) -> WorkflowBuilder:
        """Mark the current node optional: on failure it is skipped and dependents get port defaults."""
        return self.policy(optional=optional)

    def cache(self, enabled: bool = True, *, salt: str = "") -> WorkflowBuilder:
        """Allow (or forbid) reusing cached outputs of the current node; ``salt`` versions the key."""
        return self.policy(cache=enabled, cache_salt=salt)

    # -- edges ------------------------------------------------------------------------------------

    def _endpoint(self, ref: str, side: str) -> tuple[str, str | None]:
        node_id, dot, port = ref.partition(".")
        node = self._wf.node(node_id)
        if dot:
            return node_id, port
        ports = node.outputs if side == "out" else node.inputs
        if len(ports) == 1:
            return node_id, ports[0].name
        raise ValidationError(
            f"node {node_id!r} has {len(ports)} {'outputs' if side == 'out' else 'inputs'}: "
            f"name one as {node_id}.<port>",
            code="workflow.builder.ambiguous_port",
            context={"node": node_id, "available": [p.name for p in ports]},
        )

    def connect(self, source: str, target: str, **kwargs: Any) -> WorkflowBuilder:
        """Add a data edge ``"a.out" -> "b.in"`` (ports may be left out when unambiguous)."""
        s, sp = self._endpoint(source, "out")
        t, tp = self._endpoint(target, "in")
        self._wf.add_edge(Edge(EdgeKind.DATA, s, t, source_port=sp, target_port=tp, **kwargs))
        return self

    def connect_to(self, target: str, *, port: str | None = None, **kwargs: Any) -> WorkflowBuilder:
        """Data edge from the current node (its only output, or ``port``) to ``target``."""
        node = self._current_node()
        return self.connect(f"{node.id}.{port}" if port else node.id, target, **kwargs)

    def connect_from(self, source: str, *, port: str | None = None, **kwargs: Any) -> WorkflowBuilder:
        """Data edge from ``source`` to the current node (its only input, or ``port``)."""
        node = self._current_node()
        return self.connect(source, f"{node.id}.{port}" if port else node.id, **kwargs)

    def after(
        self, source: str, target: str | None = None, *, priority: int = 0, **kwargs: Any
    ) -> WorkflowBuilder:
        """Control edge: ``target`` (default: the current node) runs after ``source``."""
        tgt = target if target is not None else self._current_node().id
        self._wf.add_edge(Edge.control(source, tgt, priority=priority, **kwargs))
        return self

    def when(
        self, source: str, target: str, condition: str, *, label: str = "", data: bool = False, **kwargs: Any
    ) -> WorkflowBuilder:
        """Conditional edge ``source -> target`` taken when ``condition`` holds.

        Endpoints are node ids; with ``data=True`` (or ``"node.port"`` endpoints) the edge also
        carries a value between the two ports.
        """
        carries = data or "." in source or "." in target
        if carries:
            s, sp = self._endpoint(source, "out")
            t, tp = self._endpoint(target, "in")
        else:
            s, sp, t, tp = source, None, target, None
        self._wf.add_edge(
            Edge(
                EdgeKind.CONDITIONAL,
                s,
                t,
                source_port=sp,
                target_port=tp,
                condition=condition,
                label=label,
                **kwargs,
            )
        )
        return self

    def edge(self, edge: Edge) -> WorkflowBuilder:
        """Add a ready-made :class:`Edge`."""
        self._wf.add_edge(edge)
        return self

    # -- result -----------------------------------------------------------------------------------

    def build(
        self,
        *,
        check: bool = True,
        node_types: NodeTypeLookup | None = None,
        options: ValidationOptions | None = None,
    ) -> Workflow:
        """The workflow; with ``check`` (default) a workflow with validation errors is refused.

        The builder can keep going afterwards: ``build`` returns a copy.
        """
        wf = self._wf.copy()
        if self._meta:
            wf.metadata = WorkflowMetadata(**self._meta)
        if check:
            validate(wf, node_types=node_types, options=options).raise_for_errors()
        return wf
