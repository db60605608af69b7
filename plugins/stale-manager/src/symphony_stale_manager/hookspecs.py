"""Hooks the stale manager adds to the kernel (with ``kernel.add_hookspecs``) when activated.

Implement them in any plugin with the kernel's ``hookimpl`` marker, and list a slot
``artifact-roots:<your plugin>`` in your manifest's ``provides``: the stale manager activates
every such plugin before it plans, so an on-demand plugin is never left unasked::

    from symphony.hookspecs import hookimpl

    @hookimpl
    def symphony_collect_artifact_roots(kernel):
        return {checkpoint.output_digest: f"checkpoint {checkpoint.id}" for checkpoint in live_checkpoints()}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from symphony.hookspecs import hookspec

__all__ = ["symphony_collect_artifact_roots"]


@hookspec
def symphony_collect_artifact_roots(kernel: Any) -> Iterable[Any] | Mapping[Any, str] | None:
    """Report the artifacts your plugin still needs, so gc keeps them and everything they were made from.

    Called once per gc plan (scheduled, on demand or by the disk trigger), in a worker thread:
    answer quickly from memory or a local index. Return digests (:class:`Digest` or digest
    strings ``algorithm:hex:size``), or a mapping of digest -> why it is needed (shown by
    ``symphony artifacts gc --dry-run``), or None. A malformed digest makes the gc run fail
    rather than risk deleting what it meant to keep.

    :param kernel: the running kernel (to reach your plugin's own services).
    """
