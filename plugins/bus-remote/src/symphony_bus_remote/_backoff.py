"""Retrying with exponential backoff and full jitter, and a reconnecting connector.

The delay before retry ``n`` (0-based) is drawn uniformly from
``[0, min(max_delay, initial_delay * multiplier**n)]`` -- "full jitter" (AWS Architecture Blog,
*Exponential Backoff and Jitter*): many clients losing one server do not come back in lockstep.

    >>> policy = Backoff(initial_delay=0.1, max_delay=1.0, multiplier=2.0, max_attempts=3)
    >>> [round(policy.cap(n), 2) for n in range(5)]
    [0.1, 0.2, 0.4, 0.8, 1.0]

:func:`retry` runs an async callable until it succeeds, giving up after ``max_attempts``
attempts (``None`` = forever) with ``TransportError(code="transport.reconnect_failed")`` that
carries the last error as its cause. Only *retryable* errors are retried:
:class:`~symphony.commons.errors.TransportError` and
:class:`~symphony.commons.errors.OperationTimeoutError` by default; anything else (a wrong
token, an unknown scheme) is raised at once, since trying again cannot help.

:class:`Reconnector` wraps a transport URL: ``await reconnector.connect()`` returns a fresh
:class:`~symphony.bus.Connection`, retrying with the policy.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import anyio
import attrs

from symphony.commons.errors import ConfigError, OperationTimeoutError, SymphonyError, TransportError

__all__ = ["Backoff", "Reconnector", "retry"]

T = TypeVar("T")

_log_name = "symphony.bus.backoff"


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(
            f"backoff {attribute.name} must be a non-negative number, not {value!r}",
            code="backoff.bad_option",
            context={"option": attribute.name, "value": repr(value)},
        )


def _attempts(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(
            f"backoff max_attempts must be None or an integer >= 1, not {value!r}",
            code="backoff.bad_option",
            context={"option": "max_attempts", "value": repr(value)},
        )


def _multiplier(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
        raise ConfigError(
            f"backoff multiplier must be a number >= 1, not {value!r}",
            code="backoff.bad_option",
            context={"option": "multiplier", "value": repr(value)},
        )


@attrs.frozen(slots=True)
class Backoff:
    """An exponential backoff policy with full jitter.

    ``max_attempts`` counts every attempt, the first one included (``None`` = retry forever).
    """

    initial_delay: float = attrs.field(default=0.05, validator=_positive)
    max_delay: float = attrs.field(default=5.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_multiplier)
    max_attempts: int | None = attrs.field(default=None, validator=_attempts)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> Backoff:
        """Build from a config mapping with the field names as keys (unknown keys are an error)."""
        options = dict(options or {})
        unknown = sorted(set(options) - {"initial_delay", "max_delay", "multiplier", "max_attempts"})
        if unknown:
            raise ConfigError(
                f"unknown backoff option(s): {', '.join(unknown)}",
                code="backoff.bad_option",
                context={"options": unknown},
            )
        return cls(**options)

    def cap(self, retry_number: int) -> float:
        """The upper bound of the delay before retry ``retry_number`` (0-based)."""
        try:
            grown = self.initial_delay * self.multiplier**retry_number
        except OverflowError:
            return float(self.max_delay)
        return float(min(self.max_delay, grown))

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """A jittered delay before retry ``retry_number``: uniform in ``[0, cap(retry_number)]``."""
        return (rng or random).uniform(0.0, self.cap(retry_number))

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The delays between attempts: ``max_attempts - 1`` of them, or endless."""
        n = 0
        while self.max_attempts is None or n < self.max_attempts - 1:
            yield self.delay(n, rng)
            n += 1


def _default_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (TransportError, OperationTimeoutError))


async def retry(
    fn: Callable[[], Awaitable[T]],
    policy: Backoff,
    *,
    retryable: Callable[[BaseException], bool] = _default_retryable,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    what: str = "operation",
) -> T:
    """Await ``fn()`` until it succeeds, sleeping a jittered backoff delay between attempts.

    ``on_retry(attempt, delay, error)`` is called before each sleep (for logging). When the
    attempts run out, raises ``TransportError(code="transport.reconnect_failed")`` naming the
    number of attempts and the last error (also its ``__cause__``).
    """
    attempt = 0
    delays = policy.delays()
    while True:
        attempt += 1
        try:
            return await fn()
        except SymphonyError as exc:
            if not retryable(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise TransportError(
                    f"{what} failed after {attempt} attempt(s): {exc.message}",
                    code="transport.reconnect_failed",
                    context={"attempts": attempt, "last_code": exc.code, "last_error": exc.message},
                    hint="is the server running? check the URL and the server's log",
                ) from exc
            if on_retry is not None:
                on_retry(attempt, delay, exc)
            await anyio.sleep(delay)


class Reconnector:
    """Open connections to one URL, retrying with a :class:`Backoff` policy.

    ``connect()`` returns a new :class:`~symphony.bus.Connection` each time it is
    called (after the previous one was lost, say). ``attempts`` counts the attempts of the
    last ``connect()``. The transport comes from :func:`symphony.bus.open_transport`
    unless given.
    """

    def __init__(
        self,
        url: str,
        *,
        policy: Backoff | None = None,
        options: Mapping[str, Any] | None = None,
        transport: Any = None,
        registry: Any = None,
        kernel: Any = None,
    ) -> None:
        from symphony.bus import open_transport
        from symphony.commons.log import get_logger

        self.url = url
        self.policy = policy or Backoff()
        self.options = dict(options or {})
        self.transport = transport or open_transport(url, registry, kernel=kernel)
        self.attempts = 0
        self._log = get_logger(_log_name)

    async def connect_once(self) -> Any:
        """One connection attempt, without retrying."""
        return await self.transport.connect(self.url, options=self.options)

    async def connect(
        self, policy: Backoff | None = None, *, setup: Callable[[Any], Awaitable[T]] | None = None
    ) -> Any:
        """A new connection, retrying retryable failures per ``policy`` (default: this one's).

        ``setup(connection)`` (a handshake, say) runs as part of each attempt and its result is
        returned instead of the connection: a connection that opens and then breaks during
        setup -- a server still dying, or still starting -- is retried like one that does not
        open, and closed. Setup errors other than ``transport.*`` ones and timeouts (a refused
        handshake, a protocol mismatch) are raised at once.
        """
        self.attempts = 0

        async def attempt() -> Any:
            self.attempts += 1
            conn = await self.connect_once()
            if setup is None:
                return conn
            try:
                return await setup(conn)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await conn.aclose()
                raise

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, OperationTimeoutError):
                return True
            return isinstance(exc, TransportError) and (setup is None or exc.code.startswith("transport."))

        def log_retry(attempt_no: int, delay: float, exc: BaseException) -> None:
            code = getattr(exc, "code", type(exc).__name__)
            self._log.debug(
                "bus.reconnect_retry", url=self.url, attempt=attempt_no, delay=round(delay, 3), code=code
            )

        return await retry(
            attempt,
            policy or self.policy,
            retryable=retryable,
            on_retry=log_retry,
            what=f"connecting to {self.url}",
        )
