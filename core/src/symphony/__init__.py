"""Symphony: a plugin-first microkernel for AI workflows.

The public API is what ``__all__`` lists; names are imported lazily so that ``import symphony``
stays cheap (the CLI's fast paths never pay for pluggy, jsonschema or structlog unless used).

    from symphony import Kernel

    async with Kernel.open() as kernel:
        stats = kernel.service("text-stats")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symphony._version import PLUGIN_API_VERSION, __version__
from symphony.commons.lazy import lazy_getattr

if TYPE_CHECKING:
    from symphony.commons.config import Config, load_config
    from symphony.commons.errors import (
        ConfigError,
        ConflictError,
        FilesystemError,
        IntegrityError,
        InternalError,
        NotFoundError,
        OperationTimeoutError,
        PermissionDeniedError,
        PluginError,
        PreValidationError,
        SerializationError,
        SymphonyError,
        TransportError,
        ValidationError,
    )
    from symphony.commons.log import configure_logging, get_logger
    from symphony.hookspecs import hookimpl, hookspec
    from symphony.kernel import Kernel
    from symphony.plugins.manifest import Manifest
    from symphony.plugins.states import PluginRecord, PluginState

_LAZY: dict[str, str] = {
    "Kernel": "symphony.kernel",
    "Manifest": "symphony.plugins.manifest",
    "PluginRecord": "symphony.plugins.states",
    "PluginState": "symphony.plugins.states",
    "hookimpl": "symphony.hookspecs",
    "hookspec": "symphony.hookspecs",
    "Config": "symphony.commons.config",
    "load_config": "symphony.commons.config",
    "configure_logging": "symphony.commons.log",
    "get_logger": "symphony.commons.log",
    **{
        name: "symphony.commons.errors"
        for name in (
            "SymphonyError",
            "ValidationError",
            "PreValidationError",
            "ConfigError",
            "NotFoundError",
            "ConflictError",
            "PermissionDeniedError",
            "OperationTimeoutError",
            "TransportError",
            "SerializationError",
            "PluginError",
            "FilesystemError",
            "IntegrityError",
            "InternalError",
        )
    },
}

__all__ = ["PLUGIN_API_VERSION", "__version__", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
