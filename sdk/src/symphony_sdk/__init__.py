"""The Symphony SDK: everything a plugin author imports.

    from symphony_sdk import hookimpl, Operator

Write hook implementations with :data:`hookimpl`, describe the plugin in a ``symphony.toml``
manifest inside the package, declare the ``symphony.plugins`` entry point, and test it against
the real kernel with the ``symphony_kernel`` fixtures of :mod:`symphony_sdk.testing`.
"""

from __future__ import annotations

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
from symphony.hookspecs import hookimpl, hookspec
from symphony.kernel import Kernel
from symphony.plugins.manifest import Manifest, load_manifest, parse_manifest
from symphony.plugins.states import PluginRecord, PluginState
from symphony_sdk.cli import current_kernel
from symphony_sdk.manifest import ManifestReport, check_manifest, manifest_path_of
from symphony_sdk.operator import Operator

__all__ = [
    "PLUGIN_API_VERSION",
    "ConfigError",
    "Kernel",
    "Manifest",
    "ManifestReport",
    "NotFoundError",
    "Operator",
    "PermissionDeniedError",
    "PluginError",
    "PluginRecord",
    "PluginState",
    "PreValidationError",
    "SymphonyError",
    "ValidationError",
    "check_manifest",
    "current_kernel",
    "hookimpl",
    "hookspec",
    "load_manifest",
    "manifest_path_of",
    "parse_manifest",
]
