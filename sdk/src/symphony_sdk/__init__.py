"""The Symphony SDK: everything a plugin author imports.

    from symphony_sdk import Operator, ServiceRegistry, hookimpl

The registry classes (:class:`ServiceRegistry`, :class:`CommandRegistry`,
:class:`TransportRegistry`, :class:`CodecRegistry`, :class:`MessageTypeRegistry`,
:class:`BusHandlerRegistry`, and the bus's :class:`Message`) are here to
annotate hook implementations; the hooks are listed in ``sdk/docs/hooks.md``. The workflow
plugin's ``NodeTypeRegistry`` is exported by ``symphony_workflow``.

Write hook implementations with :data:`hookimpl`, describe the plugin in a ``symphony.toml``
manifest inside the package, declare the ``symphony.plugins`` entry point, and test it against
the real kernel with the ``symphony_kernel`` fixtures of :mod:`symphony_sdk.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony import PLUGIN_API_VERSION
from symphony.commons.errors import (
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    PreValidationError,
    SymphonyError,
    ValidationError,
)
from symphony.commons.lazy import lazy_getattr
from symphony.hookspecs import hookimpl, hookspec
from symphony.kernel import Kernel
from symphony.plugins.manifest import Manifest, load_manifest, parse_manifest
from symphony.plugins.states import PluginRecord, PluginState
from symphony.services import CommandRegistry, ServiceRegistry
from symphony_sdk.cli import current_kernel
from symphony_sdk.manifest import ManifestReport, check_manifest, manifest_path_of, validate_project
from symphony_sdk.nodes import Instrument, NodeContext, NodeImplementation, ResourceEstimate
from symphony_sdk.operator import Operator

if TYPE_CHECKING:
    from symphony.bus import (
        BusHandlerRegistry,
        CodecRegistry,
        Message,
        MessageTypeRegistry,
        TransportRegistry,
    )

_LAZY = {
    name: "symphony.bus"
    for name in ("BusHandlerRegistry", "CodecRegistry", "Message", "MessageTypeRegistry", "TransportRegistry")
}
"""Imported on first use, so importing the SDK does not import the bus (and jsonschema)."""

__all__ = [
    "PLUGIN_API_VERSION",
    "BusHandlerRegistry",
    "CodecRegistry",
    "CommandRegistry",
    "ConfigError",
    "Instrument",
    "Kernel",
    "Manifest",
    "ManifestReport",
    "Message",
    "MessageTypeRegistry",
    "NodeContext",
    "NodeImplementation",
    "NotFoundError",
    "Operator",
    "PermissionDeniedError",
    "PluginError",
    "PluginRecord",
    "PluginState",
    "PreValidationError",
    "ResourceEstimate",
    "ServiceRegistry",
    "SymphonyError",
    "TransportRegistry",
    "ValidationError",
    "check_manifest",
    "current_kernel",
    "hookimpl",
    "hookspec",
    "load_manifest",
    "manifest_path_of",
    "parse_manifest",
    "validate_project",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
