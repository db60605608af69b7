"""The microkernel: discovers plugins, checks them, activates them, and hands out services.

Embedding takes three lines::

    from symphony import Kernel

    async with Kernel.open() as kernel:          # discovers, checks, starts on-startup plugins
        stats = kernel.service("text-stats")      # activates the providing plugin on first use

``Kernel.open`` is the running mode: it awaits every active plugin's ``symphony_startup`` hook
in dependency order and ``symphony_shutdown`` in reverse on exit, and offers a task group
(:meth:`Kernel.start_soon`). ``Kernel.create`` builds the same kernel synchronously for tools
and inspection; its plugins activate (import, register, ``symphony_activate``) but their async
lifecycle hooks do not run.

Nothing is imported at discovery: plugins are activated when one of their services, slots or
commands is first asked for, or at start when their manifest says ``activation = "on-startup"``.

The kernel owns two registries, ``services`` and ``commands``. Any other registry is added by
the code that owns it with :meth:`Kernel.add_registry` (the bus adds its transports, codecs and
message types; the workflow plugin its node types). A plugin's registration hooks are called
through pluggy (so ``pm.add_hookcall_monitoring`` and tracing see them), for that plugin only;
an implementation whose name matches no hookspec fails its plugin with the name in the reason.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from symphony._version import PLUGIN_API_VERSION
from symphony.commons.config import env_flag
from symphony.commons.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    OperationTimeoutError,
    PluginError,
    sole_exception,
)
from symphony.commons.log import debug_enabled
from symphony.plugins.discovery import discover
from symphony.plugins.manifest import Manifest, load_manifest, manifest_path_of
from symphony.plugins.resolve import dependency_order, resolve
from symphony.plugins.states import FAILED_STATES, PluginRecord, PluginState
from symphony.services import CommandRegistry, ServiceRegistry

if TYPE_CHECKING:
    import pluggy

    from symphony.commons.config import Config

__all__ = ["Kernel", "PluginSpec"]

_OWN_REGISTRIES: dict[str, tuple[str, Callable[[], Any]]] = {
    "services": ("symphony_register_services", ServiceRegistry),
    "commands": ("symphony_register_commands", CommandRegistry),
}
"""The kernel's own registries: name -> (registration hook, class). Every other registry is
added by the subsystem or plugin that owns it (:meth:`Kernel.add_registry`)."""

PluginSpec = str | ModuleType | tuple[Any, Any]
"""An explicitly given plugin: an import path or module whose package ships ``symphony.toml``,
or a ``(manifest, plugin_object)`` pair where the manifest is a :class:`Manifest` or a path."""

def _import_object(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _explicit_record(spec: PluginSpec) -> PluginRecord:
    manifest_like, target = spec if isinstance(spec, tuple) else (None, spec)
    obj = None if isinstance(target, str) else target
    entry = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    if manifest_like is None:
        manifest_like = manifest_path_of(entry)
    manifest = manifest_like if isinstance(manifest_like, Manifest) else load_manifest(manifest_like)
    return PluginRecord(id=manifest.id, entry_point=entry, manifest=manifest, origin="explicit", obj=obj)


def _unusable(record: PluginRecord, subject: str = "", **context: Any) -> PluginError:
    """Why ``record`` cannot be used: ``plugin <id> is <state>: <reason>``, or after ``subject``."""
    state = record.state.value
    said = f"{subject} {record.id}, which is" if subject else f"plugin {record.id} is"
    return PluginError(
        f"{said} {state}: {record.reason}",
        code=record.error_code or f"plugin.{state}",
        context={**context, "plugin": record.id, "state": state},
    )


_WARNED: set[str] = set()


def _kernel_sections() -> dict[str, Any]:
    """The config sections the kernel owns: core's and the bus's."""
    from symphony.bus import BUS_CONFIG_SCHEMA
    from symphony.commons.config import CORE_SCHEMAS

    return {**CORE_SCHEMAS, "bus": BUS_CONFIG_SCHEMA}


def _schema_of(record: PluginRecord) -> dict[str, Any]:
    assert record.manifest is not None
    return dict(record.manifest.config_schema or {"type": "object"})


def _config_reason(problem: ConfigError) -> str:
    """A plugin's failure reason for a bad value in its section: file, key and rule."""
    ctx = problem.context
    rule = ctx.get("rule") or ("known keys only" if problem.code == "config.unknown_key" else problem.code)
    reason = f"bad configuration: {problem.message}"
    parts = [
        f"{name} {value}"
        for name, value in (("file", ctx.get("file")), ("key", ctx.get("key")), ("rule", rule))
        if value is not None and str(value) not in problem.message
    ]
    return reason + (f" ({', '.join(parts)})" if parts else "")


def _configure(
    records: list[PluginRecord],
    *,
    reserved_commands: Collection[str],
    tolerate_config: bool,
    **where: Any,
) -> Config:
    """Load the configuration and resolve the plugins against it and each other.

    Core and bus sections are strict; each plugin section is isolated, so a bad value there
    makes only its owner ``misconfigured``. Plugin sections are validated once resolution has
    settled who owns each (a second load, only when some usable plugin owns one).
    """
    from symphony.commons.config import load_config

    kernel_sections = _kernel_sections()
    claimed = {r.manifest.config_section for r in records if r.ok and r.manifest and r.manifest.config_section}

    def load(owned: Mapping[str, Any]) -> Config:
        config = load_config(
            schemas={"bus": kernel_sections["bus"], **owned},
            schemas_checked=True,
            allow_unknown_sections=True,
            isolate=True if tolerate_config else set(owned),
            claimed=claimed - set(owned),
            **where,
        )
        for problem in config.problems:
            section = problem.context.get("section")
            if section in kernel_sections or section is None:
                if not tolerate_config:
                    raise problem
                if section is not None:
                    config.reset_section(str(section))
        return config

    config = load({})

    def check(owners: Mapping[str, PluginRecord]) -> dict[str, str]:
        nonlocal config
        if owners:
            config = load({s: _schema_of(r) for s, r in owners.items()})
        problems = {section: config.problem_of(section) for section in owners}
        return {section: _config_reason(p) for section, p in problems.items() if p is not None}

    plugins_cfg = config.section("plugins")
    resolve(
        records,
        kernel_api=PLUGIN_API_VERSION,
        enabled=plugins_cfg.get("enabled", ()),
        disabled=plugins_cfg.get("disabled", ()),
        reserved_commands=reserved_commands,
        reserved_sections=set(kernel_sections),
        config_problems=check,
    )
    return config


class Kernel:
    """A running Symphony kernel. Build one with :meth:`open` (async) or :meth:`create` (sync)."""

    def __init__(
        self,
        *,
        config: Config,
        records: list[PluginRecord],
        strict: bool = False,
        index_status: str = "unused",
    ) -> None:
        self.config = config
        """The layered configuration (:class:`symphony.commons.config.Config`)."""
        self.strict = strict
        """Whether plugin failures raise (``SYMPHONY_STRICT_PLUGINS=1``)."""
        self.index_status = index_status
        """How discovery used the on-disk index: ``warm``, ``cold``, ``disabled`` or ``unused``."""
        self._records = records
        self._by_id: dict[str, PluginRecord] = {}
        for r in sorted(records, key=lambda r: not r.ok):  # a usable copy wins the id lookup
            self._by_id.setdefault(r.id, r)
        self._slots: dict[str, PluginRecord] = {}
        for r in records:
            if r.ok and r.manifest is not None:
                for slot in r.manifest.provides:
                    self._slots[slot] = r
        self._pm: pluggy.PluginManager | None = None
        self._registries: dict[str, Any] = {name: cls() for name, (_, cls) in _OWN_REGISTRIES.items()}
        self._registry_hooks: dict[str, str] = {name: hook for name, (hook, _) in _OWN_REGISTRIES.items()}
        self._lock = threading.RLock()
        self._activation_order: list[PluginRecord] = []
        self._started: list[PluginRecord] = []
        self._task_group: Any = None
        self._running = False
        self._bus: Any = None
        self._logger: Any = None

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        config_path: str | os.PathLike[str] | None = None,
        *,
        env: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        autoload: bool | None = None,
        plugins: Sequence[PluginSpec] = (),
        strict: bool | None = None,
        use_index: bool | None = None,
        config_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        search_path: Sequence[str] | None = None,
        reserved_commands: Collection[str] = (),
        tolerate_config: bool = False,
    ) -> Kernel:
        """Discover, configure and check plugins; activate the ``on-startup`` ones.

        ``config_path`` is the user config file (default: ``SYMPHONY_USER_CONFIG`` or the
        platform config dir). ``autoload=False`` (or ``SYMPHONY_DISABLE_PLUGIN_AUTOLOAD=1``)
        skips installed plugins; ``plugins`` adds explicit ones. ``strict`` (default:
        ``SYMPHONY_STRICT_PLUGINS`` or ``kernel.strict_plugins``) turns any plugin failure into
        a :class:`PluginError`. ``search_path`` restricts discovery to those directories
        (default ``sys.path``). ``reserved_commands`` are command names a host's CLI has built
        in (a plugin declaring one is ``conflicting``).

        Configuration problems: a bad plugin section makes that plugin ``misconfigured``
        (reason: file, key, rule) and a section nobody claims is a warning
        (``kernel.config.warnings``, logged once); a bad core section raises
        :class:`~symphony.commons.errors.ConfigError` — unless ``tolerate_config``, which
        collects it in ``kernel.config.problems`` and runs that section on its defaults (for
        diagnostic tools such as ``symphony doctor``).
        """
        if autoload is None:
            autoload = env_flag("SYMPHONY_DISABLE_PLUGIN_AUTOLOAD") is not True
        records: list[PluginRecord] = []
        index_status = "unused"
        if autoload:
            records, index_status = discover(
                use_index=use_index, search_path=list(search_path) if search_path is not None else None
            )
        records.extend(_explicit_record(spec) for spec in plugins)

        config = _configure(
            records,
            env=env,
            config_dir=config_dir,
            user_file=config_path,
            environ=environ,
            overrides=overrides,
            tolerate_config=tolerate_config,
            reserved_commands=reserved_commands,
        )
        from symphony.commons.log import configure_from_config

        configure_from_config(config, lazy=True)
        from symphony.commons.debug import configure_duck_from_config

        configure_duck_from_config(config)
        if strict is None:
            strict = env_flag("SYMPHONY_STRICT_PLUGINS") is True or bool(config.get("kernel.strict_plugins", False))
        kernel = cls(config=config, records=records, strict=strict, index_status=index_status)
        kernel._report_config_warnings()
        kernel._report_failures()
        kernel._activate_on_startup()
        return kernel

    @staticmethod
    def resolved_plugins(*, reserved_commands: Collection[str] = (), **where: Any) -> list[PluginRecord]:
        """The installed plugins checked and resolved as :meth:`create` does, none imported.

        The configuration (``env``, ``user_file``, ``config_dir``, ``environ``: as for
        :func:`~symphony.commons.config.load_config`) is read tolerantly, a broken core section
        running on its defaults. ``symphony --help`` lists the usable plugins' commands from it.
        """
        records, _ = discover()
        _configure(records, reserved_commands=reserved_commands, tolerate_config=True, **where)
        return records

    @staticmethod
    def config_schemas(records: Sequence[PluginRecord]) -> dict[str, Any]:
        """Section -> JSON Schema of every config section the kernel or a plugin claims.

        Nothing is imported or changed: a section several plugins claim gets the schema of the
        one that would keep it (a part of Symphony before a newcomer, see
        :mod:`symphony.plugins.resolve`). ``symphony config set`` checks values with these.
        """
        from symphony.plugins.resolve import is_kernel_distribution

        schemas: dict[str, Any] = dict(_kernel_sections())
        ranked = sorted(
            (r for r in records if r.ok and r.manifest is not None and r.manifest.config_section),
            key=lambda r: not is_kernel_distribution(r),
        )
        for r in ranked:
            assert r.manifest is not None and r.manifest.config_section is not None
            schemas.setdefault(r.manifest.config_section, _schema_of(r))
        return schemas

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        config_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Kernel]:
        """Create a kernel, await every active plugin's startup, and shut it down on exit.

        Accepts the same arguments as :meth:`create`.
        """
        import anyio

        kernel = cls.create(config_path, **kwargs)
        try:
            async with anyio.create_task_group() as tg:
                kernel._task_group = tg
                kernel._running = True
                try:
                    for record in list(kernel._activation_order):
                        await kernel._startup(record)
                    yield kernel
                finally:
                    with anyio.CancelScope(shield=True):
                        try:
                            await kernel.aclose()
                        finally:
                            tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # A task group wraps whatever crossed it; hand the host its own exception back.
            sole = sole_exception(group)
            if sole is group:
                raise
            raise sole from sole.__cause__

    # --- plugins ---------------------------------------------------------------------------

    @property
    def plugins(self) -> list[PluginRecord]:
        """Every plugin record, in discovery order."""
        return list(self._records)

    def plugin(self, plugin_id: str) -> PluginRecord:
        """The record of ``plugin_id`` (raises :class:`NotFoundError`)."""
        try:
            return self._by_id[plugin_id]
        except KeyError:
            raise NotFoundError(
                f"no plugin {plugin_id!r}",
                code="plugin.not_found",
                context={"plugin": plugin_id, "known": sorted(self._by_id)},
                hint="`symphony plugins list` shows the installed plugins",
            ) from None

    def providers(self, prefix: str) -> list[PluginRecord]:
        """Usable plugins providing a slot that starts with ``prefix`` (no import)."""
        return [
            r
            for r in self._records
            if r.usable and r.manifest and any(s.startswith(prefix) for s in r.manifest.provides)
        ]

    def activate_slot(self, slot: str) -> PluginRecord:
        """Activate the plugin providing ``slot`` (e.g. ``"transport:unix"``) and return it."""
        record = self._slots.get(slot)
        if record is None:
            blocked = [r for r in self._records if r.manifest and slot in r.manifest.provides]
            if blocked:
                raise _unusable(blocked[0], f"slot {slot!r} is provided by", slot=slot)
            kind, _, name = slot.partition(":")
            raise NotFoundError(
                f"no installed plugin provides {slot!r}",
                code="plugin.slot_not_found",
                context={"slot": slot},
                hint=f"install one, e.g. `pip install symphony-{kind}-{name}`"
                if kind == "transport"
                else None,
            )
        return self.activate(record.id)

    def activate_providers(self, prefix: str) -> list[PluginRecord]:
        """Activate every usable plugin providing a slot starting with ``prefix``.

        Plugins that fail are left in their failure state (and logged); the others are returned.
        """
        active = []
        for record in self.providers(prefix):
            try:
                active.append(self.activate(record.id))
            except PluginError:
                if self.strict:
                    raise
        return active

    def activate(self, plugin_id: str) -> PluginRecord:
        """Import, register and activate ``plugin_id`` (and what it requires) if not yet active.

        Raises :class:`PluginError` naming the plugin when it cannot be activated; its record
        keeps the state, reason and traceback.
        """
        record = self.plugin(plugin_id)
        if record.state is PluginState.ACTIVE:
            return record
        with self._lock:
            if record.state is PluginState.ACTIVE:  # type: ignore[comparison-overlap]  # another thread won
                return record
            if record.state is not PluginState.DISCOVERED:
                raise _unusable(record)
            assert record.manifest is not None
            for dep in record.manifest.requires:
                try:
                    self.activate(dep)
                except PluginError as exc:
                    self._failed(
                        record,
                        PluginState.ACTIVATE_FAILED,
                        f"requirement {dep} could not be activated: {exc.message}",
                        code="plugin.requirement_failed",
                    )
            for dep in record.manifest.after:
                if dep in self._by_id and self._by_id[dep].state is PluginState.DISCOVERED:
                    try:
                        self.activate(dep)
                    except PluginError:
                        pass  # `after` orders; it does not require
            self._import(record)
            self._register(record)
            record.state = PluginState.ACTIVE
            self._activation_order.append(record)
            if debug_enabled("symphony.kernel"):  # an on-startup plugin must not cost structlog's import
                self._log().debug(
                    "plugin activated",
                    plugin=record.id,
                    **{k: round(v, 4) for k, v in record.timings.items()},
                )
        if self._running and self._task_group is not None:
            self._task_group.start_soon(self._startup, record)
        return record

    async def aactivate(self, plugin_id: str) -> PluginRecord:
        """Activate ``plugin_id`` and, in a running kernel, await its startup hook."""
        record = self.activate(plugin_id)
        if self._running:
            await self._startup(record)
        if record.state is not PluginState.ACTIVE:
            raise _unusable(record)
        return record

    def _import(self, record: PluginRecord) -> None:
        if record.obj is not None:
            return
        start = time.perf_counter()
        try:
            record.obj = _import_object(record.entry_point)
        except Exception as exc:
            self._failed(
                record,
                PluginState.IMPORT_FAILED,
                f"importing {record.entry_point} raised {type(exc).__name__}: {exc}",
                code="plugin.import_failed",
                cause=exc,
            )
        finally:
            record.timings["import"] = time.perf_counter() - start

    def _register(self, record: PluginRecord) -> None:
        start = time.perf_counter()
        pm = self.pm
        try:
            pm.register(record.obj, name=record.id)
        except Exception as exc:
            self._failed(
                record,
                PluginState.ACTIVATE_FAILED,
                f"registering {record.id} failed: {exc}",
                code="plugin.bad_hookimpl",
                cause=exc,
            )
        unknown = self._unknown_hooks(record)
        if unknown:
            pm.unregister(name=record.id)
            record.timings["activate"] = time.perf_counter() - start
            self._failed(record, PluginState.ACTIVATE_FAILED, unknown, code="plugin.unknown_hook")
        try:
            for registry_name, hook_name in list(self._registry_hooks.items()):
                self._fill(registry_name, hook_name, record)
            self._call_own("symphony_activate", record, kernel=self)
        except Exception as exc:
            pm.unregister(name=record.id)
            self._failed(
                record,
                PluginState.ACTIVATE_FAILED,
                f"activating {record.id} raised {type(exc).__name__}: {exc}",
                code="plugin.activate_failed",
                cause=exc,
            )
        finally:
            record.timings["activate"] = time.perf_counter() - start

    def _unknown_hooks(self, record: PluginRecord) -> str | None:
        """Pluggy's ``check_pending`` for one plugin: its implementations that match no hookspec."""
        callers = self.pm.get_hookcallers(record.obj) or []
        names = sorted(
            c.name
            for c in callers
            if not c.has_spec()
            and any(i.plugin_name == record.id and not i.optionalhook for i in c.get_hookimpls())
        )
        if not names:
            return None
        known = sorted(n for n, c in vars(self.pm.hook).items() if not n.startswith("_") and c.has_spec())
        described = []
        for name in names:
            close = difflib.get_close_matches(name, known, n=1)
            described.append(f"{name} (did you mean {close[0]}?)" if close else name)
        return (
            f"{record.id} implements unknown hook(s) {', '.join(described)}: no hookspec declares them "
            "(a hook added by another plugin needs that plugin in the manifest's `requires`)"
        )

    def _fill(self, registry_name: str, hook_name: str, record: PluginRecord) -> None:
        """Call ``record``'s own implementation of ``hook_name`` with the registry ``registry_name``."""
        registry = self.registry(registry_name)
        has_owner = hasattr(registry, "current_plugin")
        previous = getattr(registry, "current_plugin", None)
        if has_owner:
            registry.current_plugin = record.id
        try:
            self._call_own(hook_name, record, registry=registry, kernel=self)
        finally:
            if has_owner:
                registry.current_plugin = previous

    def _call_own(self, hook_name: str, record: PluginRecord, **kwargs: Any) -> list[Any]:
        """Call only ``record``'s implementations of ``hook_name``, through pluggy's machinery
        (so hook-call monitoring and tracing see it); an implementation may omit arguments."""
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None:
            return []
        impls = caller.get_hookimpls()
        others = [i.plugin for i in impls if i.plugin_name != record.id]
        if len(others) == len(impls):
            return []
        result: list[Any] = self.pm.subset_hook_caller(hook_name, others)(**kwargs)
        return result

    def _failed(
        self,
        record: PluginRecord,
        state: PluginState,
        reason: str,
        *,
        code: str,
        cause: BaseException | None = None,
    ) -> None:
        tb = None if cause is None else "".join(traceback.format_exception(cause))
        record.fail(state, reason, code=code, traceback=tb)
        self._log().warning("plugin failed", plugin=record.id, state=state.value, reason=reason)
        raise _unusable(record) from cause

    def _report_config_warnings(self) -> None:
        for warning in self.config.warnings:
            text = warning.message
            if text not in _WARNED:  # once per process, however many kernels are built
                _WARNED.add(text)
                self._log().warning("config section ignored", reason=text, hint=warning.hint)

    def _report_failures(self) -> None:
        failed = self.failures()
        for r in failed:
            self._log().warning("plugin unavailable", plugin=r.id, state=r.state.value, reason=r.reason)
        if self.strict and failed:
            lines = "; ".join(f"{r.id}: {r.state.value}: {r.reason}" for r in failed)
            raise PluginError(
                f"{len(failed)} plugin(s) cannot be used (SYMPHONY_STRICT_PLUGINS): {lines}",
                code="plugin.strict",
                context={"plugins": [r.id for r in failed]},
            )

    def _activate_on_startup(self) -> None:
        wanted = [
            r
            for r in self._records
            if r.state is PluginState.DISCOVERED and r.manifest and r.manifest.activation == "on-startup"
        ]
        for record in dependency_order(wanted):
            try:
                self.activate(record.id)
            except PluginError:
                if self.strict:
                    raise

    # --- lifecycle -------------------------------------------------------------------------

    def _propagates(self, hook_name: str) -> bool:
        """Whether a failing lifecycle hook's error leaves the kernel (``[kernel.hook_policy]``, strict)."""
        return self.strict or self.config.get("kernel.hook_policy", {}).get(hook_name) == "propagate"

    async def _startup(self, record: PluginRecord) -> None:
        if record in self._started or record.state is not PluginState.ACTIVE:
            return
        self._started.append(record)
        import anyio

        timeout = float(self.config.get("kernel.startup_timeout", 30))
        try:
            with anyio.move_on_after(timeout) as scope:
                for result in self._call_own("symphony_startup", record, kernel=self):
                    if inspect.isawaitable(result):
                        await result
            if scope.cancelled_caught:
                raise OperationTimeoutError(
                    f"startup of {record.id} did not finish within kernel.startup_timeout = {timeout:g} s",
                    code="plugin.startup_timeout",
                    context={"plugin": record.id, "timeout": timeout},
                )
        except Exception as exc:
            self._started.remove(record)
            reason = f"startup of {record.id} raised {type(exc).__name__}: {exc}"
            if isinstance(exc, OperationTimeoutError) and exc.code == "plugin.startup_timeout":
                reason = exc.message
            record.fail(
                PluginState.ACTIVATE_FAILED,
                reason,
                code="plugin.startup_failed",
                traceback=traceback.format_exc(),
            )
            self._log().warning("plugin startup failed", plugin=record.id, reason=record.reason)
            if self._propagates("symphony_startup"):
                raise _unusable(record) from exc

    async def aclose(self) -> None:
        """Run every started plugin's shutdown hook in reverse order, then close the bus."""
        errors: list[BaseException] = []
        if self._bus is not None and hasattr(self._bus, "aclose"):
            try:
                await self._bus.aclose()
            except Exception as exc:
                errors.append(exc)
        for record in reversed(self._started):
            try:
                for result in self._call_own("symphony_shutdown", record, kernel=self):
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                self._log().warning("plugin shutdown failed", plugin=record.id, error=repr(exc))
                errors.append(exc)
        self._started.clear()
        self._running = False
        self._task_group = None
        if errors and self._propagates("symphony_shutdown"):
            raise PluginError(
                f"{len(errors)} plugin shutdown hook(s) failed: {errors[0]!r}",
                code="plugin.shutdown_failed",
            ) from errors[0]

    def close(self) -> None:
        """Release a kernel built with :meth:`create` (startup hooks never ran there)."""
        self._running = False

    def start_soon(self, fn: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Run ``fn(*args)`` in the kernel's task group (only while opened with :meth:`open`)."""
        if self._task_group is None:
            raise PluginError(
                "the kernel is not running; use `async with Kernel.open()` to run tasks",
                code="kernel.not_running",
            )
        self._task_group.start_soon(fn, *args, name=name)

    @property
    def running(self) -> bool:
        """True inside ``async with Kernel.open()``."""
        return self._running

    # --- hooks, registries, services --------------------------------------------------------

    @property
    def pm(self) -> pluggy.PluginManager:
        """The underlying pluggy ``PluginManager`` (created on first use)."""
        if self._pm is None:
            import pluggy

            from symphony import hookspecs

            pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            pm.add_hookspecs(hookspecs)
            self._pm = pm
        return self._pm

    @property
    def hook(self) -> Any:
        """The pluggy hook relay: ``kernel.hook.symphony_<verb>_<noun>(...)`` calls every active plugin."""
        return self.pm.hook

    def add_hookspecs(self, module_or_class: Any) -> None:
        """Add hook specifications of a plugin's own (e.g. the workflow's node events)."""
        self.pm.add_hookspecs(module_or_class)

    def add_registry(self, name: str, hook_name: str, factory: Callable[[], Any]) -> Any:
        """Add the registry ``name``, filled by every plugin implementing ``hook_name``; return it.

        Called by the subsystem or plugin that owns a registry (the bus adds ``transports``,
        ``codecs`` and ``message_types``; the workflow plugin adds ``node_types`` when it is
        activated). The hookspec of ``hook_name`` must already be added. Plugins activated
        before this call get their implementation called now, in activation order; plugins
        activated later get it called at their activation. Adding the same ``name`` again with
        the same hook returns the existing registry.
        """
        existing = self._registry_hooks.get(name)
        if existing is not None:
            if existing != hook_name:
                raise ConflictError(
                    f"registry {name!r} is already filled by {existing}, not {hook_name}",
                    code="kernel.registry_conflict",
                    context={"registry": name, "hook": hook_name, "existing": existing},
                )
            return self.registry(name)
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None or not caller.has_spec():
            raise NotFoundError(
                f"no hookspec {hook_name!r} for registry {name!r}",
                code="kernel.no_hookspec",
                context={"registry": name, "hook": hook_name},
                hint="add the hookspec first with kernel.add_hookspecs(...)",
            )
        with self._lock:
            registry = factory()
            self._registries[name] = registry
            self._registry_hooks[name] = hook_name
            registered = {i.plugin_name for i in caller.get_hookimpls()}
            for record in [*self._activation_order, *(r for r in self._records if r.id in registered)]:
                if record.id in registered:
                    registered.discard(record.id)
                    self._fill(name, hook_name, record)
        return registry

    def registry(self, name: str) -> Any:
        """The registry handed to the hook that fills ``name`` (``"services"``, ``"commands"``,
        or one a subsystem or plugin added with :meth:`add_registry`)."""
        try:
            return self._registries[name]
        except KeyError:
            raise NotFoundError(
                f"no registry named {name!r}",
                code="kernel.no_registry",
                context={"registry": name, "known": self.registry_names()},
                hint="a plugin adds its registry when it is activated (kernel.add_registry)",
            ) from None

    def registry_names(self) -> list[str]:
        """The names of every registry known now, sorted."""
        return sorted(self._registry_hooks)

    def service(self, name: str) -> Any:
        """Return the service ``name``, activating the plugin that provides it on first use.

        Raises :class:`NotFoundError` when no plugin provides it, :class:`PluginError` when the
        providing plugin cannot be activated. In a running kernel, a plugin activated here has
        its startup hook scheduled; use :meth:`aservice` to wait for it.
        """
        services = self.registry("services")
        if name not in services:
            try:
                self.activate_slot(f"service:{name}")
            except NotFoundError:
                raise NotFoundError(
                    f"no service named {name!r}",
                    code="service.not_found",
                    context={"service": name, "available": self.service_names()},
                    hint="a plugin provides a service by listing `service:<name>` in its manifest's provides",
                ) from None
            if name not in services:
                declared_by = self._slots[f"service:{name}"].id
                raise PluginError(
                    f"plugin {declared_by} declares service:{name} but registered no such service",
                    code="service.not_registered",
                    context={"service": name, "plugin": declared_by},
                    hint="register it in symphony_register_services(registry)",
                )
        owner_id = services.owner(name)
        if owner_id is not None and owner_id in self._by_id:
            owner = self._by_id[owner_id]
            if owner.state is not PluginState.ACTIVE:
                raise _unusable(owner, f"service {name!r} belongs to", service=name)
        return services.get(name)

    async def aservice(self, name: str) -> Any:
        """Like :meth:`service`, awaiting the providing plugin's startup in a running kernel."""
        slot = self._slots.get(f"service:{name}")
        if slot is not None:
            await self.aactivate(slot.id)
        return self.service(name)

    def service_names(self) -> list[str]:
        """Every service name known: registered ones and those declared by usable plugins."""
        names = set(self.registry("services").names())
        for r in self.providers("service:"):
            assert r.manifest is not None
            names.update(r.manifest.services())
        return sorted(names)

    def register_service(self, name: str, obj: Any) -> None:
        """Register a service from the host application itself."""
        services = self.registry("services")
        services.current_plugin = None
        services.add(name, obj)

    @property
    def bus(self) -> Any:
        """The kernel's message bus (:class:`symphony.bus.Bus`), built on first use."""
        if self._bus is None:
            from symphony.bus import Bus

            self._bus = Bus.from_kernel(self)
        return self._bus

    # --- diagnostics -----------------------------------------------------------------------

    def failures(self) -> list[PluginRecord]:
        """Records in a failure state."""
        return [r for r in self._records if r.state in FAILED_STATES]

    def _log(self) -> Any:
        if self._logger is None:
            from symphony.commons.log import get_logger

            self._logger = get_logger("symphony.kernel")
        return self._logger

    def __repr__(self) -> str:
        active = sum(r.state is PluginState.ACTIVE for r in self._records)
        return f"<Kernel plugins={len(self._records)} active={active} running={self._running}>"
