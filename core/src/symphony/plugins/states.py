"""Plugin states and the record the kernel keeps for every discovered plugin."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from symphony.plugins.manifest import Manifest

__all__ = ["FAILED_STATES", "PluginRecord", "PluginState"]


class PluginState(enum.StrEnum):
    """Where a plugin stands.

    ``discovered`` → ``active`` is the happy path (activation happens on first use, or at
    start for ``on-startup`` plugins). Every other state keeps its reason and traceback.
    """

    DISCOVERED = "discovered"
    """Found and checked; not imported yet."""
    INVALID = "invalid"
    """The manifest is missing or malformed."""
    INCOMPATIBLE = "incompatible"
    """The ``api`` range excludes this kernel, or a requirement is missing, or a cycle."""
    DISABLED = "disabled"
    """Turned off by configuration (``plugins.disabled`` / ``plugins.enabled``)."""
    CONFLICTING = "conflicting"
    """Claims a slot, command name or config section another plugin (or the kernel) has, or
    shares another plugin's id."""
    MISCONFIGURED = "misconfigured"
    """Its config section holds a bad value; the reason names the file, the key and the rule."""
    IMPORT_FAILED = "import-failed"
    """Importing the plugin's module raised."""
    ACTIVATE_FAILED = "activate-failed"
    """Registering or activating (including async startup) raised."""
    ACTIVE = "active"
    """Imported, registered and activated."""
    QUARANTINED = "quarantined"
    """Taken out of service after failing at run time."""


FAILED_STATES = frozenset(
    {
        PluginState.INVALID,
        PluginState.INCOMPATIBLE,
        PluginState.CONFLICTING,
        PluginState.MISCONFIGURED,
        PluginState.IMPORT_FAILED,
        PluginState.ACTIVATE_FAILED,
        PluginState.QUARANTINED,
    }
)
"""States that mean something is wrong (``disabled`` is a choice, not a failure)."""


@attrs.define(eq=False)
class PluginRecord:
    """What the kernel knows of one plugin: where it came from, its manifest and its state."""

    id: str
    entry_point: str
    """``module`` or ``module:attribute`` holding the hook implementations."""
    manifest: Manifest | None
    distribution: str | None = None
    dist_version: str | None = None
    state: PluginState = PluginState.DISCOVERED
    reason: str | None = None
    traceback: str | None = None
    error_code: str | None = None
    origin: str = "entry-point"
    """``entry-point`` (installed distribution) or ``explicit`` (passed to the kernel)."""
    obj: Any = None
    """The imported plugin object once active."""
    api_ok: bool | None = None
    """Whether the manifest's ``api`` range admits this kernel, when already known (index)."""
    timings: dict[str, float] = attrs.field(factory=dict)
    """Seconds spent importing and activating (for ``plugins inspect``)."""

    @property
    def ok(self) -> bool:
        """True unless the plugin is in a failure state."""
        return self.state not in FAILED_STATES

    @property
    def usable(self) -> bool:
        """True while the plugin can serve: ``discovered`` or ``active`` (not failed, not disabled)."""
        return self.state in (PluginState.DISCOVERED, PluginState.ACTIVE)

    def fail(self, state: PluginState, reason: str, *, code: str, traceback: str | None = None) -> None:
        """Move to a failure state, keeping why."""
        self.state = state
        self.reason = reason
        self.error_code = code
        self.traceback = traceback

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (used by ``plugins list --json`` and ``inspect``)."""
        m = self.manifest
        return {
            "id": self.id,
            "state": self.state.value,
            "version": m.version if m else self.dist_version,
            "kind": m.kind if m else None,
            "api": m.api if m else None,
            "summary": m.summary if m else "",
            "provides": list(m.provides) if m else [],
            "requires": list(m.requires) if m else [],
            "after": list(m.after) if m else [],
            "activation": m.activation if m else None,
            "permissions": list(m.permissions) if m else [],
            "commands": [c.name for c in m.commands] if m else [],
            "contributes": {point: sorted(entries) for point, entries in m.contributes.items()} if m else {},
            "distribution": self.distribution,
            "entry_point": self.entry_point,
            "manifest": m.source if m else None,
            "origin": self.origin,
            "reason": self.reason,
            "error_code": self.error_code,
            "traceback": self.traceback,
            "timings": dict(self.timings),
        }
