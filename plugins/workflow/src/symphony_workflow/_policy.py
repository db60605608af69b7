"""How a runner executes one node: retries, timeout, fallback, optional, caching.

:class:`NodePolicy` is plain data on :attr:`Node.policy <symphony_workflow._model.Node.policy>`:
the workflow model stores, checks and serializes it, and a runner (the DAG tracker) acts on it.
Every field has a default that means "no special handling", and the serialized forms leave
default fields out, so a node without a policy costs nothing in a document.

Values are checked when a policy is made; a bad one raises :class:`ValidationError` with code
``workflow.invalid_policy`` and ``context["field"]`` naming the field (``retry_delay``...).
Checks that need the rest of the workflow (the fallback node exists, is not the node itself,
has compatible outputs, no fallback chain loops) are done by :func:`validate`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from symphony.commons.errors import ValidationError
from symphony_workflow._expr import KEYWORDS

__all__ = ["BACKOFFS", "DEFAULT_POLICY", "MAX_RETRIES", "MAX_SECONDS", "NodePolicy"]

BACKOFFS: tuple[str, ...] = ("constant", "linear", "exponential")
"""The retry backoff shapes, in their binary-form code order."""

MAX_RETRIES = 100
"""The largest ``retries`` value."""

MAX_SECONDS = 7 * 24 * 3600.0
"""The largest delay or timeout, in seconds (one week)."""

_ERROR_SELECTOR = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,127}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_MAX_SALT = 256


def _bad(field: str, message: str, **extra: Any) -> ValidationError:
    return ValidationError(
        f"policy {field}: {message}",
        code="workflow.invalid_policy",
        context={"field": field, **extra},
    )


def _seconds(value: object, field: str, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(field, f"must be a number of seconds, not {type(value).__name__}")
    low_ok = value > 0 if positive else value >= 0
    if not math.isfinite(value) or not low_ok or value > MAX_SECONDS:
        bound = "> 0" if positive else ">= 0"
        raise _bad(field, f"must be {bound} and at most {MAX_SECONDS:g} seconds, found {value!r}")


def _check_retries(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise _bad("retries", f"must be an integer from 0 to {MAX_RETRIES}, found {value!r}"[:200])


def _check_backoff(instance: Any, attribute: Any, value: Any) -> None:
    if value not in BACKOFFS:
        raise _bad(
            "backoff", f"must be one of {', '.join(BACKOFFS)}, found {value!r}"[:200], allowed=list(BACKOFFS)
        )


def _check_delay(instance: Any, attribute: Any, value: Any) -> None:
    _seconds(value, attribute.name, positive=False)


def _check_jitter(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _bad("retry_jitter", f"must be a number from 0 to 1, found {value!r}"[:200])


def _retry_on(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _bad("retry_on", "must be a list of error codes or categories")
    out = tuple(value)
    for item in out:
        if not isinstance(item, str) or _ERROR_SELECTOR.fullmatch(item) is None:
            raise _bad(
                "retry_on",
                f"{item!r} is not an error code or category (lower-case letters, digits, '_', '.', '-')"[
                    :200
                ],
            )
    if len(set(out)) != len(out):
        raise _bad("retry_on", "lists an error twice")
    return out


def _check_timeout(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _seconds(value, "timeout", positive=True)


def _check_fallback(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (
        not isinstance(value, str) or _IDENT.fullmatch(value) is None or value in KEYWORDS
    ):
        raise _bad("fallback", f"must be a node id, found {value!r}"[:200])


def _check_fallback_value(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _bad("fallback_value", "must be an object mapping output port names to values")
    if instance.fallback is not None:
        raise _bad("fallback_value", "a node has either a fallback node or a fallback value, not both")


def _check_bool(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise _bad(attribute.name, f"must be true or false, found {value!r}"[:200])


def _check_salt(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or len(value) > _MAX_SALT:
        raise _bad("cache_salt", f"must be a string of at most {_MAX_SALT} characters")


def _check_max_delay(instance: Any, attribute: Any, value: Any) -> None:
    _seconds(value, "retry_max_delay", positive=False)
    if value < instance.retry_delay:
        raise _bad("retry_max_delay", f"must be >= retry_delay ({instance.retry_delay!r}), found {value!r}")


@attrs.frozen(slots=True)
class NodePolicy:
    """How a runner executes a node; the default policy runs it once, with no special handling.

    **Retry.** After a failed attempt the node is tried again, at most ``retries`` more times
    (0 to 100), when the error is selected by ``retry_on``: an empty tuple selects every error;
    otherwise an entry selects an error whose ``category`` equals it (``timeout``,
    ``transport``...), whose ``code`` equals it, or whose code starts with it followed by a
    dot (``llm`` selects ``llm.rate_limited``). Before attempt ``n`` (``n = 1`` for the first
    retry) the runner waits ``retry_delay`` seconds times 1 (``backoff="constant"``), ``n``
    (``"linear"``) or ``2 ** (n - 1)`` (``"exponential"``), capped at ``retry_max_delay``,
    then scaled by a random factor in ``[1 - retry_jitter, 1]`` (``retry_jitter`` from 0 to 1).

    **Timeout.** ``timeout`` seconds (``None``: no limit) bound each attempt; a timed-out
    attempt is cancelled and fails with an error of category ``timeout``.

    **Fallback.** When the last attempt failed: with ``fallback`` (a node id) the runner runs that
    node in its place, with the same inputs, and its outputs stand for this node's (every
    output of this node must exist on the fallback with an assignable type; :func:`validate`
    checks); with ``fallback_value`` (an object of output port name to JSON value; outputs not
    named get ``null``) the node completes with those outputs. At most one of the two is set.

    **Optional.** With ``optional=True`` a node that still failed (after retries and fallback)
    is *skipped* rather than failing the run; each dependent input it fed receives the
    ``default`` of that input port (``null`` when none).

    **Cache.** With ``cache=True`` (the default) the runner may reuse the stored outputs of an
    earlier completed run of the same node type, implementation version, config and input
    digests, when the implementation declares itself pure; ``cache=False`` always runs it.
    ``cache_salt`` is mixed into the cache key: change it to invalidate earlier results.

    Times are seconds (floats). Bad values raise :class:`ValidationError` with code
    ``workflow.invalid_policy`` and ``context["field"]``.
    """

    retries: int = attrs.field(default=0, validator=_check_retries)
    backoff: str = attrs.field(default="exponential", validator=_check_backoff)
    retry_delay: float = attrs.field(default=1.0, validator=_check_delay)
    retry_max_delay: float = attrs.field(default=60.0, validator=_check_max_delay)
    retry_jitter: float = attrs.field(default=0.0, validator=_check_jitter)
    retry_on: tuple[str, ...] = attrs.field(default=(), converter=_retry_on)
    timeout: float | None = attrs.field(default=None, validator=_check_timeout)
    fallback: str | None = attrs.field(default=None, validator=_check_fallback)
    fallback_value: dict[str, Any] | None = attrs.field(default=None, validator=_check_fallback_value)
    optional: bool = attrs.field(default=False, validator=_check_bool)
    cache: bool = attrs.field(default=True, validator=_check_bool)
    cache_salt: str = attrs.field(default="", validator=_check_salt)

    @property
    def is_default(self) -> bool:
        """True if every field is at its default (a serialized node then has no ``policy``)."""
        return self == DEFAULT_POLICY

    def delay(self, retry: int) -> float:
        """The delay before retry number ``retry`` (1-based), before jitter is applied."""
        if retry < 1:
            return 0.0
        factor = {"constant": 1, "linear": retry, "exponential": 2 ** min(retry - 1, 64)}[self.backoff]
        return float(min(self.retry_delay * factor, self.retry_max_delay))

    def selects(self, code: str, category: str = "") -> bool:
        """True if an error with this ``code`` and ``category`` is retried (see ``retry_on``)."""
        if not self.retry_on:
            return True
        return any(sel == category or sel == code or code.startswith(sel + ".") for sel in self.retry_on)


DEFAULT_POLICY = NodePolicy()
"""The policy of a node that declares none."""

POLICY_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(NodePolicy))
"""Field names in declaration (and binary-form) order."""


def policy_doc(p: NodePolicy) -> dict[str, Any]:
    """The JSON form of ``p``: only the fields that differ from the default."""
    out: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        value = getattr(p, name)
        default = getattr(DEFAULT_POLICY, name)
        if type(value) is not type(default) or value != default:
            out[name] = list(value) if name == "retry_on" else value
    return out


def policy_from_doc(d: dict[str, Any]) -> NodePolicy:
    """A policy from its JSON form (checked; unknown keys are refused)."""
    if not d:
        return DEFAULT_POLICY
    unknown = d.keys() - set(POLICY_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise _bad(name, f"unknown field {name!r}", allowed=list(POLICY_FIELDS))
    return NodePolicy(**d)
