"""The registry of workflow node types that plugins can execute.

The workflow plugin adds one :class:`NodeTypeRegistry` to the kernel when it is activated
(``kernel.add_registry("node_types", "symphony_register_node_types", ...)``); the
kernel hands it to every plugin's ``symphony_register_node_types(registry)`` hook. A plugin
(which lists ``symphony-workflow`` in its manifest's ``requires``) adds the instruments and
operators it can run::

    from symphony_sdk import hookimpl
    from symphony_workflow import NodeTypeRegistry

    @hookimpl
    def symphony_register_node_types(registry: NodeTypeRegistry) -> None:
        registry.add(
            "text.split",
            kind="operator",
            inputs={"text": "text"},
            outputs={"chunks": "list[text]"},
            summary="Split text into chunks.",
            implementation=SplitText(),   # an symphony_sdk Operator or Instrument
        )

Each type should also be declared in the plugin's manifest, its name as a slot and its ports in
a ``[contributes.node_types."<name>"]`` table, so workflows are checked against installed
plugins (port names, directions and types) without importing them::

    [plugin]
    provides = ["node-type:text.split"]

    [contributes.node_types."text.split"]
    kind = "operator"                       # or "instrument"
    summary = "Split text into chunks."
    inputs = { text = "text" }              # port name = port type (symphony_workflow types)
    outputs = { chunks = "list[text]" }

:func:`manifest_node_types` reads those tables. The kernel checks only their shape; this module
checks their content. A type registered by a plugin whose manifest declares it differently
(kind or ports) is a :class:`~symphony.commons.errors.ConflictError` naming the manifest and the
registering plugin, so the plugin fails its activation. Registering a type name twice is a
:class:`~symphony.commons.errors.ConflictError` naming both providers.

While a plugin's hook runs, the kernel sets :attr:`NodeTypeRegistry.current_plugin` to that
plugin's id, which becomes the ``provider`` of what it adds (an explicit ``provider=`` wins).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from symphony.commons.errors import ConflictError, NotFoundError, SymphonyError, ValidationError
from symphony_workflow._kinds import NodeKind
from symphony_workflow._types import BUILTIN_TYPES, DEFAULT_TYPES, TypeSystem

if TYPE_CHECKING:
    from symphony.plugins.manifest import Manifest

__all__ = [
    "MANIFEST_POINT",
    "MANIFEST_SLOT",
    "DeclaredLookup",
    "NodeTypeRegistry",
    "NodeTypeSpec",
    "declared_by_plugins",
    "installed_node_types",
    "manifest_node_types",
]

MANIFEST_POINT = "node_types"
"""The manifest's ``[contributes.<point>]`` table this module reads (also the registry's name)."""

MANIFEST_SLOT = "node-type:"
"""Prefix of the manifest slots naming the node types a plugin provides."""

_ENTRY_FIELDS = frozenset({"kind", "summary", "inputs", "outputs"})

_KINDS = frozenset(k.value for k in NodeKind)

_TYPE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,127}$")
_PORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _frozen_ports(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class NodeTypeSpec:
    """One node type: its name, kind, typed ports, summary and providing plugin."""

    name: str
    kind: str
    inputs: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_ports)
    outputs: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_ports)
    summary: str = ""
    provider: str | None = None
    implementation: Any = attrs.field(default=None, eq=False, repr=False)
    """What runs the node (an ``symphony_sdk`` ``Operator``/``Instrument``); ``None`` for metadata only."""

    source: str | None = attrs.field(default=None, eq=False)
    """Where it was declared: the manifest file for a spec read from one, else ``None``."""

    def differences(self, other: NodeTypeSpec, *, types: TypeSystem = DEFAULT_TYPES) -> list[str]:
        """How ``other`` declares this type differently (kind, port names, port types); empty if
        they agree. Types are compared in their canonical spelling; summaries are not compared."""
        found: list[str] = []
        if self.kind != other.kind:
            found.append(f"kind {self.kind!r} vs {other.kind!r}")
        for which in ("inputs", "outputs"):
            mine, theirs = _canonical(getattr(self, which), types), _canonical(getattr(other, which), types)
            if mine != theirs:
                found.append(f"{which} {mine} vs {theirs}")
        return found

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

    def __init__(self, *, declared: DeclaredLookup | None = None) -> None:
        self._types: dict[str, NodeTypeSpec] = {}
        self._declared = declared
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
        if not isinstance(type_name, str) or not _TYPE_NAME.fullmatch(type_name):
            raise ValidationError(
                f"invalid node type name {type_name!r}",
                code="node_types.invalid_name",
                context={"type": repr(type_name)},
                hint="use letters, digits and . _ : / - (at most 128 characters), e.g. 'text.split'",
            )
        if not isinstance(kind, str) or kind not in _KINDS:
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
        if implementation is not None and not callable(getattr(implementation, "execute", None)):
            raise ValidationError(
                f"implementation of node type {type_name!r} has no execute(inputs, context) method",
                code="node_types.invalid_implementation",
                context={"type": type_name, "implementation": type(implementation).__name__},
                hint="subclass symphony_sdk.Operator or symphony_sdk.Instrument",
            )
        who = provider if provider is not None else self.current_plugin
        spec = NodeTypeSpec(
            name=type_name,
            kind=str(kind),
            inputs=ports_in,
            outputs=ports_out,
            summary=summary,
            provider=who,
            implementation=implementation,
        )
        if self._declared is not None and who is not None:
            _check_declared(spec, self._declared(type_name, who))
        existing = self._types.get(type_name)
        if existing is not None:
            raise ConflictError(
                f"node type {type_name!r} is provided by both {existing.provider or '<unknown>'!s} "
                f"and {who or '<unknown>'!s}",
                code="node_types.duplicate",
                context={"type": type_name, "providers": [existing.provider, who]},
                hint="uninstall or disable one of the two plugins",
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
            if not isinstance(name, str) or not _PORT_NAME.fullmatch(name):
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

    @staticmethod
    def manifest_schema() -> dict[str, Any]:
        """The JSON Schema of one ``[contributes.node_types."<name>"]`` table of a manifest.

        It states the same rules :meth:`add` applies (kinds, port names); port types are then
        checked against the workflow type system (``any``, ``text``, ... and ``list[T]``).
        """
        ports = {
            "type": "object",
            "propertyNames": {"pattern": _PORT_NAME.pattern},
            "additionalProperties": {
                "type": "string",
                "minLength": 1,
                "description": "A port type: "
                + ", ".join(f"`{t}`" for t in BUILTIN_TYPES)
                + ", or `list[T]` of any of them (nesting allowed).",
            },
        }
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": 'A node type declared in a manifest: [contributes.node_types."<name>"]',
            "type": "object",
            "additionalProperties": False,
            "required": ["kind"],
            "properties": {
                "kind": {
                    "enum": [k.value for k in NodeKind],
                    "description": "What the node type is; workflow nodes of this type must have this kind.",
                },
                "summary": {"type": "string", "description": "One line shown by listings and editors."},
                "inputs": {
                    **ports,
                    "description": "Input ports: port name = port type. Nodes may declare a subset.",
                },
                "outputs": {
                    **ports,
                    "description": "Output ports: port name = port type. Nodes may declare a subset.",
                },
            },
            "description": f"The table's key is the node type's name, matching `{_TYPE_NAME.pattern}`.",
        }

    def find(self, name: str) -> NodeTypeSpec | None:
        """The spec registered as ``name``, or ``None``."""
        return self._types.get(name) if isinstance(name, str) else None

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


DeclaredLookup = Callable[[str, str], "NodeTypeSpec | None"]
"""``(type name, plugin id) -> the spec that plugin's manifest declares`` (``None``: none declared).

It may raise the :class:`SymphonyError` that makes the declaration unusable."""


def _canonical(ports: Mapping[str, str], types: TypeSystem) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, port_type in sorted(ports.items()):
        try:
            out[name] = types.normalize(port_type)
        except ValidationError:
            out[name] = port_type
    return out


def _check_declared(spec: NodeTypeSpec, declared: NodeTypeSpec | None) -> None:
    if declared is None:
        return
    found = declared.differences(spec)
    if not found:
        return
    source = declared.source or f"the manifest of {spec.provider}"
    raise ConflictError(
        f"node type {spec.name!r} registered by {spec.provider} does not match its declaration in "
        f"{source}: {'; '.join(found)} (manifest vs registered)",
        code="node_types.manifest_mismatch",
        context={
            "type": spec.name,
            "plugin": spec.provider,
            "file": source,
            "declared": declared.to_dict(),
            "registered": spec.to_dict(),
        },
        hint=f'make [contributes.node_types."{spec.name}"] in the manifest and the '
        "symphony_register_node_types hook say the same",
    )


def manifest_node_types(
    manifest: Manifest, *, types: TypeSystem = DEFAULT_TYPES
) -> tuple[dict[str, NodeTypeSpec], list[SymphonyError]]:
    """The node types a manifest declares in ``[contributes.node_types."<name>"]`` tables.

    Returns the specs by name (``provider`` is the manifest's plugin id) and a
    :class:`ValidationError` for each entry that is not usable (unknown field, bad kind, bad
    port name, unknown port type) naming the file, the type and the field. Nothing is imported.
    """
    specs: dict[str, NodeTypeSpec] = {}
    problems: list[SymphonyError] = []
    where = manifest.source or f"the manifest of {manifest.id}"
    for type_name, entry in manifest.contributions(MANIFEST_POINT).items():
        try:
            specs[type_name] = _entry_spec(type_name, entry, manifest.id, where, types)
        except ValidationError as exc:
            problems.append(
                ValidationError(
                    f'{where}: [contributes.node_types."{type_name}"]: {exc.message}',
                    code=exc.code,
                    context={**exc.context, "type": type_name, "file": where, "plugin": manifest.id},
                    hint=exc.hint,
                )
            )
    return specs, problems


def _entry_spec(
    type_name: str, entry: Mapping[str, Any], plugin: str, where: str, types: TypeSystem
) -> NodeTypeSpec:
    unknown = sorted(set(entry) - _ENTRY_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown field(s) {', '.join(unknown)}",
            code="node_types.unknown_field",
            context={"type": type_name, "fields": unknown, "allowed": sorted(_ENTRY_FIELDS)},
        )
    if "kind" not in entry:
        raise ValidationError(
            "missing field 'kind'",
            code="node_types.invalid_kind",
            context={"type": type_name},
            hint='kind = "operator" or "instrument"',
        )
    registry = NodeTypeRegistry()
    spec = registry.add(
        type_name,
        kind=entry["kind"],
        inputs=entry.get("inputs"),
        outputs=entry.get("outputs"),
        summary=entry.get("summary", ""),
        provider=plugin,
    )
    for which, ports in (("inputs", spec.inputs), ("outputs", spec.outputs)):
        for port, port_type in ports.items():
            try:
                types.normalize(port_type)
            except ValidationError as exc:
                raise ValidationError(
                    f"{which}.{port}: {exc.message}",
                    code="node_types.invalid_port_type",
                    context={"type": type_name, "field": which, "port": port, "known": types.scalars},
                    hint=exc.hint,
                ) from None
    return attrs.evolve(spec, source=where)


def declared_by_plugins(kernel: Any) -> DeclaredLookup:
    """A :data:`DeclaredLookup` over the manifests of ``kernel``'s plugins (parsed once each).

    An unusable declaration of the looked-up type raises its problem, so the plugin that
    registers it fails its activation with that reason.
    """
    cache: dict[str, tuple[dict[str, NodeTypeSpec], list[SymphonyError]]] = {}

    def lookup(type_name: str, plugin_id: str) -> NodeTypeSpec | None:
        parsed = cache.get(plugin_id)
        if parsed is None:
            try:
                manifest = kernel.plugin(plugin_id).manifest
            except SymphonyError:
                return None
            if manifest is None:
                return None
            parsed = cache[plugin_id] = manifest_node_types(manifest)
        specs, problems = parsed
        for problem in problems:
            if problem.context.get("type") == type_name:
                raise problem
        return specs.get(type_name)

    return lookup


def installed_node_types(kernel: Any) -> dict[str, NodeTypeSpec | None]:
    """Node types of ``kernel``'s usable plugins, read from their manifests (nothing imported),
    then completed from the ``node_types`` registry when the workflow plugin is active.

    Each name maps to its spec, or to ``None`` when only its name is known (a
    ``node-type:<name>`` slot without a ``[contributes.node_types]`` table): its ports are then
    not checked. An unusable manifest table counts as name-only and is logged.
    """
    from symphony.commons.log import get_logger

    known: dict[str, NodeTypeSpec | None] = {}
    for record in kernel.providers(MANIFEST_SLOT):
        manifest = record.manifest
        specs, problems = manifest_node_types(manifest)
        for problem in problems:
            get_logger("symphony_workflow").warning("unusable node type declaration", reason=problem.message)
        for slot in manifest.provides:
            if slot.startswith(MANIFEST_SLOT):
                name = slot[len(MANIFEST_SLOT) :]
                known[name] = specs.get(name)
    if MANIFEST_POINT in kernel.registry_names():
        registry: NodeTypeRegistry = kernel.registry(MANIFEST_POINT)
        for spec in registry.specs():
            if known.get(spec.name) is None:
                known[spec.name] = spec
    return known
