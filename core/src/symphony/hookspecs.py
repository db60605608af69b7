"""The kernel's hook specifications: the whole contract between the kernel and a plugin.

Every hook is named ``symphony_<verb>_<noun>``. A plugin module implements any subset of them
with the :data:`hookimpl` marker, which ``symphony_sdk`` re-exports together with the registry
classes used to annotate the arguments::

    from symphony_sdk import ServiceRegistry, hookimpl

    @hookimpl
    def symphony_register_services(registry: ServiceRegistry) -> None:
        registry.add("text-stats", TextStats())

Hooks are the *control plane*: discovery, configuration and lifecycle. Hot paths (messages,
node execution, allocation) call the plain objects a hook registered once.

Registration hooks (``symphony_register_*``) of a plugin are called exactly once, when that
plugin is activated, with a registry object (and the ``kernel``, for implementations that
need its config -- an implementation may omit any argument it does not use); the kernel calls
only the newly activated plugin's implementation. A registry that is not the kernel's own
(``services``, ``commands``) is added by the subsystem or plugin that owns it with
:meth:`symphony.Kernel.add_registry`: the bus adds ``transports``, ``codecs`` and
``message_types`` and ``bus_handlers``; the workflow plugin adds ``node_types`` (its hookspecs live in
``symphony_workflow.hookspecs``).

An implementation whose name matches no hookspec (a typo such as
``symphony_register_servises``) puts its plugin into the ``activate-failed`` state with the
hook's name in the reason. A plugin implementing a hook that another plugin adds lists that
plugin in its manifest's ``requires``.

Lifecycle hooks :func:`symphony_startup` and :func:`symphony_shutdown` may be ``async def``;
the kernel awaits them on anyio, in dependency order (reverse order for shutdown). A failing
one is *isolated* by default: its plugin moves to ``activate-failed`` (startup) or is logged
(shutdown), and every other plugin carries on. ``propagate`` under ``[kernel.hook_policy]``
(``symphony_startup = "propagate"``), or ``SYMPHONY_STRICT_PLUGINS=1`` for both, makes the error
leave :meth:`Kernel.open` (or the activating call). A startup hook that does not finish within
``kernel.startup_timeout`` seconds fails the same way (``plugin.startup_timeout``).
:func:`symphony_activate` has no policy: a failure always reaches the activating call, and
plugins activated at kernel creation are isolated unless strict.

Plugins may add hookspecs of their own with :meth:`symphony.Kernel.add_hookspecs`. The hooks
reference (``sdk/docs/hooks.md``) is generated from this module's docstrings.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from symphony.bus import (
        BusHandlerRegistry,
        CodecRegistry,
        MessageTypeRegistry,
        TransportRegistry,
    )
    from symphony.kernel import Kernel
    from symphony.services import CommandRegistry, ServiceRegistry

PROJECT_NAME = "symphony"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (kernel and plugins that define hooks of their own)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations in a plugin module."""


# --- lifecycle -------------------------------------------------------------------------------


@hookspec
def symphony_activate(kernel: Kernel) -> None:
    """Prepare the plugin once it is imported and its registration hooks have run.

    Called once, synchronously, when the plugin is activated -- on first use of one of its
    services, slots or commands, or at start for ``activation = "on-startup"`` -- after every
    plugin it ``requires``. Keep it cheap: read config, build objects, add hookspecs or
    registries of your own. Raising moves the plugin to ``activate-failed`` with the traceback.

    :param kernel: The kernel activating the plugin.

    Example::

        from symphony_sdk import Kernel, hookimpl

        @hookimpl
        def symphony_activate(kernel: Kernel) -> None:
            SETTINGS.update(kernel.config.section("hello"))
    """


@hookspec
def symphony_startup(kernel: Kernel) -> Awaitable[None] | None:
    """Start the plugin's long-lived work; may be ``async def`` (awaited on anyio).

    Called in dependency order (a plugin after everything it ``requires``/``after``) when
    ``Kernel.open()`` enters, for plugins active then, and for a plugin activated later
    through ``await kernel.aservice(...)`` / ``await kernel.aactivate(...)``. Not called by
    ``Kernel.create()``. A failure moves the plugin to ``activate-failed`` (policy ``isolate``).

    :param kernel: The running kernel; ``kernel.start_soon(fn)`` runs background tasks in its
        task group.

    Example::

        from symphony_sdk import Kernel, hookimpl

        @hookimpl
        async def symphony_startup(kernel: Kernel) -> None:
            kernel.start_soon(watch_folder, kernel.config.get("hello.folder"))
    """


@hookspec
def symphony_shutdown(kernel: Kernel) -> Awaitable[None] | None:
    """Stop what :func:`symphony_startup` started; may be ``async def``.

    Called when ``Kernel.open()`` exits, in reverse dependency order, for every plugin whose
    startup ran. Failures are logged and isolated: every other plugin still shuts down.

    :param kernel: The kernel being closed.

    Example::

        from symphony_sdk import Kernel, hookimpl

        @hookimpl
        async def symphony_shutdown(kernel: Kernel) -> None:
            await CONNECTIONS.aclose()
    """


# --- registrations ---------------------------------------------------------------------------


@hookspec
def symphony_register_services(registry: ServiceRegistry, kernel: Kernel) -> None:
    """Register named services.

    Called once when the plugin is activated, typically because ``kernel.service(name)`` asked
    for a service its manifest declares. The manifest must list each service as
    ``provides = ["service:<name>"]`` so the kernel knows which plugin to activate.

    :param registry: The kernel's services: ``registry.add(name, obj)`` or
        ``registry.add_factory(name, fn)`` (built on first ``get``).
    :param kernel: The activating kernel (for its ``config``).

    Example::

        from symphony_sdk import Kernel, ServiceRegistry, hookimpl

        @hookimpl
        def symphony_register_services(registry: ServiceRegistry, kernel: Kernel) -> None:
            registry.add("hello", Hello(**kernel.config.section("hello")))
    """


@hookspec
def symphony_register_commands(registry: CommandRegistry, kernel: Kernel) -> None:
    """Add top-level CLI commands (click commands).

    Called once when the plugin is activated, typically because ``symphony <command>`` was
    run. The manifest lists each command (``commands = [{name = "...", summary = "..."}]``) so
    ``symphony --help`` shows it without importing the plugin.

    :param registry: The CLI's commands: ``registry.add(click_command)``.
    :param kernel: The activating kernel.

    Example::

        import click
        from symphony_sdk import CommandRegistry, hookimpl

        @click.command("hello")
        def hello() -> None:
            click.echo("hello")

        @hookimpl
        def symphony_register_commands(registry: CommandRegistry) -> None:
            registry.add(hello)
    """


@hookspec
def symphony_register_transports(registry: TransportRegistry, kernel: Kernel) -> None:
    """Add bus transports by URL scheme.

    Called once when the plugin is activated -- when a bus connects to or serves a URL whose
    scheme the manifest declares as ``provides = ["transport:<scheme>"]`` -- or, for a plugin
    already active, when the kernel's bus is first built.

    :param registry: The bus's transports: ``registry.add(scheme, factory)``; ``factory()``
        returns a :class:`symphony.bus.Transport`.
    :param kernel: The activating kernel.

    Example::

        from symphony_sdk import TransportRegistry, hookimpl

        @hookimpl
        def symphony_register_transports(registry: TransportRegistry) -> None:
            registry.add("unix", UnixTransport)
    """


@hookspec
def symphony_register_codecs(registry: CodecRegistry, kernel: Kernel) -> None:
    """Add bus codecs by name.

    Called once when the plugin is activated; every plugin whose manifest declares
    ``provides = ["codec:<name>"]`` is activated when the kernel's bus is first built.

    :param registry: The bus's codecs (``json`` and ``msgpack`` built in):
        ``registry.add(codec)`` with an object that has ``name``, ``encode`` and ``decode``.
    :param kernel: The activating kernel.

    Example::

        from symphony_sdk import CodecRegistry, hookimpl

        @hookimpl
        def symphony_register_codecs(registry: CodecRegistry) -> None:
            registry.add(CborCodec())        # CborCodec.name == "cbor"
    """


@hookspec
def symphony_register_message_types(registry: MessageTypeRegistry, kernel: Kernel) -> None:
    """Add bus message types keyed by ``(type, version)``, each with an optional JSON Schema.

    Called once when the plugin is activated; every plugin whose manifest declares
    ``provides = ["message-type:<type>"]`` is activated when the kernel's bus is first built.
    The bus validates payloads against the schema at its boundary.

    :param registry: The bus's message types: ``registry.add(type, version, schema=...,
        summary=...)``.
    :param kernel: The activating kernel.

    Example::

        from symphony_sdk import MessageTypeRegistry, hookimpl

        @hookimpl
        def symphony_register_message_types(registry: MessageTypeRegistry) -> None:
            registry.add("hello.greet", 1, schema={"type": "object", "required": ["name"]})
    """


@hookspec
def symphony_register_bus_handlers(registry: BusHandlerRegistry, kernel: Kernel) -> None:
    """Expose request handlers on the kernel's message bus.

    A handler answers requests whose type matches its pattern, in this process
    (``await kernel.bus.request(type, payload)``) and, once ``symphony serve`` serves the bus,
    from every client (``symphony bus request TYPE PAYLOAD``; ``symphony bus routes`` lists
    them). Called once when the plugin is activated; every plugin whose manifest declares
    ``provides = ["bus-handler:<pattern>"]`` is activated when the kernel's bus is first
    built, so a served bus answers its handlers without anything else asking for the plugin.

    :param registry: The bus's handlers: ``registry.add(pattern, handler, name=...,
        priority=..., summary=...)``; ``handler(msg)`` (plain or ``async def``) gets the
        :class:`symphony.bus.Message` and returns the reply payload, or raises a
        ``SymphonyError`` that the caller receives with its code and context.
    :param kernel: The activating kernel.

    Example::

        from symphony_sdk import BusHandlerRegistry, Message, hookimpl

        @hookimpl
        def symphony_register_bus_handlers(registry: BusHandlerRegistry) -> None:
            async def analyze(msg: Message) -> dict[str, int]:
                return {"words": len(str(msg.payload["text"]).split())}

            registry.add("textstats.analyze", analyze, summary="Statistics of a text")
    """
