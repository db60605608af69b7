"""The stale manager's settings (the ``[stale_manager]`` config section) and durations."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from symphony.commons.errors import ConfigError, ValidationError

__all__ = ["StalePolicy", "parse_duration"]

DAY = 86400.0
MAX_DURATION = 100 * 366 * DAY
"""The longest duration accepted anywhere (a century)."""

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY, "y": 365 * DAY}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdwy])")


def parse_duration(value: object, *, field: str = "duration") -> float:
    """Seconds from a number of seconds or a string like ``"90s"``, ``"36h"``, ``"2w3d"`` (restic's style).

    Units: s, m (minutes), h, d, w, y (365 days). Raises :class:`ValidationError` naming
    ``field`` for anything else, a negative value or one above a century.
    """
    if isinstance(value, bool):
        raise _bad_duration(field, value, "must be seconds or a string like 14d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if not text or len(text) > 64:
            raise _bad_duration(field, value, "must be seconds or a string like 14d")
        try:
            seconds = float(text)
        except ValueError:
            pos = 0
            seconds = 0.0
            for match in _DURATION.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text):
                raise _bad_duration(field, value, "must be seconds or a string like 14d, 36h, 2w3d") from None
    else:
        raise _bad_duration(field, value, "must be seconds or a string like 14d")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise _bad_duration(field, value, "must be between 0 and 100 years")
    return seconds


def _bad_duration(field: str, value: object, rule: str) -> ValidationError:
    return ValidationError(
        f"{field} = {value!r}: {rule}",
        code="stale.duration.invalid",
        context={"field": field, "value": repr(value)[:100], "rule": rule},
    )


def _bad(key: str, value: object, rule: str) -> ConfigError:
    return ConfigError(
        f"stale_manager.{key} = {value!r}: {rule}",
        code="stale.config.invalid",
        context={"section": "stale_manager", "key": key, "value": repr(value)[:200], "rule": rule},
    )


_DURATIONS = ("grace", "keep_within", "warm_after", "cold_after", "trash_retention", "schedule_interval",
              "disk_check_interval")  # fmt: skip


@attrs.frozen
class StalePolicy:
    """Retention, tiering and trigger settings (restic-style keep rules, git-style grace).

    Every duration is in seconds (0 turns the rule or trigger off, except ``grace``, whose 0
    means no grace at all). An artifact is kept when any rule keeps it:

    - ``pinned`` artifacts, and roots reported by ``symphony_collect_artifact_roots``;
    - the last ``keep_last`` versions of every ref;
    - artifacts carrying one of ``keep_tags``;
    - artifacts put within ``keep_within``;
    - with ``keep_lineage``, everything a kept artifact was made from, transitively;
    - artifacts put within ``grace`` (and what they were made from): never deleted.

    The rest goes to the trash, purged ``trash_retention`` after (never sooner than ``grace``). Staying artifacts idle (not
    put nor read) for ``warm_after`` are compressed in place, for ``cold_after`` moved to the
    store's cold root. ``schedule_interval`` runs gc periodically; ``disk_threshold`` (a
    fraction of the store's disk) runs it when the disk is fuller, checked every
    ``disk_check_interval``; with ``pressure_empties_trash`` such a run also empties the trash.
    """

    grace: float = 14 * DAY
    keep_last: int = 3
    keep_within: float = 7 * DAY
    keep_tags: tuple[str, ...] = ("keep",)
    keep_lineage: bool = True
    warm_after: float = 7 * DAY
    cold_after: float = 30 * DAY
    trash_retention: float = 7 * DAY
    schedule_interval: float = 0.0
    disk_threshold: float = 0.0
    disk_check_interval: float = 60.0
    pressure_empties_trash: bool = True

    def __attrs_post_init__(self) -> None:
        for key in _DURATIONS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _bad(key, value, "must be a number of seconds")
            if not math.isfinite(value) or not 0 <= value <= MAX_DURATION:
                raise _bad(key, value, "must be between 0 and 100 years")
        if (
            isinstance(self.keep_last, bool)
            or not isinstance(self.keep_last, int)
            or not 1 <= self.keep_last <= 1_000_000
        ):
            raise _bad("keep_last", self.keep_last, "must be an integer between 1 and 1000000")
        if (
            isinstance(self.disk_threshold, bool)
            or not isinstance(self.disk_threshold, (int, float))
            or not (0.0 <= self.disk_threshold <= 1.0)
        ):
            raise _bad("disk_threshold", self.disk_threshold, "must be a fraction between 0 and 1 (0 = off)")
        if self.disk_check_interval == 0 and self.disk_threshold > 0:
            raise _bad("disk_check_interval", 0, "must be above 0 when disk_threshold is set")
        for tag in self.keep_tags:
            if not isinstance(tag, str) or not tag:
                raise _bad("keep_tags", tag, "must be non-empty strings")

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> StalePolicy:
        """Build from a config section; durations may be seconds or strings like ``"14d"``.

        Raises:
            ConfigError: ``stale.config.invalid`` naming the key and the rule.
        """
        fields = {a.name for a in attrs.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key not in fields:
                raise _bad(str(key), value, f"unknown key (known: {', '.join(sorted(fields))})")
            if key in _DURATIONS:
                try:
                    value = parse_duration(value, field=f"stale_manager.{key}")
                except ValidationError as err:
                    raise _bad(key, value, err.context.get("rule", "bad duration")) from None
            elif key == "keep_tags":
                if isinstance(value, str) or not isinstance(value, (list, tuple)):
                    raise _bad(key, value, "must be a list of tags")
                value = tuple(value)
            values[key] = value
        return cls(**values)

    @classmethod
    def from_kernel(cls, kernel: Any) -> StalePolicy:
        """The settings in a kernel's ``[stale_manager]`` section (defaults when it has none)."""
        return cls.from_mapping(kernel.config.get("stale_manager") or {})

    @property
    def purge_after(self) -> float:
        """Seconds an artifact stays in the trash: ``trash_retention``, and never less than ``grace``."""
        return max(self.trash_retention, self.grace)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = attrs.asdict(self)
        data["keep_tags"] = list(self.keep_tags)
        return data
