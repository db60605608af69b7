"""Duck debugging: throw-away ``duck()`` probes that print a greppable line and return the value.

    from symphony.commons.debug import duck

    total = duck(compute_total(items), label="total", items=len(items))
    # stderr: [DUCK DEBUGGING] src/pkg/mod.py:42 total=1234 items=17

``duck(value)`` returns ``value`` unchanged, so it can wrap any expression. It prints only
when enabled, and costs one flag test when not. Enabling, from weakest to strongest:

- ``configure_duck_from_config(config)`` follows ``debug.duck_debugging`` (on in the
  ``development`` profile, off in ``test`` and ``production``); ``Kernel.create`` calls it;
- the environment variable ``SYMPHONY_DUCK`` (``1/true/yes/on`` or ``0/false/no/off``), read
  at import and by :func:`enable_duck` ``(None)``, wins over the config;
- :func:`enable_duck` ``(True/False)`` wins over both.

Duck calls are temporary: ``tests/core/commons/test_no_duck_in_shipped_code.py`` scans
every ``src/`` folder of the repository and fails the build on any leftover.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from symphony.commons.config import Config

__all__ = [
    "PREFIX",
    "configure_duck_from_config",
    "duck",
    "duck_enabled",
    "enable_duck",
]

T = TypeVar("T")

PREFIX = "[DUCK DEBUGGING]"
"""The greppable prefix of every duck line."""

_ENV_VAR = "SYMPHONY_DUCK"
_MISSING: Any = object()


def _env_setting() -> bool | None:
    from symphony.commons.config import env_flag

    return env_flag(_ENV_VAR)


class _DuckState:
    __slots__ = ("config", "enabled", "env", "explicit")

    def __init__(self) -> None:
        self.explicit: bool | None = None
        self.env: bool | None = _env_setting()
        self.config: bool | None = None
        self.update()

    def update(self) -> None:
        """``enabled``: the explicit choice, else ``SYMPHONY_DUCK``, else the config, else off."""
        settings = (self.explicit, self.env, self.config)
        self.enabled = next((setting for setting in settings if setting is not None), False)


_state = _DuckState()


def enable_duck(enabled: bool | None = True) -> None:
    """Turn duck output on or off for this process; ``None`` drops the explicit choice and
    re-reads ``SYMPHONY_DUCK`` (falling back to the config setting, then off)."""
    _state.explicit = enabled
    if enabled is None:
        _state.env = _env_setting()
    _state.update()


def duck_enabled() -> bool:
    """True if :func:`duck` currently prints."""
    return _state.enabled


def configure_duck_from_config(config: Config) -> None:
    """Follow ``debug.duck_debugging`` of ``config`` (``SYMPHONY_DUCK`` and :func:`enable_duck` still win)."""
    _state.config = bool(config.get("debug.duck_debugging", False))
    _state.update()


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a broken __repr__ must not break the program being debugged
        return f"<{type(value).__name__}: repr failed: {exc!r}>"


def _where(depth: int) -> str:
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return "<unknown>:0"
    filename = frame.f_code.co_filename
    try:
        relative = os.path.relpath(filename)
        if not relative.startswith(".."):
            filename = relative
    except ValueError:  # other drive on Windows
        pass
    return f"{filename}:{frame.f_lineno}"


@overload
def duck(*, label: str | None = None, **context: Any) -> None: ...


@overload
def duck(value: T, /, *, label: str | None = None, **context: Any) -> T: ...


def duck(value: Any = _MISSING, /, *, label: str | None = None, **context: Any) -> Any:
    """Print ``[DUCK DEBUGGING] <file>:<line> <what> key=value ...`` to stderr and return ``value``.

    ``<what>`` is ``label=repr(value)`` with a label, ``repr(value)`` without one, and just the
    label (or nothing) when no value is given; context values are shown with ``repr``. The file
    and line are the caller's. Returns ``value`` (None when called without one), whether or not
    output is enabled.
    """
    if not _state.enabled:
        return None if value is _MISSING else value
    parts = [PREFIX, _where(1)]
    if value is not _MISSING:
        shown = _safe_repr(value)
        parts.append(f"{label}={shown}" if label else shown)
    elif label:
        parts.append(label)
    parts.extend(f"{key}={_safe_repr(item)}" for key, item in context.items())
    stream = sys.stderr
    if stream is not None:
        stream.write(" ".join(parts) + "\n")
        stream.flush()
    return None if value is _MISSING else value
