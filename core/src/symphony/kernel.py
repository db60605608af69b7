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
"""

from __future__ import annotations

import importlib
import inspect
import os
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from symphony._version import PLUGIN_API_VERSION
from symphony.commons.errors import NotFoundError, PluginError, sole_exception
from symphony.commons.log import debug_enabled
from symphony.plugins.discovery import discover
from symphony.plugins.manifest import Manifest, load_manifest, manifest_path_of
from symphony.plugins.resolve import dependency_order, resolve
from symphony.plugins.states import FAILED_STATES, PluginRecord, PluginState

if TYPE_CHECKING:
    import pluggy

    from symphony.commons.config import Config

__all__ = ["REGISTRIES", "Kernel", "PluginSpec"]

REGISTRIES: dict[str, tuple[str, str]] = {
    "services": ("symphony_register_services", "symphony.services:ServiceRegistry"),
    "commands": ("symphony_register_commands", "symphony.services:CommandRegistry"),
    "transports": ("symphony_register_transports", "symphony.bus.registries:TransportRegistry"),
    "codecs": ("symphony_register_codecs", "symphony.bus.registries:CodecRegistry"),
    "message_types": ("symphony_register_message_types", "symphony.bus.registries:MessageTypeRegistry"),
    "node_types": ("symphony_register_node_types", "symphony.node_types:NodeTypeRegistry"),
}
"""Registry name -> (registration hook, ``module:Class`` of the registry built on first use)."""

PluginSpec = str | ModuleType | tuple[Any, Any]
"""An explicitly given plugin: an import path or module whose package ships ``symphony.toml``,
or a ``(manifest, plugin_object)`` pair where the manifest is a :class:`Manifest` or a path."""

_TRUE = ("1", "true", "yes", "on")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _import_object(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _explicit_record(spec: PluginSpec) -> PluginRecord:
    obj: Any = None
    if isinstance(spec, tuple):
        manifest_like, target = spec
        manifest = manifest_like if isinstance(manifest_like, Manifest) else load_manifest(manifest_like)
        if isinstance(target, str):
            entry = target
        else:
            obj = target
            entry = getattr(target, "__name__", repr(target))
    else:
        entry = spec if isinstance(spec, str) else spec.__name__
        if not isinstance(spec, str):
            obj = spec
        manifest = load_manifest(manifest_path_of(entry))
    return PluginRecord(id=manifest.id, entry_point=entry, manifest=manifest, origin="explicit", obj=obj)


class Kernel:
    """A running Symphony kernel. Build one with :meth:`open` (async) or :meth:`create` (sync)."""

    def __init__(
        self,
        *,
        config: Config,
        records: list[PluginRecord],
        strict: bool = False,
        index_status: str = "unused",
        autoload: bool = True,
    ) -> None:
        self.config = config
        """The layered configuration (:class:`symphony.commons.config.Config`)."""
        self.strict = strict
        """Whether plugin failures raise (``SYMPHONY_STRICT_PLUGINS=1``)."""
        self.index_status = index_status
        """How discovery used the on-disk index: ``warm``, ``cold``, ``disabled`` or ``unused``."""
        self.autoload = autoload
        self._records = records
        self._by_id: dict[str, PluginRecord] = {}
        for r in records:  # the first record wins the id lookup; duplicates stay listed
            self._by_id.setdefault(r.id, r)
        self._slots: dict[str, PluginRecord] = {}
        for r in records:
            if r.ok and r.manifest is not None:
                for slot in r.manifest.provides:
                    self._slots[slot] = r
        self._pm: pluggy.PluginManager | None = None
        self._registries: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._activation_order: list[PluginRecord] = []
        self._started: list[PluginRecord] = []
        self._task_group: Any = None
        self._running = False
        self._bus: Any = None
        self._logger: Any = None
        self._policies = self._hook_policies()

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
    ) -> Kernel:
        """Discover, configure and check plugins; activate the ``on-startup`` ones.

        ``config_path`` is the user config file (default: ``SYMPHONY_USER_CONFIG`` or the
        platform config dir). ``autoload=False`` (or ``SYMPHONY_DISABLE_PLUGIN_AUTOLOAD=1``)
        skips installed plugins; ``plugins`` adds explicit ones. ``strict`` (default:
        ``SYMPHONY_STRICT_PLUGINS`` or ``kernel.strict_plugins``) turns any plugin failure into
        a :class:`PluginError`. ``search_path`` restricts discovery to those directories
        (default ``sys.path``).
        """
        if autoload is None:
            autoload = not _env_flag("SYMPHONY_DISABLE_PLUGIN_AUTOLOAD")
        records: list[PluginRecord] = []
        index_status = "unused"
        if autoload:
            records, index_status = discover(
                use_index=use_index, search_path=list(search_path) if search_path is not None else None
            )
        records.extend(_explicit_record(spec) for spec in plugins)

        schemas = cls._plugin_config_schemas(records)
        from symphony.commons.config import load_config

        config = load_config(
            schemas=schemas,
            env=env,
            config_dir=config_dir,
            user_file=config_path,
            environ=environ,
            overrides=overrides,
            schemas_checked=True,
        )
        from symphony.commons.log import configure_from_config

        configure_from_config(config, lazy=True)
        if strict is None:
            strict = _env_flag("SYMPHONY_STRICT_PLUGINS") or bool(config.get("kernel.strict_plugins", False))
        plugins_cfg = config.section("plugins")
        resolve(
            records,
            kernel_api=PLUGIN_API_VERSION,
            enabled=plugins_cfg.get("enabled", ()),
            disabled=plugins_cfg.get("disabled", ()),
        )
        kernel = cls(
            config=config, records=records, strict=strict, index_status=index_status, autoload=autoload
        )
        kernel._report_failures()
        kernel._activate_on_startup()
        return kernel

    @staticmethod
    def _plugin_config_schemas(records: list[PluginRecord]) -> dict[str, Any]:
        from symphony.bus.config import BUS_CONFIG_SCHEMA
        from symphony.commons.config import CORE_SCHEMAS

        schemas: dict[str, Any] = {"bus": BUS_CONFIG_SCHEMA}
        owners: dict[str, str] = {}
        for r in records:
            m = r.manifest
            if not r.ok or m is None or m.config_section is None:
                continue
            section = m.config_section
            if section in CORE_SCHEMAS or (section in schemas and section not in owners):
                r.fail(
                    PluginState.CONFLICTING,
                    f"{r.id} claims the config section [{section}], which belongs to the kernel",
                    code="plugin.config_section_conflict",
                )
            elif section in owners:
                r.fail(
                    PluginState.CONFLICTING,
                    f"config section [{section}] is claimed by both {owners[section]} and {r.id}",
                    code="plugin.config_section_conflict",
                )
            else:
                owners[section] = r.id
                schemas[section] = dict(m.config_schema or {"type": "object"})
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
            if r.ok
            and r.state is not PluginState.DISABLED
            and r.manifest
            and any(s.startswith(prefix) for s in r.manifest.provides)
        ]

    def activate_slot(self, slot: str) -> PluginRecord:
        """Activate the plugin providing ``slot`` (e.g. ``"transport:unix"``) and return it."""
        record = self._slots.get(slot)
        if record is None:
            blocked = [r for r in self._records if r.manifest and slot in r.manifest.provides]
            if blocked:
                r = blocked[0]
                raise PluginError(
                    f"slot {slot!r} is provided by {r.id}, which is {r.state.value}: {r.reason}",
                    code=r.error_code or f"plugin.{r.state.value}",
                    context={"slot": slot, "plugin": r.id, "state": r.state.value},
                )
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
                raise PluginError(
                    f"plugin {record.id} is {record.state.value}: {record.reason}",
                    code=record.error_code or f"plugin.{record.state.value}",
                    context={"plugin": record.id, "state": record.state.value},
                )
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
            raise PluginError(
                f"plugin {record.id} is {record.state.value}: {record.reason}",
                code=record.error_code or "plugin.activate_failed",
                context={"plugin": record.id},
            )
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
                tb=traceback.format_exc(),
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
                tb=traceback.format_exc(),
                cause=exc,
            )
        try:
            for registry_name, (hook_name, _) in REGISTRIES.items():
                impls = self._own_impls(hook_name, record)
                if not impls:
                    continue
                registry = self.registry(registry_name)
                previous = getattr(registry, "current_plugin", None)
                if hasattr(registry, "current_plugin"):
                    registry.current_plugin = record.id
                try:
                    for impl in impls:
                        self._call_impl(impl, registry=registry, kernel=self)
                finally:
                    if hasattr(registry, "current_plugin"):
                        registry.current_plugin = previous
            for impl in self._own_impls("symphony_activate", record):
                self._call_impl(impl, kernel=self)
        except Exception as exc:
            pm.unregister(name=record.id)
            self._failed(
                record,
                PluginState.ACTIVATE_FAILED,
                f"activating {record.id} raised {type(exc).__name__}: {exc}",
                code="plugin.activate_failed",
                tb=traceback.format_exc(),
                cause=exc,
            )
        finally:
            record.timings["activate"] = time.perf_counter() - start

    def _own_impls(self, hook_name: str, record: PluginRecord) -> list[Any]:
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None:
            return []
        return [impl for impl in caller.get_hookimpls() if impl.plugin_name == record.id]

    @staticmethod
    def _call_impl(impl: Any, **available: Any) -> Any:
        return impl.function(*(available[name] for name in impl.argnames))

    def _failed(
        self,
        record: PluginRecord,
        state: PluginState,
        reason: str,
        *,
        code: str,
        tb: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        record.fail(state, reason, code=code, traceback=tb)
        self._log().warning("plugin failed", plugin=record.id, state=state.value, reason=reason)
        err = PluginError(
            f"plugin {record.id} {state.value}: {reason}",
            code=code,
            context={"plugin": record.id, "state": state.value},
        )
        raise err from cause

    def _report_failures(self) -> None:
        failed = [r for r in self._records if r.state in FAILED_STATES]
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

    def _hook_policies(self) -> dict[str, str]:
        from symphony.hookspecs import FAILURE_POLICY

        policies = dict(FAILURE_POLICY)
        configured = self.config.get("kernel.hook_policy", {}) or {}
        policies.update(configured)
        if self.strict:
            policies = dict.fromkeys(policies, "propagate")
        return policies

    async def _startup(self, record: PluginRecord) -> None:
        if record in self._started or record.state is not PluginState.ACTIVE:
            return
        self._started.append(record)
        for impl in self._own_impls("symphony_startup", record):
            try:
                result = self._call_impl(impl, kernel=self)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self._started.remove(record)
                record.fail(
                    PluginState.ACTIVATE_FAILED,
                    f"startup of {record.id} raised {type(exc).__name__}: {exc}",
                    code="plugin.startup_failed",
                    traceback=traceback.format_exc(),
                )
                self._log().warning("plugin startup failed", plugin=record.id, reason=record.reason)
                if self._policies.get("symphony_startup", "isolate") == "propagate":
                    raise PluginError(
                        f"plugin {record.id} activate-failed: {record.reason}",
                        code="plugin.startup_failed",
                        context={"plugin": record.id},
                    ) from exc

    async def aclose(self) -> None:
        """Run every started plugin's shutdown hook in reverse order, then close the bus."""
        errors: list[BaseException] = []
        if self._bus is not None and hasattr(self._bus, "aclose"):
            try:
                await self._bus.aclose()
            except Exception as exc:
                errors.append(exc)
        for record in reversed(self._started):
            for impl in self._own_impls("symphony_shutdown", record):
                try:
                    result = self._call_impl(impl, kernel=self)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._log().warning("plugin shutdown failed", plugin=record.id, error=repr(exc))
                    errors.append(exc)
        self._started.clear()
        self._running = False
        self._task_group = None
        if errors and self._policies.get("symphony_shutdown", "isolate") == "propagate":
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

    def registry(self, name: str) -> Any:
        """The registry object handed to ``symphony_register_<name>`` hooks (built on first use)."""
        registry = self._registries.get(name)
        if registry is None:
            try:
                _, ref = REGISTRIES[name]
            except KeyError:
                raise NotFoundError(
                    f"no registry named {name!r}",
                    code="kernel.no_registry",
                    context={"registry": name, "known": sorted(REGISTRIES)},
                ) from None
            registry = _import_object(ref)()
            self._registries[name] = registry
        return registry

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
                raise PluginError(
                    f"service {name!r} belongs to {owner_id}, which is {owner.state.value}: {owner.reason}",
                    code=owner.error_code or "plugin.not_active",
                    context={"service": name, "plugin": owner_id},
                )
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
