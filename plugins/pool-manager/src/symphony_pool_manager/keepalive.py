"""Keep-alive values in Ollama's terms: a duration, forever, or unload now.

A keep-alive is a number of seconds after the last lease ends; ``FOREVER`` (any negative value)
never expires, ``NOW`` (zero) unloads as soon as the last lease ends. :func:`parse_keep_alive`
accepts what config files and requests carry: numbers (``300``, ``-1``, ``0``), and strings
with a unit (``"30s"``, ``"5m"``, ``"1h"``, ``"1.5h"``), ``"forever"`` or ``"now"``.
"""

from __future__ import annotations

import math
import re

from symphony.commons.errors import ValidationError

__all__ = ["FOREVER", "MAX_KEEP_ALIVE", "NOW", "format_keep_alive", "parse_keep_alive"]

FOREVER = -1.0
"""Never unload for idleness (memory pressure may still evict, last of all)."""

NOW = 0.0
"""Unload as soon as the last lease ends."""

MAX_KEEP_ALIVE = 366 * 86400.0
"""The longest finite keep-alive accepted (one year)."""

_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")


def _bad(value: object, why: str) -> ValidationError:
    return ValidationError(
        f"bad keep-alive {value!r}: {why}",
        code="pool.keep_alive.invalid",
        context={"value": repr(value)[:100]},
        hint='use seconds (300), a duration ("5m", "1h"), "forever" (-1) or "now" (0)',
    )


def parse_keep_alive(value: object) -> float:
    """Seconds, :data:`FOREVER` or :data:`NOW` from a number or a string; ValidationError otherwise."""
    if isinstance(value, bool) or value is None:
        raise _bad(value, "expected a number or a duration string")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise _bad(value, "out of range") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("forever", "inf", "-1"):
            return FOREVER
        if text in ("now", "0"):
            return NOW
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise _bad(value, "not a duration")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    else:
        raise _bad(value, f"expected a number or a string, got {type(value).__name__}")
    if math.isnan(seconds):
        raise _bad(value, "not a number")
    if seconds < 0:
        return FOREVER
    if seconds > MAX_KEEP_ALIVE:
        raise _bad(value, f"longer than {MAX_KEEP_ALIVE:.0f} s; use 'forever'")
    return seconds


def format_keep_alive(seconds: float) -> str:
    """The human form: ``forever``, ``now`` or seconds such as ``300s``."""
    if seconds < 0:
        return "forever"
    if seconds == 0:
        return "now"
    return f"{seconds:g}s"
