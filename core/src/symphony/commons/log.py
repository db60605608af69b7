"""Structured logging for every Symphony package: structlog over the stdlib ``logging`` module.

    from symphony.commons.log import get_logger, bound_context

    log = get_logger(__name__)              # cheap at import time: a lazy proxy
    log.info("plugin activated", plugin="symphony-transport-unix")
    with bound_context(workflow="wf-1", node="n3"):
        log.warning("slow node", elapsed_ms=812)   # carries workflow= and node=

Every event carries ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` and ``logger``, plus
whatever is bound with :func:`bind_context` / :func:`bound_context` (``structlog.contextvars``,
so it follows anyio tasks) or passed to :func:`get_logger` / ``log.bind()``.

Outputs are handlers on the stdlib logger ``"symphony"`` (loggers named outside that
hierarchy are placed under it: ``get_logger("symphony_x")`` logs through
``symphony.symphony_x``, and its ``logger`` field still says ``symphony_x``):

- console on **stderr**: ``pretty`` (structlog's console renderer, colours on a TTY),
  ``compact`` (one plain line per event) or ``json``; ``auto`` = pretty on a TTY, else compact;
- an optional text file, rotated by size (``RotatingFileHandler``) or daily/hourly
  (``TimedRotatingFileHandler``); its parent directories are created;
- an optional JSON-lines file, rotated the same way.

With no output at all (console off, no file) and ``propagate=False``, errors still go to
stderr in compact form as a last resort, so a misconfigured production host does not fail
silently. The ``"symphony"`` logger does not propagate to the root logger by default (no
duplicate lines in hosts that configured the root logger); pass ``propagate=True`` to hand
records to the host's handlers too.

:func:`configure_logging` is idempotent, and :func:`get_logger` configures the console with
defaults on first use when nothing was configured. Importing this module imports neither
``logging`` nor ``structlog``; the first real log call does.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from symphony.commons.errors import ConfigError, from_os_error

if TYPE_CHECKING:
    import logging
    from contextlib import AbstractContextManager

    from symphony.commons.config import Config

__all__ = [
    "LEVELS",
    "bind_context",
    "bound_context",
    "configure_from_config",
    "configure_logging",
    "debug_enabled",
    "get_logger",
    "is_configured",
    "reset_logging",
    "unbind_context",
]

ROOT_LOGGER = "symphony"
"""Name of the stdlib logger holding Symphony's handlers."""

LEVELS: dict[str, int] = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}
"""Accepted level names and their stdlib numbers."""

_FORMATS = ("auto", "pretty", "compact", "json")
_ROTATIONS = ("size", "daily", "hourly")
_MiB = 1024 * 1024


class _State:
    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.handlers: list[logging.Handler] = []
        self.processors: list[Any] | None = None
        self.pending: dict[str, Any] | None = None


_state = _State()
_lock = threading.RLock()


# --------------------------------------------------------------------------- renderers

_STANDARD_KEYS = ("timestamp", "level", "logger", "event")


def _standard_first(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Put timestamp, level, logger and event first (JSON lines read better that way)."""
    ordered = {key: event_dict.pop(key) for key in _STANDARD_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _processors() -> list[Any]:
    """The chain every Symphony structlog logger runs before handing the event to stdlib."""
    if _state.processors is None:
        import structlog

        _state.processors = [
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ]
    return _state.processors


def _formatter(kind: str, *, colors: bool = False) -> logging.Formatter:
    import structlog

    foreign: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    chain: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if kind == "json":
        chain += [structlog.processors.format_exc_info, _standard_first, structlog.processors.JSONRenderer()]
    elif kind == "pretty":
        chain.append(structlog.dev.ConsoleRenderer(colors=colors))
    else:  # compact: one plain line per event (plus a plain traceback), keys in the order given
        chain.append(
            structlog.dev.ConsoleRenderer(
                colors=False,
                pad_event_to=0,
                pad_level=False,
                sort_keys=False,
                exception_formatter=structlog.dev.plain_traceback,
            )
        )
    return structlog.stdlib.ProcessorFormatter(processors=chain, foreign_pre_chain=foreign)


def _stderr_handler() -> logging.Handler:
    import logging

    class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
        """Writes to whatever ``sys.stderr`` is at emit time (so pytest capture works)."""

        def __init__(self) -> None:
            super().__init__(sys.stderr)

        @property  # type: ignore[override,unused-ignore]
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, value: Any) -> None:
            pass

    return _StderrHandler()


def _file_handler(path: str, rotation: str, max_bytes: int, backup_count: int) -> logging.Handler:
    import logging.handlers

    from symphony.commons.fs import ensure_dir

    target = os.path.abspath(os.path.expanduser(path))
    ensure_dir(os.path.dirname(target))
    try:
        if rotation == "size":
            return logging.handlers.RotatingFileHandler(
                target, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        return logging.handlers.TimedRotatingFileHandler(
            target,
            when="midnight" if rotation == "daily" else "H",
            backupCount=backup_count,
            encoding="utf-8",
        )
    except OSError as exc:
        raise from_os_error(exc, path=target, action="open log file") from exc


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- configuration


def configure_logging(
    *,
    level: str = "info",
    console: bool = True,
    format: str = "auto",
    file: str | os.PathLike[str] | None = None,
    rotation: str = "size",
    max_bytes: int = 10 * _MiB,
    backup_count: int = 5,
    json_file: str | os.PathLike[str] | None = None,
    force: bool = False,
    propagate: bool = False,
) -> None:
    """Set up Symphony's log outputs; see the module docstring.

    Calling it again with the same arguments changes nothing; different arguments (or
    ``force=True``) replace the previous handlers cleanly (they are closed). If a file cannot
    be opened the previous configuration stays in place.

    Raises:
        ConfigError: ``logging.bad_level`` / ``logging.bad_format`` / ``logging.bad_rotation``
        / ``logging.bad_size``; a converted OS error when a log file cannot be opened.
    """
    level_name = str(level).lower()
    for setting, value, allowed in (
        ("level", level_name, LEVELS),
        ("format", format, _FORMATS),
        ("rotation", rotation, _ROTATIONS),
    ):
        if value not in allowed:
            raise ConfigError(
                f"unknown log {setting} {value!r}",
                code=f"logging.bad_{setting}",
                context={"key": f"logging.{setting}", "value": str(value), "allowed": list(allowed)},
            )
    for name, number in (("max_bytes", max_bytes), ("backup_count", backup_count)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ConfigError(
                f"logging.{name} must be a non-negative integer, got {number!r}",
                code="logging.bad_size",
                context={"key": f"logging.{name}", "value": repr(number)},
            )
    tty = _stderr_is_tty()
    console_format = ("pretty" if tty else "compact") if format == "auto" else format
    file_path = None if file is None else os.fspath(file)
    json_path = None if json_file is None else os.fspath(json_file)
    key = (
        level_name,
        bool(console),
        console_format,
        tty,
        file_path,
        rotation,
        max_bytes,
        backup_count,
        json_path,
        propagate,
    )

    with _lock:
        if not force and key == _state.key:
            return
        import logging

        handlers: list[logging.Handler] = []

        def add(handler: logging.Handler, kind: str, colors: bool = False) -> None:
            handler.setFormatter(_formatter(kind, colors=colors))
            handlers.append(handler)

        try:
            if console:
                add(_stderr_handler(), console_format, colors=tty)
            if file_path:
                add(_file_handler(file_path, rotation, max_bytes, backup_count), "compact")
            if json_path:
                add(_file_handler(json_path, rotation, max_bytes, backup_count), "json")
            if not handlers and not propagate:  # the last resort: errors still reach stderr
                add(_stderr_handler(), "compact")
                handlers[-1].setLevel(logging.ERROR)
        except BaseException:
            for handler in handlers:
                handler.close()
            raise
        _processors()
        root = logging.getLogger(ROOT_LOGGER)
        _remove_handlers(root)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(LEVELS[level_name])
        root.propagate = propagate
        _state.handlers = handlers
        _state.key = key


def _remove_handlers(root: logging.Logger) -> None:
    for handler in _state.handlers:
        root.removeHandler(handler)
        try:
            handler.close()
        except Exception:  # closing a broken stream must not stop reconfiguration
            pass
    _state.handlers = []


def reset_logging() -> None:
    """Remove (and close) the handlers :func:`configure_logging` installed; mainly for tests.

    The next :func:`get_logger` use configures the console with defaults again.
    """
    with _lock:
        _state.pending = None
        if _state.key is None and not _state.handlers:
            return
        import logging

        root = logging.getLogger(ROOT_LOGGER)
        _remove_handlers(root)
        root.setLevel(logging.NOTSET)
        root.propagate = True
        _state.key = None


def is_configured() -> bool:
    """True once :func:`configure_logging` ran (explicitly or on first use)."""
    return _state.key is not None


def configure_from_config(config: Config, *, force: bool = False, lazy: bool = False) -> None:
    """Configure logging from the ``[logging]`` section of a :class:`~symphony.commons.config.Config`.

    ``lazy=True`` (what the kernel does) only records the settings for the first log call,
    so a process that never logs never pays for structlog; it changes nothing when logging is
    already configured (a host's own :func:`configure_logging` wins).
    """
    section = config.section("logging")
    keys = ("level", "console", "format", "file", "rotation", "max_bytes", "backup_count", "json_file")
    settings = {k: section[k] for k in keys if k in section}
    if lazy:
        if _state.key is None:
            _state.pending = settings
        return
    configure_logging(force=force, **settings)


def _ensure_configured() -> None:
    if _state.key is None:
        with _lock:
            if _state.key is None:
                configure_logging(**(_state.pending or {}))


# --------------------------------------------------------------------------- loggers


def _stdlib_name(name: str) -> str:
    if name == ROOT_LOGGER or name.startswith(ROOT_LOGGER + "."):
        return name
    return f"{ROOT_LOGGER}.{name}"


def _make_logger(name: str, context: Mapping[str, Any]) -> Any:
    import logging

    import structlog

    _ensure_configured()
    return structlog.stdlib.BoundLogger(
        logging.getLogger(_stdlib_name(name)), _processors(), {"logger": name, **context}
    )


class _LazyLogger:
    """Stands in for a structlog ``BoundLogger`` until the first call, then forwards to it."""

    __slots__ = ("_context", "_logger", "_name")

    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self._name = name
        self._context = context
        self._logger: Any = None

    def _real(self) -> Any:
        logger = self._logger
        if logger is None:
            logger = self._logger = _make_logger(self._name, self._context)
        return logger

    def __repr__(self) -> str:
        return f"<symphony logger {self._name!r} context={self._context!r}>"

    def __getattr__(self, name: str) -> Any:
        # debug/info/warning/error/exception/critical, bind/unbind/new: the real logger's own.
        return getattr(self._real(), name)


def debug_enabled(name: str) -> bool:
    """Whether a debug line from logger ``name`` would be kept, answered without importing structlog.

    For a debug line on a hot start-up path (the kernel's "plugin activated"): guarding it with
    this keeps a process that logs nothing else from paying for structlog.
    """
    import logging

    if _state.key is not None:
        return logging.getLogger(_stdlib_name(name)).isEnabledFor(logging.DEBUG)
    pending = str((_state.pending or {}).get("level", "info")).lower()
    return pending == "debug" or logging.getLogger(_stdlib_name(name)).isEnabledFor(logging.DEBUG)


def get_logger(name: str | None = None, **context: Any) -> Any:
    """A structlog logger for ``name`` (default ``"symphony"``) with ``context`` bound.

    Cheap enough for module level: nothing is imported or configured until the first call on
    it, which configures the console with defaults if :func:`configure_logging` never ran.
    The result supports ``debug/info/warning/error/exception/critical`` and ``bind``.
    """
    return _LazyLogger(name or ROOT_LOGGER, dict(context))


# --------------------------------------------------------------------------- context


def bind_context(**kw: Any) -> None:
    """Bind keys (plugin, workflow, node, correlation_id...) to every event in this context."""
    import structlog

    structlog.contextvars.bind_contextvars(**kw)


def unbind_context(*keys: str) -> None:
    """Remove keys bound with :func:`bind_context` (missing keys are ignored)."""
    import structlog

    structlog.contextvars.unbind_contextvars(*keys)


def bound_context(**kw: Any) -> AbstractContextManager[None]:
    """Context manager binding ``kw`` for its block and restoring the previous values after."""
    import structlog

    manager: AbstractContextManager[None] = structlog.contextvars.bound_contextvars(**kw)
    return manager
