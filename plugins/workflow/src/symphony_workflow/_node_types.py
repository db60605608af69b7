"""The registry of workflow node types that plugins can execute.

The workflow plugin adds one :class:`NodeTypeRegistry` to the kernel when it is activated
(``kernel.add_registry("node_types", "symphony_register_node_types", NodeTypeRegistry)``); the
kernel hands it to every plugin's ``symphony_register_node_types(registry)`` hook. A plugin
(which lists ``symphony-workflow`` in its manifest's ``requires``) adds the instruments and
operators it can run::

    from symphony_sdk import hookimpl
    from symphony_workflow import NodeTypeRegistry

    @hookimpl
    def symphony_register_node_types(registry: NodeTypeRegistry) -> None
        registry.add(
            "text.split",
            kind="operator",
            inputs={"text": "text"},
            outputs={"chunks": "list[text]"},
            summary="Split text into chunks.",
            implementation=SplitText(),   # an symphony_sdk Operator or Instrument
        )

Each type should also be declared in the plugin's manifest as ``provides = ["node-type:text.split"]``
so workflows can be checked against installed plugins without importing them. Registering a
type name twice is a :class:`~symphony.commons.errors.ConflictError` naming both providers.

While a plugin's hook runs, the kernel sets :attr:`NodeTypeRegistry.current_plugin` to that
plugin's id, which becomes the ``provider`` of what it adds (an explicit ``provider=`` wins).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import attrs

from symphony.commons.errors import ConflictError, NotFoundError, ValidationError
from symphony_workflow._model import NodeKind

__all__ = ["NodeTypeRegistry", "NodeTypeSpec"]

_KINDS = frozenset(k.value for k in NodeKind)

_TYPE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,127}$")
_PORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _frozen_ports(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class NodeTypeSpec:
    """One registered node type: its name, kind, typed ports, summary and providing plugin."""

    name: str
    kind: str
    inputs: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_ports)
    outputs: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_ports)
    summary: str = ""
    provider: str | None = None
    implementation: Any = attrs.field(default=None, eq=False, repr=False)
    """What runs the node (an ``symphony_sdk`` ``Operator``/``Instrument``); ``None`` for metadata only."""

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict of this spec (for ``--json`` output and the bus)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "summary": self.summary,
            "provider": self.provider,
        }


class NodeTypeRegistry:
    """Node types by name, filled by ``symphony_register_node_types`` hooks.

    Constructible with no arguments. Lookup by name is O(1).

    >>> reg = NodeTypeRegistry()
    >>> _ = reg.add("text.split", kind="operator", inputs={"text": "text"}, provider="symphony-textops")
    >>> "text.split" in reg, reg.names()
    (True, ['text.split'])
    """

    def __init__(self) -> None:
        self._types: dict[str, NodeTypeSpec] = {}
        self.current_plugin: str | None = None
        """Set by the kernel while a plugin's registration hook runs; the default ``provider``."""

    def add(
        self,
        type_name: str,
        *,
        kind: NodeKind | str,
        inputs: Mapping[str, str] | None = None,
        outputs: Mapping[str, str] | None = None,
        summary: str = "",
        provider: str | None = None,
        implementation: Any = None,
    ) -> NodeTypeSpec:
        """Register ``type_name``; returns its spec.

        ``implementation`` is what executes the node (an object with an ``execute(inputs,
        context)`` method, e.g. an ``symphony_sdk.Operator`` or ``Instrument``); without one the
        type is metadata only and a run reaching it fails naming the type.

        Raises :class:`ValidationError` for a malformed name, kind or port mapping and
        :class:`ConflictError` (naming both providers) if the name is already registered.
        """
        if not isinstance(type_name, str) or not _TYPE_NAME.match(type_name):
            raise ValidationError(
                f"invalid node type name {type_name!r}",
                code="node_types.invalid_name",
                context={"type": repr(type_name)},
                hint="use letters, digits and . _ : / - (at most 128 characters), e.g. 'text.split'",
            )
        if kind not in _KINDS:
            raise ValidationError(
                f"invalid kind {kind!r} for node type {type_name!r}",
                code="node_types.invalid_kind",
                context={"type": type_name, "kind": repr(kind), "allowed": [k.value for k in NodeKind]},
            )
        ports_in = self._check_ports(type_name, "inputs", inputs)
        ports_out = self._check_ports(type_name, "outputs", outputs)
        if not isinstance(summary, str):
            raise ValidationError(
                f"summary of node type {type_name!r} must be a string",
                code="node_types.invalid_summary",
                context={"type": type_name},
            )
        who = provider if provider is not None else self.current_plugin
        existing = self._types.get(type_name)
        if existing is not None:
            raise ConflictError(
                f"node type {type_name!r} is provided by both {existing.provider or '<unknown>'!s} "
                f"and {who or '<unknown>'!s}",
                code="node_types.duplicate",
                context={"type": type_name, "providers": [existing.provider, who]},
                hint="uninstall or disable one of the two plugins",
            )
        if implementation is not None and not callable(getattr(implementation, "execute", None)):
            raise ValidationError(
                f"implementation of node type {type_name!r} has no execute(inputs, context) method",
                code="node_types.invalid_implementation",
                context={"type": type_name, "implementation": type(implementation).__name__},
                hint="subclass symphony_sdk.Operator or symphony_sdk.Instrument",
            )
        spec = NodeTypeSpec(
            name=type_name,
            kind=str(kind),
            inputs=ports_in,
            outputs=ports_out,
            summary=summary,
            provider=who,
            implementation=implementation,
        )
        self._types[type_name] = spec
        return spec

    @staticmethod
    def _check_ports(type_name: str, which: str, ports: Mapping[str, str] | None) -> dict[str, str]:
        if ports is None:
            return {}
        if not isinstance(ports, Mapping):
            raise ValidationError(
                f"{which} of node type {type_name!r} must be a mapping of port name to port type",
                code="node_types.invalid_ports",
                context={"type": type_name, "field": which},
            )
        out: dict[str, str] = {}
        for name, port_type in ports.items():
            if not isinstance(name, str) or not _PORT_NAME.match(name):
                raise ValidationError(
                    f"invalid port name {name!r} in {which} of node type {type_name!r}",
                    code="node_types.invalid_port_name",
                    context={"type": type_name, "field": which, "port": repr(name)},
                )
            if not isinstance(port_type, str) or not port_type:
                raise ValidationError(
                    f"port {name!r} in {which} of node type {type_name!r} needs a type name",
                    code="node_types.invalid_port_type",
                    context={"type": type_name, "field": which, "port": name},
                )
            out[name] = port_type
        return out

    @contextmanager
    def providing(self, provider: str | None) -> Iterator[NodeTypeRegistry]:
        """Attribute every :meth:`add` inside the ``with`` block to ``provider``."""
        previous = self.current_plugin
        self.current_plugin = provider
        try:
            yield self
        finally:
            self.current_plugin = previous

    def get(self, name: str) -> NodeTypeSpec:
        """The spec registered as ``name``; :class:`NotFoundError` if there is none."""
        try:
            return self._types[name]
        except (KeyError, TypeError):
            raise NotFoundError(
                f"no installed plugin provides node type {name!r}",
                code="node_types.not_found",
                context={"type": repr(name) if not isinstance(name, str) else name},
                hint="install the plugin that provides it (`symphony plugins list`)",
            ) from None

    def names(self) -> list[str]:
        """Every registered type name, sorted."""
        return sorted(self._types)

    def specs(self) -> list[NodeTypeSpec]:
        """Every registered spec, sorted by name."""
        return [self._types[n] for n in sorted(self._types)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._types

    def __len__(self) -> int:
        return len(self._types)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._types))

    def __repr__(self) -> str:
        return f"NodeTypeRegistry({len(self._types)} types)"
