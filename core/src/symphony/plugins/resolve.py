"""Check discovered plugins against each other and the kernel, and order them.

Resolution runs before anything is imported. In order:

1. duplicate plugin ids → ``conflicting`` (see *claims* below);
2. configuration (``plugins.enabled`` allow-list, ``plugins.disabled``) → ``disabled``;
3. the manifest's ``api`` range must contain the kernel's plugin-API version → else ``incompatible``;
4. a command name the CLI has built in, or a config section the kernel owns → ``conflicting``;
5. two usable plugins claiming the same slot, command name or config section → ``conflicting``
   (see *claims* below), each reason naming both;
6. the owners' config sections are checked (``config_problems``) → a bad one ``misconfigured``;
7. ``requires`` must name usable plugins (repeatedly, so failure propagates) → else ``incompatible``;
8. ``requires`` + ``after`` edges are sorted topologically; a cycle makes every plugin on it
   ``incompatible`` with the cycle spelled out (``a -> b -> a``).

**Claims.** When usable plugins claim one id, slot, command or section, and exactly one of them
comes from a distribution of Symphony itself (:data:`KERNEL_DISTRIBUTIONS`), that one keeps it
and only the newcomers are marked ``conflicting``: installing a package can never displace a
part of Symphony. Otherwise every claimant is ``conflicting``. The user decides by disabling
one of them (``plugins.disabled``): disabled plugins claim nothing, so the other one wins.
"""

from __future__ import annotations

import graphlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping

from symphony._version import PLUGIN_API_VERSION
from symphony.plugins.manifest import api_compatible
from symphony.plugins.states import PluginRecord, PluginState

__all__ = ["KERNEL_DISTRIBUTIONS", "dependency_order", "is_kernel_distribution", "resolve", "section_owners"]

KERNEL_DISTRIBUTIONS: frozenset[str] = frozenset(
    {
        "symphony-core",
        "symphony-bus-remote",
        "symphony-transport-unix",
        "symphony-transport-tcp",
        "symphony-transport-stdio",
        "symphony-workflow",
        "symphony-artifact-store",
        "symphony-stale-manager",
        "symphony-pool-manager",
        "symphony-arbitration-engine",
        "symphony-dag-tracker",
        "symphony-conductor",
    }
)
"""The distributions of Symphony itself: their plugins keep their slots, commands and config
sections against a newcomer that claims the same (a test keeps this list equal to the
repository's ``core`` and ``plugins/*``; planned ones are listed ahead)."""

ConfigCheck = Callable[[Mapping[str, PluginRecord]], Mapping[str, str]]
"""Given section -> owning plugin, return section -> why its values are bad (for the bad ones)."""


def is_kernel_distribution(record: PluginRecord) -> bool:
    """Whether ``record`` was installed by one of :data:`KERNEL_DISTRIBUTIONS`."""
    dist = (record.distribution or "").strip().lower().replace("_", "-").replace(".", "-")
    return record.origin == "entry-point" and dist in KERNEL_DISTRIBUTIONS


def _settle(what: str, name: str, group: list[PluginRecord], code: str) -> None:
    """Decide a claim several usable plugins make (see *Claims* in the module docstring)."""
    own = [r for r in group if is_kernel_distribution(r)]
    if len(own) == 1:
        keeper = own[0]
        for r in group:
            if r is not keeper:
                r.fail(
                    PluginState.CONFLICTING,
                    f"{what} {name!r} is claimed by both {keeper.id} and {r.id}; {keeper.id} is "
                    f"part of Symphony and keeps it (add {keeper.id} to plugins.disabled to "
                    f"hand it to {r.id})",
                    code=code,
                )
        return
    names = " and ".join(r.id for r in group)
    for r in group:
        others = ", ".join(o.id for o in group if o is not r)
        r.fail(
            PluginState.CONFLICTING,
            f"{what} {name!r} is claimed by both {names}; {r.id} conflicts with {others} "
            "(disable one of them in plugins.disabled)",
            code=code,
        )


def _claims(
    records: Iterable[PluginRecord], names: Callable[[PluginRecord], Iterable[str]]
) -> dict[str, list[PluginRecord]]:
    found: dict[str, list[PluginRecord]] = defaultdict(list)
    for r in records:
        if r.usable and r.manifest is not None:
            for name in dict.fromkeys(names(r)):
                found[name].append(r)
    return found


def _section_of(record: PluginRecord) -> list[str]:
    m = record.manifest
    return [m.config_section] if m is not None and m.config_section else []


def section_owners(records: Iterable[PluginRecord]) -> dict[str, PluginRecord]:
    """Config section -> the usable plugin that owns it (after :func:`resolve`)."""
    return {name: group[0] for name, group in _claims(records, _section_of).items() if len(group) == 1}


def resolve(
    records: list[PluginRecord],
    *,
    kernel_api: str,
    enabled: Iterable[str] = (),
    disabled: Iterable[str] = (),
    reserved_commands: Collection[str] = (),
    reserved_sections: Collection[str] = (),
    config_problems: ConfigCheck | None = None,
) -> list[PluginRecord]:
    """Set each record's state; return the usable records in dependency order.

    ``reserved_commands`` are the CLI's built-in command names and ``reserved_sections`` the
    kernel's own config sections: no plugin may claim them. ``config_problems`` checks the
    config sections once their owners are known (see :data:`ConfigCheck`).
    """
    enabled_set, disabled_set = set(enabled), set(disabled)

    by_id: dict[str, list[PluginRecord]] = defaultdict(list)
    for r in records:
        by_id[r.id].append(r)
    for plugin_id, group in by_id.items():
        usable_copies = [r for r in group if r.ok]
        if len(group) > 1 and usable_copies:
            sources = ", ".join(f"{r.distribution or r.origin} ({r.entry_point})" for r in group)
            own = [r for r in usable_copies if is_kernel_distribution(r)]
            for r in usable_copies:
                if len(own) == 1 and r is own[0]:
                    continue
                r.fail(
                    PluginState.CONFLICTING,
                    f"plugin id {plugin_id!r} is declared more than once: {sources}"
                    + (f"; the copy from {own[0].distribution} is kept" if len(own) == 1 else ""),
                    code="plugin.duplicate_id",
                )

    for r in records:
        if not r.usable or r.manifest is None:
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
            continue
        taken = [c.name for c in r.manifest.commands if c.name in reserved_commands]
        if taken:
            r.fail(
                PluginState.CONFLICTING,
                f"{r.id} declares the command {taken[0]!r}, which is built into symphony",
                code="plugin.command_conflict",
            )
        elif r.manifest.config_section in reserved_sections:
            r.fail(
                PluginState.CONFLICTING,
                f"{r.id} claims the config section [{r.manifest.config_section}], which belongs "
                "to the kernel",
                code="plugin.config_section_conflict",
            )

    kinds: list[tuple[str, Callable[[PluginRecord], Iterable[str]], str]] = [
        ("slot", lambda r: r.manifest.provides if r.manifest else (), "plugin.slot_conflict"),
        (
            "command",
            lambda r: [c.name for c in r.manifest.commands] if r.manifest else (),
            "plugin.command_conflict",
        ),
        ("config section", _section_of, "plugin.config_section_conflict"),
    ]
    for what, names, code in kinds:
        for name, group in sorted(_claims(records, names).items()):
            if len(group) > 1:
                _settle(what, name, group, code)

    if config_problems is not None:
        owners = section_owners(records)
        for section, reason in config_problems(owners).items():
            owner = owners.get(section)
            if owner is not None and owner.usable:
                owner.fail(PluginState.MISCONFIGURED, reason, code="plugin.config_invalid")

    usable = {r.id: r for r in records if r.usable and r.manifest is not None}
    _drop_unmet(usable, {plugin_id: group[0] for plugin_id, group in by_id.items()})
    return _topological(usable)


def _drop_unmet(usable: dict[str, PluginRecord], known: Mapping[str, PluginRecord]) -> None:
    """Fail every usable plugin that requires one not in ``usable`` (repeatedly, so failure propagates)."""
    changed = True
    while changed:
        changed = False
        for r in list(usable.values()):
            assert r.manifest is not None
            missing = [d for d in r.manifest.requires if d not in usable]
            if missing:
                found = known.get(missing[0])
                why = f"state {found.state.value}" if found else "not installed"
                r.fail(
                    PluginState.INCOMPATIBLE,
                    f"{r.id} requires {missing[0]}, which is unavailable ({why})",
                    code="plugin.missing_requirement",
                )
                del usable[r.id]
                changed = True


def _topological(usable: dict[str, PluginRecord]) -> list[PluginRecord]:
    known = dict(usable)
    while True:
        graph = {
            plugin_id: sorted({d for d in (*r.manifest.requires, *r.manifest.after) if d in usable})
            for plugin_id, r in sorted(usable.items())
            if r.manifest is not None
        }
        try:
            return [usable[i] for i in graphlib.TopologicalSorter(graph).static_order()]
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])  # [a, b, ..., a]; graphlib lists it against edge direction
            cycle.reverse()
            text = " -> ".join(cycle)
            for plugin_id in set(cycle):
                usable.pop(plugin_id).fail(
                    PluginState.INCOMPATIBLE,
                    f"dependency cycle: {text}",
                    code="plugin.dependency_cycle",
                )
            # a plugin that *requires* one taken out of the cycle is now unmet too
            _drop_unmet(usable, known)


def dependency_order(records: Iterable[PluginRecord]) -> list[PluginRecord]:
    """Order already-resolved usable records so each comes after what it requires/follows."""
    return _topological({r.id: r for r in records})
