"""Check discovered plugins against each other and the kernel, and order them.

Resolution runs before anything is imported. In order:

1. duplicate plugin ids → every copy ``conflicting``;
2. configuration (``plugins.enabled`` allow-list, ``plugins.disabled``) → ``disabled``;
3. the manifest's ``api`` range must contain the kernel's plugin-API version → else ``incompatible``;
4. two usable plugins providing the same slot → both ``conflicting``, each reason naming the other;
5. ``requires`` must name usable plugins (repeatedly, so failure propagates) → else ``incompatible``;
6. ``requires`` + ``after`` edges are sorted topologically; a cycle makes every plugin on it
   ``incompatible`` with the cycle spelled out (``a -> b -> a``).
"""

from __future__ import annotations

import graphlib
from collections import defaultdict
from collections.abc import Iterable

from symphony._version import PLUGIN_API_VERSION
from symphony.plugins.manifest import api_compatible
from symphony.plugins.states import PluginRecord, PluginState

__all__ = ["dependency_order", "resolve"]


def _usable(record: PluginRecord) -> bool:
    return record.state in (PluginState.DISCOVERED, PluginState.ACTIVE)


def resolve(
    records: list[PluginRecord],
    *,
    kernel_api: str,
    enabled: Iterable[str] = (),
    disabled: Iterable[str] = (),
) -> list[PluginRecord]:
    """Set each record's state; return the usable records in dependency order."""
    enabled_set, disabled_set = set(enabled), set(disabled)

    by_id: dict[str, list[PluginRecord]] = defaultdict(list)
    for r in records:
        by_id[r.id].append(r)
    for plugin_id, group in by_id.items():
        if len(group) > 1:
            sources = ", ".join(f"{r.distribution or r.origin} ({r.entry_point})" for r in group)
            for r in group:
                if r.ok:
                    r.fail(
                        PluginState.CONFLICTING,
                        f"plugin id {plugin_id!r} is declared more than once: {sources}",
                        code="plugin.duplicate_id",
                    )

    for r in records:
        if not _usable(r) or r.manifest is None:
            continue
        if r.id in disabled_set or (enabled_set and r.id not in enabled_set):
            r.state = PluginState.DISABLED
            r.reason = "disabled by configuration" + (
                " (plugins.disabled)" if r.id in disabled_set else " (not in plugins.enabled)"
            )
            r.error_code = "plugin.disabled"
            continue
        compatible = r.api_ok if r.api_ok is not None and kernel_api == PLUGIN_API_VERSION else None
        if compatible is None:
            compatible = api_compatible(r.manifest.api, kernel_api)
        if not compatible:
            r.fail(
                PluginState.INCOMPATIBLE,
                f"{r.id} needs plugin API {r.manifest.api}, this kernel implements {kernel_api}",
                code="plugin.incompatible_api",
            )

    providers: dict[str, list[PluginRecord]] = defaultdict(list)
    for r in records:
        if _usable(r) and r.manifest is not None:
            for slot in r.manifest.provides:
                providers[slot].append(r)
    for slot, group in sorted(providers.items()):
        if len(group) > 1:
            names = " and ".join(r.id for r in group)
            for r in group:
                others = ", ".join(o.id for o in group if o is not r)
                r.fail(
                    PluginState.CONFLICTING,
                    f"slot {slot!r} is provided by both {names}; {r.id} conflicts with {others}",
                    code="plugin.slot_conflict",
                )

    usable = {r.id: r for r in records if _usable(r) and r.manifest is not None}
    changed = True
    while changed:
        changed = False
        for r in list(usable.values()):
            assert r.manifest is not None
            for dep in r.manifest.requires:
                if dep not in usable:
                    found = by_id.get(dep)
                    why = f"state {found[0].state.value}" if found else "not installed"
                    r.fail(
                        PluginState.INCOMPATIBLE,
                        f"{r.id} requires {dep}, which is unavailable ({why})",
                        code="plugin.missing_requirement",
                    )
                    del usable[r.id]
                    changed = True
                    break

    return _topological(usable)


def _topological(usable: dict[str, PluginRecord]) -> list[PluginRecord]:
    graph: dict[str, list[str]] = {}
    for plugin_id, r in sorted(usable.items()):
        assert r.manifest is not None
        deps = [d for d in (*r.manifest.requires, *r.manifest.after) if d in usable]
        graph[plugin_id] = sorted(set(deps))
    while True:
        sorter = graphlib.TopologicalSorter(graph)
        try:
            return [usable[i] for i in sorter.static_order()]
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])  # [a, b, ..., a]; graphlib lists it against edge direction
            cycle.reverse()
            text = " -> ".join(cycle)
            for plugin_id in set(cycle):
                usable[plugin_id].fail(
                    PluginState.INCOMPATIBLE,
                    f"dependency cycle: {text}",
                    code="plugin.dependency_cycle",
                )
                del usable[plugin_id]
                graph.pop(plugin_id, None)
            for deps in graph.values():
                deps[:] = [d for d in deps if d in usable]
            # a plugin that *requires* one taken out of the cycle is now unmet too
            for plugin_id, r in list(usable.items()):
                assert r.manifest is not None
                missing = [d for d in r.manifest.requires if d not in usable]
                if missing:
                    r.fail(
                        PluginState.INCOMPATIBLE,
                        f"{plugin_id} requires {missing[0]}, which is unavailable (dependency cycle)",
                        code="plugin.missing_requirement",
                    )
                    del usable[plugin_id]
                    graph.pop(plugin_id, None)
            for deps in graph.values():
                deps[:] = [d for d in deps if d in usable]


def dependency_order(records: Iterable[PluginRecord]) -> list[PluginRecord]:
    """Order already-resolved usable records so each comes after what it requires/follows."""
    return _topological({r.id: r for r in records})
