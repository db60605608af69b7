"""The async front door: wait for a grant, hold it for a block of work, release it whatever happens.

::

    async with acquire(engine, Request.make("run-7", {"cpu_slots": 1}, priority="high")) as grant:
        ...                                   # the resources are yours until the block ends

    # what a conductor does around an instrument node: arbitration first, then the model lease
    request = request_for(pool, "run-7", "embed.minilm", priority="high", cpu_slots=1)
    async with admitted(engine, pool, request) as admission:
        vectors = admission.instance.encode(texts)

Both release in reverse order on success, error or cancellation. A deferred request waits
(waking at its estimated wait to let time-based stages move: aging, token refill, deadlines)
up to ``timeout``; a denial raises :class:`~symphony_arbitration_engine.errors.DeniedError`
with the decision. When ``cancel_on_preempt`` is true (the default) and the grant is taken back
for a higher class, the block is cancelled and :class:`PreemptedError` is raised after cleanup.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import anyio
import attrs

from symphony.commons.errors import ValidationError
from symphony_arbitration_engine.engine import ArbitrationEngine
from symphony_arbitration_engine.errors import DeniedError, PreemptedError, WaitTimeoutError
from symphony_arbitration_engine.model import Decision, DenialReason, Outcome, PriorityClass, Request

__all__ = ["Admission", "Grant", "LeasingPool", "acquire", "admitted", "request_for"]

_MIN_WAKE = 0.01
_MAX_WAKE = 5.0


class LeasingPool(Protocol):
    """What :func:`admitted` needs from a model pool (``symphony_pool_manager.ModelPool`` is one)."""

    def lease(
        self, key: str, *, owner: str | None = None, keep_alive: float | str | None = None, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Any]:
        """An async context manager yielding the model instance."""
        ...

    def demand(self, key: str) -> dict[str, float]:
        """The shared resources one instance of ``key`` needs."""
        ...


@attrs.define
class Grant:
    """A granted request, while it is held."""

    id: str
    request: Request
    decision: Decision
    preempted: bool = False


@attrs.frozen
class Admission:
    """What :func:`admitted` yields: the grant and the leased model instance."""

    grant: Grant
    instance: Any


def request_for(
    pool: LeasingPool,
    owner: str,
    model: str,
    *,
    priority: PriorityClass | str = PriorityClass.NORMAL,
    deadline: float | None = None,
    extra: Mapping[str, float] | None = None,
    **demand: float,
) -> Request:
    """A request for leasing ``model`` from ``pool``: its memory and instance, plus ``demand``."""
    amounts: dict[str, float] = dict(pool.demand(model))
    for source in (extra or {}, demand):
        for name, value in source.items():
            amounts[name] = amounts.get(name, 0.0) + value
    return Request.make(owner, amounts, priority=priority, deadline=deadline, model=model)


@asynccontextmanager
async def acquire(
    engine: ArbitrationEngine,
    request: Request,
    *,
    timeout: float | None = None,
    cancel_on_preempt: bool = True,
) -> AsyncIterator[Grant]:
    """Hold ``request``'s resources for the ``async with`` block (see the module docstring)."""
    decision = engine.submit(request)
    rid = decision.request
    latest: list[Decision] = [decision]
    event = anyio.Event()
    scope = anyio.CancelScope()
    grant: Grant | None = None

    def on_decision(d: Decision) -> None:
        latest[0] = d
        if d.reason is DenialReason.PREEMPTED:
            if grant is not None:
                grant.preempted = True
                if cancel_on_preempt:
                    scope.cancel()
            return
        event.set()

    engine.watch(rid, on_decision)
    try:
        if decision.outcome is Outcome.DEFERRED:
            deadline = math.inf if timeout is None else anyio.current_time() + timeout
            while latest[0].outcome is Outcome.DEFERRED:
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    engine.cancel(rid)
                    raise WaitTimeoutError(
                        f"request {rid} was not granted within {timeout:g} s",
                        context={"request": rid, "owner": request.owner, "last": latest[0].rationale},
                    )
                wake = min(max(latest[0].wait or _MIN_WAKE, _MIN_WAKE), _MAX_WAKE, remaining)
                with anyio.move_on_after(wake):
                    await event.wait()
                if latest[0].outcome is Outcome.DEFERRED and not event.is_set():
                    engine.tick()
                event = anyio.Event()
        final = latest[0]
        if final.outcome is Outcome.DENIED:
            raise DeniedError(
                f"request {rid} of {request.owner!r} denied ({final.reason.value if final.reason else '?'}): "
                f"{final.rationale}",
                decision=final,
            )
        grant = Grant(rid, request, final)
        try:
            with scope:
                yield grant
        finally:
            with anyio.CancelScope(shield=True):
                if rid in engine.grants():
                    engine.release(rid)
        if grant.preempted and scope.cancelled_caught:
            raise PreemptedError(
                f"grant {rid} of {request.owner!r} was taken back for a higher priority request",
                context={"request": rid, "owner": request.owner, "rationale": latest[0].rationale},
            )
    except BaseException:
        if rid in engine.pending():
            engine.cancel(rid)
        raise
    finally:
        engine.watch(rid, None)


@asynccontextmanager
async def admitted(
    engine: ArbitrationEngine,
    pool: LeasingPool,
    request: Request,
    *,
    model: str | None = None,
    timeout: float | None = None,
    keep_alive: float | str | None = None,
    cancel_on_preempt: bool = True,
) -> AsyncIterator[Admission]:
    """Arbitration first, then the model lease; both released (lease first) whatever happens.

    ``model`` defaults to ``request.model``. The lease's owner is the request's owner, so
    ``pool.release_owner(run_id)`` reclaims it if the holder never returns.
    """
    key = model or request.model
    if not key:
        raise ValidationError("admitted() needs a model key (request.model or model=)", code="arbitration.request.invalid")
    async with (
        acquire(engine, request, timeout=timeout, cancel_on_preempt=cancel_on_preempt) as grant,
        pool.lease(key, owner=request.owner, keep_alive=keep_alive, timeout=timeout) as instance,
    ):
        yield Admission(grant, instance)
