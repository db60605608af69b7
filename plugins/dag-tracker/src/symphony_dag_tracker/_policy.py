"""Execution policy of a node: retries, timeout, fallback, optional, cache, priority, executor.

Until the workflow model carries these fields, a node states its policy under the ``policy``
key of its ``config``::

    {"policy": {"retry": {"attempts": 3, "backoff": "exponential", "delay": 0.5, "max_delay": 10,
                          "jitter": 0.1, "on": ["OperationTimeoutError"]},
                "timeout": 30, "fallback": {"type": "llm.local"} | {"value": {"text": ""}},
                "optional": true, "default": {"text": ""}, "cache": true, "cache_salt": "v2",
                "priority": 5, "executor": "thread"}}

:func:`policy_of` turns that into a :class:`NodePolicy` (a ``ValidationError`` names a bad
key); the ``policy`` key is not part of the config the memo key hashes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import attrs

from symphony.commons.errors import ValidationError

__all__ = ["BACKOFFS", "NodePolicy", "RetryPolicy", "policy_of"]

BACKOFFS = ("constant", "linear", "exponential")
"""How the delay between attempts grows."""


def _bad(field: str, value: object, rule: str) -> ValidationError:
    return ValidationError(
        f"policy.{field} {rule}",
        code="dag.policy.invalid",
        context={"field": f"policy.{field}", "value": repr(value)[:200]},
    )


def _number(field: str, value: object, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise _bad(field, value, f"must be a number >= {minimum:g}")
    return float(value)


@attrs.frozen
class RetryPolicy:
    """``attempts`` in all (1 = no retry); delay before attempt ``n+1`` per ``backoff``, capped, jittered.

    ``on`` lists the error class names or error codes that are retried (empty: every error).
    """

    attempts: int = 1
    backoff: str = "exponential"
    delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.0
    on: tuple[str, ...] = ()

    def delay_before(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        n = max(1, attempt - 1)
        if self.backoff == "constant":
            base = self.delay
        elif self.backoff == "linear":
            base = self.delay * n
        else:
            base = self.delay * (2.0 ** min(n - 1, 60))
        base = min(base, self.max_delay)
        if self.jitter:
            spread = base * self.jitter
            base += (rng or random).uniform(-spread, spread)
        return max(0.0, min(base, self.max_delay))

    def retries(self, error: BaseException) -> bool:
        """True if ``error`` is one this policy retries."""
        if not self.on:
            return True
        names = {cls.__name__ for cls in type(error).__mro__}
        code = getattr(error, "code", None)
        return bool(names.intersection(self.on)) or (code is not None and code in self.on)


@attrs.frozen
class NodePolicy:
    """Everything that governs how one node is run (see the module docstring)."""

    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = None
    fallback_type: str | None = None
    fallback_value: Mapping[str, Any] | None = None
    optional: bool = False
    default: Mapping[str, Any] | None = None
    cache: bool = True
    cache_salt: str = ""
    priority: float = 0.0
    executor: str | None = None

    @property
    def simple(self) -> bool:
        """True when one plain attempt is all there is (no retry, timeout or fallback)."""
        return (
            self.retry.attempts <= 1
            and self.timeout is None
            and self.fallback_type is None
            and self.fallback_value is None
        )


DEFAULT_POLICY = NodePolicy()


def _retry(value: object) -> RetryPolicy:
    if isinstance(value, bool) or isinstance(value, int):
        return RetryPolicy(attempts=_int_attempts(value))
    if not isinstance(value, Mapping):
        raise _bad("retry", value, "must be a number of attempts or an object")
    unknown = set(value) - {"attempts", "backoff", "delay", "max_delay", "jitter", "on"}
    if unknown:
        raise _bad("retry", sorted(map(str, unknown)), "has unknown keys")
    backoff = value.get("backoff", "exponential")
    if backoff not in BACKOFFS:
        raise _bad("retry.backoff", backoff, f"must be one of {', '.join(BACKOFFS)}")
    on = value.get("on", ())
    if isinstance(on, str) or not isinstance(on, list | tuple) or not all(isinstance(x, str) for x in on):
        raise _bad("retry.on", on, "must be a list of error names or codes")
    jitter = _number("retry.jitter", value.get("jitter", 0.0))
    if jitter > 1:
        raise _bad("retry.jitter", jitter, "must be between 0 and 1")
    return RetryPolicy(
        attempts=_int_attempts(value.get("attempts", 1)),
        backoff=str(backoff),
        delay=_number("retry.delay", value.get("delay", 1.0)),
        max_delay=_number("retry.max_delay", value.get("max_delay", 60.0)),
        jitter=jitter,
        on=tuple(on),
    )


def _int_attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise _bad("retry.attempts", value, "must be an integer from 1 to 1000")
    return value


def _outputs(field: str, value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _bad(field, value, "must be an object of output port values")
    return dict(value)


_KEYS = frozenset(
    {"retry", "timeout", "fallback", "optional", "default", "cache", "cache_salt", "priority", "executor"}
)


def policy_of(config: Mapping[str, Any]) -> NodePolicy:
    """The policy a node's ``config["policy"]`` states (the default policy without one)."""
    raw = config.get("policy") if isinstance(config, Mapping) else None
    if raw is None:
        return DEFAULT_POLICY
    if not isinstance(raw, Mapping):
        raise _bad("(root)", raw, "must be an object")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValidationError(
            f"unknown policy key(s): {', '.join(sorted(map(str, unknown)))}",
            code="dag.policy.invalid",
            context={"keys": sorted(map(str, unknown)), "known": sorted(_KEYS)},
        )
    timeout = raw.get("timeout")
    fallback = raw.get("fallback")
    fallback_type: str | None = None
    fallback_value: Mapping[str, Any] | None = None
    if fallback is not None:
        if not isinstance(fallback, Mapping) or len(fallback) != 1 or not set(fallback) <= {"type", "value"}:
            raise _bad("fallback", fallback, 'must be {"type": NODE_TYPE} or {"value": OUTPUTS}')
        if "type" in fallback:
            if not isinstance(fallback["type"], str) or not fallback["type"]:
                raise _bad("fallback.type", fallback["type"], "must be a node type name")
            fallback_type = fallback["type"]
        else:
            fallback_value = _outputs("fallback.value", fallback["value"])
            if fallback_value is None:
                raise _bad("fallback.value", None, "must be an object of output port values")
    for key in ("optional", "cache"):
        if key in raw and not isinstance(raw[key], bool):
            raise _bad(key, raw[key], "must be true or false")
    salt = raw.get("cache_salt", "")
    if not isinstance(salt, str):
        raise _bad("cache_salt", salt, "must be a string")
    executor = raw.get("executor")
    if executor is not None and executor not in ("async", "thread", "process"):
        raise _bad("executor", executor, "must be async, thread or process")
    return NodePolicy(
        retry=_retry(raw.get("retry", 1)),
        timeout=None if timeout is None else _number("timeout", timeout, minimum=1e-6),
        fallback_type=fallback_type,
        fallback_value=fallback_value,
        optional=bool(raw.get("optional", False)),
        default=_outputs("default", raw.get("default")),
        cache=bool(raw.get("cache", True)),
        cache_salt=salt,
        priority=_number("priority", raw.get("priority", 0), minimum=-1e18),
        executor=executor,
    )
