"""Pre-validation: small composable rules for cheap technical checks (well under 1 ms), and the
named rules that guard Symphony's outside input (:data:`PLUGIN_ID`, :data:`MESSAGE_TYPE`,
:data:`CONFIG_KEY`, :data:`TEMPLATE_ID`, :data:`WORKFLOW_NAME`).

Pre-validation rejects obviously bad input (empty, too long, out of range, wrong shape) before
any real work starts. It never holds business logic or access control: the component owning
the data gives the authoritative verdict. A failure raises
:class:`~symphony.commons.errors.PreValidationError` (``stage == "pre-validation"``) with
``code="validation.pre.<rule>"`` and ``context={"field", "value", "rule"}`` where ``value`` is
the value's ``repr`` cut to 80 characters and ``rule`` the rule's description.

    >>> from symphony.commons.validation import all_of, max_length, non_empty, pattern, validate
    >>> workflow_name = all_of(non_empty(), max_length(64), pattern(r"[a-z][a-z0-9_-]*"))
    >>> validate("ingest-docs", workflow_name, field="name")
    'ingest-docs'
    >>> validate("", workflow_name, field="name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    symphony.commons.errors.PreValidationError: name: expected non-empty, got '' [...]

Rules are plain objects with a ``description`` and ``check(value, field="value")``; anything
with that shape (see :class:`Rule`) composes with the combinators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from symphony.commons.errors import PreValidationError, ValidationError

if TYPE_CHECKING:
    import re

__all__ = [
    "CONFIG_KEY",
    "MESSAGE_TYPE",
    "PLUGIN_ID",
    "PLUGIN_ID_REGEX",
    "TEMPLATE_ID",
    "WORKFLOW_NAME",
    "Rule",
    "all_of",
    "in_range",
    "length",
    "max_length",
    "non_empty",
    "number",
    "of_type",
    "pattern",
    "validate",
]

T = TypeVar("T")

_REPR_LIMIT = 80


@runtime_checkable
class Rule(Protocol):
    """A pre-validation rule: a human ``description`` and a ``check`` that raises on failure."""

    description: str

    def check(self, value: Any, field: str = "value") -> None:
        """Return None if ``value`` passes; raise :class:`PreValidationError` otherwise."""
        ...


def _value_repr(value: Any) -> str:
    if isinstance(value, (str, bytes)) and len(value) > _REPR_LIMIT:
        value = value[: _REPR_LIMIT + 1]
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the validation failure
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _bad_rule(message: str, **context: Any) -> ValidationError:
    return ValidationError(message, code="validation.bad_rule", context=context)


_Test = Callable[[Any], "dict[str, Any] | None"]


class _Rule:
    """A stock rule: ``name`` gives the error code, ``description`` the text, and ``test(value)``
    returns None when the value passes, else the error's extra context (its ``reason``, if any,
    is shown in the message)."""

    __slots__ = ("description", "name", "test")

    def __init__(self, name: str, description: str, test: _Test) -> None:
        self.name = name
        self.description = description
        self.test = test

    def __repr__(self) -> str:
        return f"<rule {self.name}: {self.description}>"

    def check(self, value: Any, field: str = "value") -> None:
        """Return None if ``value`` passes; raise :class:`PreValidationError` otherwise."""
        extra = self.test(value)
        if extra is None:
            return
        reason = extra.pop("reason", None)
        shown = _value_repr(value)
        message = f"{field}: expected {self.description}, got {shown}"
        if reason:
            message = f"{message} ({reason})"
        context: dict[str, Any] = {"field": field, "value": shown, "rule": self.description, **extra}
        raise PreValidationError(message, code=f"validation.pre.{self.name}", context=context)


class _AllOf(_Rule):
    """Every rule in turn; the first failure raises its own error."""

    __slots__ = ("rules",)

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        super().__init__("all_of", " and ".join(r.description for r in rules) or "anything", lambda _: None)
        self.rules = rules

    def check(self, value: Any, field: str = "value") -> None:
        """Check ``value`` against each rule, stopping at the first failure."""
        for rule in self.rules:
            rule.check(value, field)


def _bounds(subject: str, low: Any, high: Any, less: str = "<=", greater: str = ">=", show: Any = str) -> str:
    """``"low <= subject <= high"``, or the one-sided form, or ``"any <subject>"``."""
    if low is not None and high is not None:
        return f"{show(low)} {less} {subject} {less} {show(high)}"
    if low is not None:
        return f"{subject} {greater} {show(low)}"
    if high is not None:
        return f"{subject} {less} {show(high)}"
    return f"any {subject}"


def _length(name: str, low: int | None, high: int | None) -> Rule:
    for bound in (low, high):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0):
            raise _bad_rule(f"length bounds must be non-negative integers, got {bound!r}", bound=repr(bound))
    if low is not None and high is not None and low > high:
        raise _bad_rule(f"min length {low} is above max length {high}", min=low, max=high)

    def test(value: Any) -> dict[str, Any] | None:
        try:
            size = len(value)
        except TypeError:
            return {"reason": "has no length"}
        if (low is not None and size < low) or (high is not None and size > high):
            return {"reason": f"length {size}", "length": size}
        return None

    return _Rule(name, _bounds("length", low, high), test)


# --------------------------------------------------------------------------- public factories


def non_empty(*, strip: bool = False) -> Rule:
    """Fails for None and for anything with a length of 0; ``strip=True`` also fails blank strings."""

    def test(value: Any) -> dict[str, Any] | None:
        if value is None or (strip and isinstance(value, str) and not value.strip()):
            return {}
        try:
            return {} if len(value) == 0 else None
        except TypeError:
            return None  # no length: present is enough

    return _Rule("non_empty", "non-blank" if strip else "non-empty", test)


def max_length(n: int) -> Rule:
    """``len(value) <= n``; values without a length fail."""
    return _length("max_length", None, n)


def length(min: int | None = None, max: int | None = None) -> Rule:
    """``min <= len(value) <= max`` (either bound optional)."""
    return _length("length", min, max)


def in_range(min: Any = None, max: Any = None, *, inclusive: bool = True) -> Rule:
    """``min <= value <= max`` (strict with ``inclusive=False``); NaN and incomparable values fail."""
    import operator

    if min is not None and max is not None:
        try:
            if min > max:
                raise _bad_rule(
                    f"range minimum {min!r} is above maximum {max!r}", min=repr(min), max=repr(max)
                )
        except TypeError:
            raise _bad_rule(f"range bounds {min!r} and {max!r} are not comparable") from None
    above, below = (operator.ge, operator.le) if inclusive else (operator.gt, operator.lt)

    def test(value: Any) -> dict[str, Any] | None:
        try:
            ok = (min is None or above(value, min)) and (max is None or below(value, max))
        except TypeError:
            return {"reason": "not comparable"}
        return None if ok else {}

    less, greater = ("<=", ">=") if inclusive else ("<", ">")
    return _Rule("in_range", _bounds("value", min, max, less, greater, repr), test)


def number() -> Rule:
    """An ``int`` or a ``float``, never a ``bool`` (plugin settings read from a config section)."""
    return _Rule(
        "number",
        "a number",
        lambda value: {} if isinstance(value, bool) or not isinstance(value, int | float) else None,
    )


def pattern(regex: str | re.Pattern[str]) -> Rule:
    """The whole string matches ``regex`` (compiled once, :meth:`re.Pattern.fullmatch`)."""
    import re

    try:
        compiled = re.compile(regex)
    except (re.error, TypeError) as exc:
        raise _bad_rule(f"invalid regular expression {regex!r}: {exc}", pattern=repr(regex)) from exc

    def test(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, str):
            return {"reason": "not a string"}
        return {} if compiled.fullmatch(value) is None else None

    return _Rule("pattern", f"matches {compiled.pattern!r}", test)


def of_type(*types: type) -> Rule:
    """``isinstance(value, types)`` (note that ``bool`` is an ``int``)."""
    if not types or not all(isinstance(t, type) for t in types):
        raise _bad_rule(f"of_type() needs classes, got {types!r}")
    return _Rule(
        "of_type",
        "instance of " + " | ".join(t.__qualname__ for t in types),
        lambda value: None if isinstance(value, types) else {"reason": f"got {type(value).__qualname__}"},
    )


def all_of(*rules: Rule) -> Rule:
    """Every rule passes; stops at the first failure and raises its error."""
    return _AllOf(rules)


def validate(value: T, *rules: Rule, field: str = "value") -> T:
    """Check ``value`` against each rule in order (stopping at the first failure); return it."""
    for rule in rules:
        rule.check(value, field)
    return value


# --------------------------------------------------------------------------- outside input

PLUGIN_ID_REGEX = r"[a-z0-9][a-z0-9._-]*"
"""The shape of a plugin id (the distribution name), shared with the manifest's JSON Schema."""

PLUGIN_ID: Rule = all_of(of_type(str), non_empty(), max_length(128), pattern(PLUGIN_ID_REGEX))
"""A plugin id given from outside (``symphony plugins inspect ID``, manifests' ``requires``)."""

MESSAGE_TYPE: Rule = all_of(of_type(str), length(1, 255), pattern(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"))
"""A bus message type: dot-separated ``[A-Za-z0-9_-]+`` segments, at most 255 characters."""

CONFIG_KEY: Rule = all_of(of_type(str), length(1, 256), pattern(r"[^.\s]+(?:\.[^.\s]+)*"))
"""A dotted config key from the command line (``symphony config get|set|unset KEY``)."""

TEMPLATE_ID: Rule = all_of(of_type(str), non_empty(), max_length(128), pattern(r"[a-z0-9][a-z0-9._-]*"))
"""A workflow template id (``symphony workflow template show|instantiate ID`` and template files)."""

WORKFLOW_NAME: Rule = all_of(of_type(str), max_length(1024))
"""A workflow's human-readable name: free text (shown escaped), at most 1024 characters."""
