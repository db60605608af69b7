"""Semantic versions and version constraints (npm/Cargo style) for templates.

Constraints:

=====================  ==============================================
``*`` or empty         any release
``1.2.3`` / ``=1.2.3``  exactly that version (``1.2`` means any ``1.2.x``)
``^1.2.3``             compatible: ``>=1.2.3, <2.0.0`` (``^0.2.3``: ``<0.3.0``; ``^0.0.3``: ``<0.0.4``)
``~1.2.3``             patch updates: ``>=1.2.3, <1.3.0``
``>=1.0, <2``          comparators (``> >= < <= =``), all must hold; commas or spaces
``^1 || ^2``           alternatives
=====================  ==============================================

Pre-releases (``1.3.0-rc.1``) match only a constraint that names a pre-release of the same
``major.minor.patch``, so ``^1.2`` never picks an unfinished ``1.3.0-rc.1``.
"""

from __future__ import annotations

import re
from functools import total_ordering

import attrs

from symphony.commons.errors import ValidationError

__all__ = ["SemVer", "VersionConstraint"]

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_PARTIAL = re.compile(r"(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?)?)?")
_COMPARATOR = re.compile(r"(>=|<=|>|<|==|=|\^|~)?\s*v?([0-9][0-9A-Za-z.+-]*)")


@total_ordering
@attrs.frozen(eq=False)
class SemVer:
    """A semantic version; ordered by semver precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str | int, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``1.2.3``, ``1.0.0-rc.1``, ``2.0.0+build.5``; :class:`ValidationError` otherwise."""
        m = _SEMVER.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ValidationError(
                f"{text!r} is not a semantic version",
                code="workflow.version.invalid",
                context={"version": repr(text)},
                hint="use MAJOR.MINOR.PATCH, e.g. 1.4.0",
            )
        pre: tuple[str | int, ...] = ()
        if m.group(4):
            pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split("."))
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")

    @property
    def core(self) -> tuple[int, int, int]:
        """``(major, minor, patch)``."""
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[object, ...]:
        if not self.prerelease:
            return (*self.core, 1, ())
        ids = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (*self.core, 0, ids)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


def _bad(text: str, why: str) -> ValidationError:
    return ValidationError(
        f"invalid version constraint {text!r}: {why}",
        code="workflow.version.constraint",
        context={"constraint": text},
        hint="examples: ^1.2, ~1.2.3, >=1.0,<2.0, 1.4.0, *",
    )


def _partial(text: str, whole: str) -> tuple[list[int], str | None]:
    m = _PARTIAL.fullmatch(text.split("+", 1)[0])
    if m is None:
        raise _bad(whole, f"{text!r} is not a version")
    parts = [int(g) for g in m.groups()[:3] if g is not None]
    return parts, m.group(4)


def _bump(parts: list[int], index: int) -> SemVer:
    values = [*parts, 0, 0, 0][:3]
    values[index] += 1
    for k in range(index + 1, 3):
        values[k] = 0
    return SemVer(values[0], values[1], values[2])


@attrs.frozen
class VersionConstraint:
    """A parsed constraint; :meth:`allows` tests a version, :meth:`best` picks the highest match."""

    text: str
    alternatives: tuple[tuple[tuple[str, SemVer], ...], ...]

    @classmethod
    def parse(cls, text: str | None) -> VersionConstraint:
        """Parse a constraint string (see the module docstring)."""
        if text is None:
            text = "*"
        if not isinstance(text, str) or len(text) > 200:
            raise _bad(str(text)[:50], "expected a short string")
        alternatives: list[tuple[tuple[str, SemVer], ...]] = []
        for alt in text.split("||"):
            alt = alt.strip()
            comparators: list[tuple[str, SemVer]] = []
            if alt in ("", "*", "x", "X"):
                alternatives.append(())
                continue
            pos = 0
            while pos < len(alt):
                while pos < len(alt) and alt[pos] in " ,":
                    pos += 1
                if pos >= len(alt):
                    break
                m = _COMPARATOR.match(alt, pos)
                if m is None:
                    raise _bad(text, f"unexpected {alt[pos : pos + 10]!r}")
                pos = m.end()
                op = m.group(1) or "="
                comparators.extend(cls._expand(op, m.group(2), text))
            alternatives.append(tuple(comparators))
        return cls(text, tuple(alternatives))

    @staticmethod
    def _expand(op: str, version: str, whole: str) -> list[tuple[str, SemVer]]:
        parts, pre = _partial(version, whole)
        padded = [*parts, 0, 0][:3]
        full = (
            SemVer.parse(version.split("+", 1)[0])
            if len(parts) == 3
            else SemVer(padded[0], padded[1], padded[2])
        )
        if op in ("=", "=="):
            if len(parts) == 3:
                return [("=", full)]
            return [(">=", full), ("<", _bump(parts, len(parts) - 1))]
        if op == "^":
            if parts[0] > 0 or len(parts) == 1:
                upper = _bump(parts, 0)
            elif len(parts) == 2 or parts[1] > 0:
                upper = _bump(parts, 1)
            else:
                upper = _bump(parts, 2)
            return [(">=", full), ("<", upper)]
        if op == "~":
            upper = _bump(parts, 0 if len(parts) == 1 else 1)
            return [(">=", full), ("<", upper)]
        if pre is not None and len(parts) != 3:
            raise _bad(whole, "a pre-release needs a full version")
        if op in (">", "<=") and len(parts) < 3:
            # ">1.2" means ">=1.3.0"; "<=1.2" means "<1.3.0"
            return [(">=" if op == ">" else "<", _bump(parts, len(parts) - 1))]
        return [(op, full)]

    def allows(self, version: SemVer | str) -> bool:
        """True if ``version`` satisfies the constraint."""
        v = version if isinstance(version, SemVer) else SemVer.parse(version)
        for comparators in self.alternatives:
            if v.prerelease and not any(c.prerelease and c.core == v.core for _, c in comparators):
                continue
            if all(_holds(op, v, c) for op, c in comparators):
                return True
        return False

    def best(self, versions: list[SemVer]) -> SemVer | None:
        """The highest of ``versions`` that is allowed, or ``None``."""
        allowed = [v for v in versions if self.allows(v)]
        return max(allowed) if allowed else None

    def __str__(self) -> str:
        return self.text


def _holds(op: str, v: SemVer, c: SemVer) -> bool:
    if op == "=":
        return v == c
    if op == ">=":
        return v >= c
    if op == ">":
        return v > c
    if op == "<":
        return v < c
    return v <= c
