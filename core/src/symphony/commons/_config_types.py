"""Typed (attrs) views of the core config sections.

Kept apart from :mod:`symphony.commons.config` so that importing the config module does not
pay for ``attrs``; ``symphony.commons.config`` re-exports these names lazily. Field names and
defaults mirror :data:`symphony.commons.config.CORE_SCHEMAS`.
"""

from __future__ import annotations

import attrs

from symphony.commons.fs import DEFAULT_MAX_FILE_SIZE

__all__ = ["CORE_TYPES", "DebugConfig", "FsConfig", "KernelConfig", "LoggingConfig", "PluginsConfig"]

_MiB = 1024 * 1024


@attrs.frozen
class KernelConfig:
    """The ``[kernel]`` section."""

    strict_plugins: bool = False
    hook_policy: dict[str, str] = attrs.field(factory=dict)
    startup_timeout: float = 30.0


@attrs.frozen
class PluginsConfig:
    """The ``[plugins]`` section."""

    disabled: list[str] = attrs.field(factory=list)
    enabled: list[str] = attrs.field(factory=list)


@attrs.frozen
class LoggingConfig:
    """The ``[logging]`` section (the keyword arguments of ``configure_logging``)."""

    level: str = "info"
    console: bool = True
    format: str = "auto"
    file: str | None = None
    rotation: str = "size"
    max_bytes: int = 10 * _MiB
    backup_count: int = 5
    json_file: str | None = None


@attrs.frozen
class FsConfig:
    """The ``[fs]`` section."""

    max_file_size: int = DEFAULT_MAX_FILE_SIZE


@attrs.frozen
class DebugConfig:
    """The ``[debug]`` section."""

    duck_debugging: bool = False


CORE_TYPES: dict[str, type] = {
    "kernel": KernelConfig,
    "plugins": PluginsConfig,
    "logging": LoggingConfig,
    "fs": FsConfig,
    "debug": DebugConfig,
}
"""Section name -> attrs class, used by ``Config.structure(section)`` without a class."""
