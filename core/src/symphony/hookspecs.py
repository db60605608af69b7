"""The kernel's hook specifications: the whole contract between the kernel and a plugin.

Every hook is named ``symphony_<verb>_<noun>``. A plugin module implements any subset of them
with the :data:`hookimpl` marker (re-exported by ``symphony_sdk``)::

    from symphony_sdk import hookimpl

    @hookimpl
    def symphony_register_services(registry):
        registry.add("text-stats", TextStats())

Hooks are the *control plane*: discovery, configuration and lifecycle. Hot paths (messages,
node execution, allocation) call the plain objects a hook registered once.

Registration hooks (``symphony_register_*``) of a plugin are called exactly once, when that
plugin is activated, with a registry object (and the ``kernel``, for implementations that
need its config — an implementation may omit any argument it does not use); the kernel calls
only the newly activated plugin's implementation.

Lifecycle hooks :func:`symphony_startup` and :func:`symphony_shutdown` may be ``async def``;
the kernel awaits them on anyio, in dependency order (reverse order for shutdown), with the
failure policy in :data:`FAILURE_POLICY` (configurable under ``[kernel.hook_policy]``).

Plugins may add hookspecs of their own with :meth:`symphony.Kernel.add_hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from symphony.kernel import Kernel

PROJECT_NAME = "symphony"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (kernel and plugins that define hooks of their own)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations in a plugin module."""

FAILURE_POLICY: dict[str, str] = {
    "symphony_startup": "isolate",
    "symphony_shutdown": "isolate",
}
"""What the kernel does when a lifecycle hook implementation raises.

``propagate``: the error leaves :meth:`Kernel.open` (or the activating call). ``isolate``: the
failing plugin moves to ``activate-failed`` (startup) or is logged (shutdown) and every other
plugin carries on. ``SYMPHONY_STRICT_PLUGINS=1`` turns every ``isolate`` into ``propagate``.
A startup hook that does not finish within ``kernel.startup_timeout`` seconds fails the same
way (``plugin.startup_timeout``). :func:`symphony_activate` has no policy: a failure always
reaches the activating call, and plugins activated at kernel creation are isolated unless
strict.
"""


# --- lifecycle -------------------------------------------------------------------------------


@hookspec
def symphony_activate(kernel: Kernel) -> None:
    """Called once, synchronously, when this plugin is activated (imported and registered).

    Keep it cheap: read config (``kernel.config.section(...)``), build objects. Raising moves
    the plugin to the ``activate-failed`` state with the traceback kept.
    """


@hookspec
def symphony_startup(kernel: Kernel) -> Any:
    """Start the plugin's long-lived work. May be ``async def``; awaited on anyio.

    Called in dependency order (a plugin after everything it ``requires``/``after``) when the
    kernel opens, for plugins active at that point, and when a plugin is activated later
    through ``await kernel.aservice(...)`` / ``await kernel.aactivate(...)``.
    """


@hookspec
def symphony_shutdown(kernel: Kernel) -> Any:
    """Stop what :func:`symphony_startup` started. May be ``async def``; reverse dependency order.

    Failures are logged and isolated: every other plugin still shuts down.
    """


# --- registrations ---------------------------------------------------------------------------


@hookspec
def symphony_register_services(registry: Any, kernel: Kernel) -> None:
    """Register named services: ``registry.add(name, obj)`` or ``registry.add_factory(name, fn)``.

    The manifest must list each one as ``provides = ["service:<name>"]`` so the kernel knows
    which plugin to activate when ``kernel.service(name)`` is first asked for.
    """


@hookspec
def symphony_register_commands(registry: Any, kernel: Kernel) -> None:
    """Add top-level CLI commands: ``registry.add(click_command)``.

    The manifest lists them (``commands = [{name = "...", summary = "..."}]``) so
    ``symphony --help`` shows them without importing the plugin.
    """


@hookspec
def symphony_register_transports(registry: Any, kernel: Kernel) -> None:
    """Add bus transports by URL scheme: ``registry.add("unix", factory)``.

    Declare the slot in the manifest: ``provides = ["transport:unix"]``.
    """


@hookspec
def symphony_register_codecs(registry: Any, kernel: Kernel) -> None:
    """Add bus codecs by name: ``registry.add(codec)``; declare ``provides = ["codec:<name>"]``."""


@hookspec
def symphony_register_message_types(registry: Any, kernel: Kernel) -> None:
    """Add bus message types keyed by (type, version), each with an optional JSON Schema."""


@hookspec
def symphony_register_node_types(registry: Any, kernel: Kernel) -> None:
    """Add workflow node types this plugin can execute (instruments and operators).

    ``registry.add(type_name, inputs=..., outputs=..., kind="operator")``; declare each as
    ``provides = ["node-type:<type_name>"]`` so workflows can be checked without importing.
    """
