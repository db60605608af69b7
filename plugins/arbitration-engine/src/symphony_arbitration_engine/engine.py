"""The arbitration engine: who gets scarce resources, in four stages, deterministically.

For each request, in order:

1. **Checks** — a known owner; no resource above the whole capacity; a bounded queue per owner.
2. **Hard quota** per owner — what the owner holds plus the demand stays within its quota
   (a demand above the quota itself is denied; otherwise it waits for the owner's releases).
3. **Priority class** — critical > high > normal > low > background. A waiting request is
   promoted one class per ``aging`` seconds (never above high), so nothing starves. With
   ``preemption`` on, a request of class normal or above that does not fit may take back
   grants of class background (youngest first).
4. **Weighted DRF** among owners of one class — the owner with the smallest dominant share
   (largest fraction of any held resource it holds, divided by its weight) goes first; when
   shares tie (with many owners most hold nothing) the owner with the least recent usage
   (dominant shares granted, decayed with ``usage_half_life``) goes first; FIFO within an owner.
5. **Token bucket** per caller for ``calls_per_minute``; money is limited per owner per window
   and globally (``cost_limit``).

The head of the order that does not fit blocks those behind it (no overtaking), so a large
high-priority request is not starved by small low-priority ones. The engine is synchronous and
uses only the injected clock: the same sequence of calls at the same clock times gives the same
decisions, which is what :func:`~symphony_arbitration_engine.replay` checks from the audit log.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from symphony.commons.errors import NotFoundError, ValidationError
from symphony.commons.validation import in_range, number, validate
from symphony_arbitration_engine.audit import AuditLog
from symphony_arbitration_engine.model import (
    HELD,
    RESOURCES,
    Conflict,
    ConflictKind,
    Decision,
    DenialReason,
    Outcome,
    Owner,
    PriorityClass,
    Request,
    Resources,
)

__all__ = ["ArbitrationConfig", "ArbitrationEngine", "Finished"]

_MAX_AGED = PriorityClass.HIGH
_MONEY = 5
_CALLS = 4


_NUMBER = number()


def _number(section: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """``section[key]`` (or ``default``) checked to be a number from ``low`` to ``high``."""
    return float(validate(section.get(key, default), _NUMBER, in_range(low, high), field=f"arbitration.{key}"))


@attrs.frozen
class ArbitrationConfig:
    """Capacity, policy switches and thresholds of an engine.

    ``capacity``: a held resource at 0 is not limited. ``policy``: ``"staged"`` (the stages
    above) or ``"fcfs"`` (first come, first served, the baseline). ``aging``: seconds per class
    promotion (0: off). ``max_pending``: queued requests per owner (APF-style bounded queues).
    ``window``: seconds of history for money limits and the fairness report.
    ``usage_half_life``: owners whose held shares tie (often: most hold nothing) are ordered
    by their recent usage, decayed with this half-life (0: ties go to the oldest request).
    """

    capacity: Resources = attrs.field(factory=Resources)
    policy: str = "staged"
    preemption: bool = False
    aging: float = 60.0
    max_pending: int = 1000
    memory_pressure: float = 0.9
    cpu_saturation: float = 0.9
    cost_limit: float = 0.0
    window: float = 3600.0
    usage_half_life: float = 300.0
    owners: tuple[Owner, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.policy not in ("staged", "fcfs"):
            raise ValidationError(
                f"arbitration.policy must be staged or fcfs, got {self.policy!r}",
                code="arbitration.config.invalid",
                context={"key": "arbitration.policy"},
            )

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> ArbitrationConfig:
        """From the ``[arbitration]`` config section."""
        owners = section.get("owners")
        owners = {} if owners is None else owners
        if not isinstance(owners, Mapping):
            raise ValidationError(
                "arbitration.owners must be a table", code="arbitration.config.invalid", context={"key": "arbitration.owners"}
            )
        return cls(
            capacity=Resources.of(section.get("capacity", {}), what="arbitration.capacity"),
            policy=str(section.get("policy", "staged")),
            preemption=bool(section.get("preemption", False)),
            aging=_number(section, "aging", 60.0, 0, 86400),
            max_pending=int(_number(section, "max_pending", 1000, 1, 1_000_000)),
            memory_pressure=_number(section, "memory_pressure", 0.9, 0, 1),
            cpu_saturation=_number(section, "cpu_saturation", 0.9, 0, 1),
            cost_limit=_number(section, "cost_limit", 0.0, 0, 1e12),
            window=_number(section, "window", 3600.0, 1, 30 * 86400),
            usage_half_life=_number(section, "usage_half_life", 300.0, 0, 30 * 86400),
            owners=tuple(Owner.from_mapping(str(k), v) for k, v in sorted(owners.items())),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form (the audit log's ``config`` record)."""
        return {
            "capacity": self.capacity.to_dict(),
            "policy": self.policy,
            "preemption": self.preemption,
            "aging": self.aging,
            "max_pending": self.max_pending,
            "memory_pressure": self.memory_pressure,
            "cpu_saturation": self.cpu_saturation,
            "cost_limit": self.cost_limit,
            "window": self.window,
            "usage_half_life": self.usage_half_life,
        }


class _Pending:
    __slots__ = ("demand", "id", "owner", "request", "seq", "submitted")

    def __init__(self, request: Request, rid: str, seq: int, submitted: float) -> None:
        self.request = request
        self.id = rid
        self.owner = request.owner
        self.seq = seq
        self.submitted = submitted
        self.demand = request.demand.as_tuple()


class _Grant:
    __slots__ = ("added", "demand", "granted", "id", "owner", "preempted", "priority", "request", "seq", "submitted")

    def __init__(self, p: _Pending, granted: float, added: tuple[float, ...]) -> None:
        self.id = p.id
        self.owner = p.owner
        self.request = p.request
        self.priority = p.request.priority
        self.seq = p.seq
        self.submitted = p.submitted
        self.granted = granted
        self.demand = p.demand
        self.added = added
        self.preempted = False


@attrs.frozen
class Finished:
    """A request that left the engine (released, denied or cancelled): what fairness is computed on."""

    id: str
    owner: str
    priority: PriorityClass
    submitted: float
    granted: float | None
    ended: float
    dominant: float
    outcome: str


class _OwnerState:
    __slots__ = (
        "dominant", "held", "last_refill", "limits", "owner", "pending", "queues", "spent", "tokens", "usage",
    )

    def __init__(self, owner: Owner, now: float) -> None:
        self.owner = owner
        self.limits = owner.limits()
        self.held = [0.0] * HELD
        self.dominant = 0.0
        self.usage = 0.0
        self.queues: dict[int, deque[_Pending]] = {}
        self.pending = 0
        self.tokens = owner.burst
        self.last_refill = now
        self.spent: deque[tuple[float, float]] = deque()


class ArbitrationEngine:
    """Decides requests for resources; see the module docstring for the stages.

    ``clock`` gives the engine's time (seconds). ``audit`` receives every input and decision
    (an in-memory :class:`AuditLog` by default; pass ``None`` to keep none).
    """

    def __init__(
        self,
        config: ArbitrationConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        audit: AuditLog | bool | None = True,
    ) -> None:
        self.config = config or ArbitrationConfig()
        self._clock = clock
        self.audit: AuditLog | None = AuditLog() if audit is True else (audit or None)
        self._cap = self.config.capacity.as_tuple()
        self._owners: dict[str, _OwnerState] = {}
        self._pending: dict[str, _Pending] = {}
        self._grants: dict[str, _Grant] = {}
        self._active: dict[int, dict[str, _Pending]] = {int(c): {} for c in PriorityClass}  # heads
        # per class, the heads by submission time (stale entries skipped): how far aging can lift a class
        self._oldest: dict[int, list[tuple[float, int, str]]] = {int(c): [] for c in PriorityClass}
        self._class_counts = [0] * len(PriorityClass)
        self._deadlines: list[tuple[float, int, str]] = []
        self._used = [0.0] * HELD
        self._models: dict[str, list[Any]] = {}
        self._spent: deque[tuple[float, float]] = deque()
        self._seq = 0
        self._decision_seq = 0
        self._mean_hold = 1.0
        self._decayed_at = self._clock()
        self._listeners: list[Callable[[Decision], None]] = []
        self._watchers: dict[str, Callable[[Decision], None]] = {}
        self.finished: deque[Finished] = deque()
        self._fcfs = self.config.policy == "fcfs"
        if self.audit is not None:
            self.audit.append("config", self._clock(), config=self.config.to_dict())
        for owner in self.config.owners:
            self.add_owner(owner)

    # -- owners and listeners ------------------------------------------------------------------

    def add_owner(self, owner: Owner) -> None:
        """Register (or update) an owner; requests from unknown owners are denied."""
        now = self._clock()
        state = self._owners.get(owner.id)
        if state is None:
            self._owners[owner.id] = _OwnerState(owner, now)
        else:
            state.owner = owner
            state.limits = owner.limits()
            state.tokens = min(state.tokens, owner.burst)
            self._refresh_dominant(state)
        if self.audit is not None:
            self.audit.append("owner", now, owner=_owner_dict(owner))

    def now(self) -> float:
        """The engine's clock now."""
        return self._clock()

    def owners(self) -> list[str]:
        """Known owner ids, sorted."""
        return sorted(self._owners)

    def add_listener(self, listener: Callable[[Decision], None]) -> None:
        """Call ``listener(decision)`` for every decision (including later grants and preemptions)."""
        self._listeners.append(listener)

    def watch(self, request_id: str, callback: Callable[[Decision], None] | None) -> None:
        """Call ``callback`` with the next decisions about ``request_id`` (None stops)."""
        if callback is None:
            self._watchers.pop(request_id, None)
        else:
            self._watchers[request_id] = callback

    # -- inputs --------------------------------------------------------------------------------

    def submit(self, request: Request) -> Decision:
        """Decide ``request`` now: granted, denied (with a reason) or deferred (with a wait estimate).

        Other requests may be granted in the same pass; every decision reaches the listeners
        and the audit log. The returned decision is the one about ``request``.
        """
        if not isinstance(request, Request):
            raise ValidationError(
                f"submit() takes a Request, got {type(request).__name__}", code="arbitration.request.invalid"
            )
        now = self._clock()
        self._seq += 1
        rid = request.id or f"r{self._seq}"
        if rid in self._pending or rid in self._grants:
            raise ValidationError(
                f"request id {rid!r} is already pending or granted",
                code="arbitration.request.duplicate",
                context={"request": rid},
            )
        if self.audit is not None:
            self.audit.append("submit", now, request={**request.to_dict(), "id": rid})
        p = _Pending(request, rid, self._seq, now)
        denial = self._admission(p, now)
        if denial is not None:
            return denial
        self._enqueue(p)
        decisions = self._schedule(now)
        for d in decisions:
            if d.request == rid:
                return d
        return self._deferred(p, now)

    def release(self, request_id: str, *, spent: float | None = None) -> list[Decision]:
        """Give back a grant (``spent``: the money actually spent, if less than granted).

        Returns the decisions this made possible (grants for waiting requests).
        """
        grant = self._grants.pop(request_id, None)
        if grant is None:
            raise NotFoundError(
                f"no grant {request_id!r} to release", code="arbitration.grant.unknown", context={"request": request_id}
            )
        now = self._clock()
        if self.audit is not None:
            self.audit.append("release", now, request=request_id, spent=spent)
        state = self._owners[grant.owner]
        model = grant.request.model
        for i in range(HELD):
            state.held[i] -= grant.demand[i]
            if model is None or i == 2:
                self._used[i] -= grant.added[i]
        if model is not None:
            entry = self._models[model]
            entry[0] -= 1
            if entry[0] <= 0:
                for i, amount in enumerate(entry[1]):
                    self._used[i] -= amount
                del self._models[model]
        if spent is not None and spent < grant.demand[_MONEY]:
            refund = grant.demand[_MONEY] - max(0.0, spent)
            state.spent.append((now, -refund))
            self._spent.append((now, -refund))
        self._refresh_dominant(state)
        held_for = now - grant.granted
        self._mean_hold = 0.9 * self._mean_hold + 0.1 * max(held_for, 0.0)
        self._finish(grant.id, grant.owner, grant.priority, grant.submitted, grant.granted, now, grant.demand, "released")
        return self._schedule(now)

    def cancel(self, request_id: str) -> Decision | None:
        """Withdraw a pending request (denied: cancelled); None if it is not pending."""
        p = self._pending.get(request_id)
        if p is None:
            return None
        now = self._clock()
        if self.audit is not None:
            self.audit.append("cancel", now, request=request_id)
        self._dequeue(p)
        return self._deny(p, now, DenialReason.CANCELLED, "cancel", "withdrawn by its caller")

    def tick(self) -> list[Decision]:
        """Re-decide pending requests now (time passed: deadlines, aging, token refill)."""
        now = self._clock()
        if self.audit is not None:
            self.audit.append("tick", now)
        return self._schedule(now)

    # -- stage 1: admission --------------------------------------------------------------------

    def _admission(self, p: _Pending, now: float) -> Decision | None:
        state = self._owners.get(p.owner)
        if state is None:
            return self._deny(
                p, now, DenialReason.UNKNOWN_OWNER, "owner", f"owner {p.owner!r} is not registered"
            )
        demand = p.demand
        for i in range(HELD):
            if self._cap[i] and demand[i] > self._cap[i]:
                return self._deny(
                    p, now, DenialReason.EXCEEDS_CAPACITY, "capacity",
                    f"{RESOURCES[i]} {demand[i]:g} is more than the whole capacity {self._cap[i]:g}",
                )
        for i, limit in enumerate(state.limits):
            if demand[i] > limit:
                what = "a quota of zero" if limit == 0 else f"the quota {limit:g}"
                return self._deny(
                    p, now, DenialReason.QUOTA_EXCEEDED, "quota",
                    f"{RESOURCES[i]} {demand[i]:g} is above {what} of owner {p.owner!r}",
                )
        owner = state.owner
        if demand[_CALLS] and owner.calls_per_minute and demand[_CALLS] > owner.burst:
            return self._deny(
                p, now, DenialReason.RATE_LIMITED, "rate",
                f"{demand[_CALLS]:g} calls is more than the burst {owner.burst:g} of owner {p.owner!r}",
            )
        if demand[_MONEY] and self.config.cost_limit and demand[_MONEY] > self.config.cost_limit:
            return self._deny(
                p, now, DenialReason.COST_LIMIT, "cost",
                f"money {demand[_MONEY]:g} is more than the cost limit {self.config.cost_limit:g} per window",
                conflicts=(Conflict(ConflictKind.COST_LIMIT, "above the global cost limit"),),
            )
        if p.request.deadline is not None and p.request.deadline <= now:
            return self._deny(p, now, DenialReason.DEADLINE_EXPIRED, "deadline", "the deadline has already passed")
        if state.pending >= self.config.max_pending:
            return self._deny(
                p, now, DenialReason.QUEUE_FULL, "queue",
                f"owner {p.owner!r} already has {state.pending} requests waiting (max_pending)",
            )
        return None

    # -- queues --------------------------------------------------------------------------------

    def _enqueue(self, p: _Pending) -> None:
        state = self._owners[p.owner]
        cls = 0 if self._fcfs else int(p.request.priority)
        queue = state.queues.get(cls)
        if queue is None:
            queue = state.queues[cls] = deque()
            self._active[cls][p.owner] = p
            heapq.heappush(self._oldest[cls], (p.submitted, p.seq, p.owner))
        queue.append(p)
        state.pending += 1
        self._class_counts[int(p.request.priority)] += 1
        self._pending[p.id] = p
        if p.request.deadline is not None:
            heapq.heappush(self._deadlines, (p.request.deadline, p.seq, p.id))

    def _dequeue(self, p: _Pending) -> None:
        state = self._owners[p.owner]
        cls = 0 if self._fcfs else int(p.request.priority)
        queue = state.queues[cls]
        if queue and queue[0] is p:
            queue.popleft()
        else:
            queue.remove(p)
        if not queue:
            del state.queues[cls]
            del self._active[cls][p.owner]
        elif self._active[cls][p.owner] is not queue[0]:
            head = self._active[cls][p.owner] = queue[0]
            heapq.heappush(self._oldest[cls], (head.submitted, head.seq, head.owner))
        state.pending -= 1
        self._class_counts[int(p.request.priority)] -= 1
        del self._pending[p.id]

    # -- stages 2-5: the scheduling pass --------------------------------------------------------

    def _refill(self, state: _OwnerState, now: float) -> None:
        rate = state.owner.calls_per_minute
        if rate:
            state.tokens = min(state.owner.burst, state.tokens + (now - state.last_refill) * rate / 60.0)
        state.last_refill = now

    def _window_spent(self, spent: deque[tuple[float, float]], now: float) -> float:
        horizon = now - self.config.window
        while spent and spent[0][0] <= horizon:
            spent.popleft()
        return sum(amount for _, amount in spent)

    def _blocked(self, state: _OwnerState, p: _Pending, now: float) -> str | None:
        """Why the owner's head request cannot go now for owner-level reasons, or None."""
        demand = p.demand
        limits = state.limits
        held = state.held
        for i in range(HELD):
            if held[i] + demand[i] > limits[i]:
                return "quota"
        if demand[_CALLS] and state.owner.calls_per_minute:
            self._refill(state, now)
            if state.tokens < demand[_CALLS]:
                return "rate"
        if demand[_MONEY]:
            limit = limits[_MONEY]
            if limit != math.inf and self._window_spent(state.spent, now) + demand[_MONEY] > limit:
                return "cost"
            if self.config.cost_limit and self._window_spent(self._spent, now) + demand[_MONEY] > self.config.cost_limit:
                return "cost"
        return None

    def _effective(self, cls: int, p: _Pending, now: float) -> int:
        aging = self.config.aging
        if self._fcfs or not aging or cls >= _MAX_AGED:
            return cls
        return min(_MAX_AGED, cls + int((now - p.submitted) // aging))

    def _pick(self, now: float) -> _Pending | None:
        """The next request by (effective class desc, owner's weighted dominant share, arrival).

        One linear scan over the heads of the (owner, class) queues; the hot loop of the
        engine, so it compares plain floats instead of building keys.
        """
        fcfs = self._fcfs
        aging = 0.0 if fcfs else self.config.aging
        top = int(_MAX_AGED)
        owners = self._owners
        best: _Pending | None = None
        best_eff = -1
        best_share = 0.0
        best_usage = 0.0
        best_seq = 0
        for cls in range(len(PriorityClass) - 1, -1, -1):
            active = self._active[cls]
            if not active:
                continue
            if best is not None and best_eff > self._reach(cls, now, aging, top):
                continue
            for owner_id, head in active.items():
                if fcfs:
                    if best is not None and head.seq >= best_seq:
                        continue
                    eff = 0
                    share = usage = 0.0
                else:
                    eff = cls
                    if aging and cls < top:
                        eff = cls + int((now - head.submitted) // aging)
                        if eff > top:
                            eff = top
                    state = owners[owner_id]
                    share = state.dominant
                    usage = state.usage
                    if best is not None and (
                        eff < best_eff
                        or (
                            eff == best_eff
                            and (
                                share > best_share
                                or (
                                    share == best_share
                                    and (usage > best_usage or (usage == best_usage and head.seq >= best_seq))
                                )
                            )
                        )
                    ):
                        continue
                if self._blocked(owners[owner_id], head, now) is not None:
                    continue
                best, best_eff, best_share, best_usage, best_seq = head, eff, share, usage, head.seq
        return best

    def _reach(self, cls: int, now: float, aging: float, top: int) -> int:
        """The highest effective class a waiting request of base class ``cls`` has reached."""
        if cls >= top or not aging:
            return cls
        heap = self._oldest[cls]
        heads = self._active[cls]
        while heap:
            submitted, seq, owner = heap[0]
            head = heads.get(owner)
            if head is not None and head.seq == seq:
                return min(top, cls + int((now - submitted) // aging))
            heapq.heappop(heap)
        return cls

    def _added(self, p: _Pending) -> tuple[float, ...]:
        demand = p.demand
        model = p.request.model
        if model is not None and model in self._models:
            return (0.0, 0.0, demand[2], 0.0)
        return demand[:HELD]

    def _fits(self, added: tuple[float, ...], freed: list[float] | None = None) -> bool:
        cap = self._cap
        used = self._used
        for i in range(HELD):
            if cap[i] and used[i] + added[i] - (freed[i] if freed else 0.0) > cap[i] + 1e-9:
                return False
        return True

    def _decay_usage(self, now: float) -> None:
        half_life = self.config.usage_half_life
        if half_life and now > self._decayed_at:
            factor = 0.5 ** ((now - self._decayed_at) / half_life)
            for state in self._owners.values():
                if state.usage:
                    state.usage *= factor
        self._decayed_at = max(self._decayed_at, now)

    def _schedule(self, now: float) -> list[Decision]:
        decisions: list[Decision] = []
        self._decay_usage(now)
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, rid = heapq.heappop(self._deadlines)
            p = self._pending.get(rid)
            if p is not None:
                self._dequeue(p)
                decisions.append(
                    self._deny(p, now, DenialReason.DEADLINE_EXPIRED, "deadline", "the deadline passed while it waited")
                )
        while self._pending:
            p = self._pick(now)
            if p is None:
                break
            added = self._added(p)
            if not self._fits(added):
                if self.config.preemption and not self._fcfs and p.request.priority > PriorityClass.BACKGROUND:
                    victims = self._preempt_for(p, added, now)
                    decisions.extend(victims)
                break
            self._dequeue(p)
            decisions.append(self._grant(p, added, now))
        return decisions

    def _preempt_for(self, p: _Pending, added: tuple[float, ...], now: float) -> list[Decision]:
        freed = [0.0] * HELD
        for g in self._grants.values():
            if g.preempted:
                for i in range(HELD):
                    freed[i] += g.added[i]
        if self._fits(added, freed):
            return []  # enough is already on its way back
        chosen: list[_Grant] = []
        for g in sorted(self._grants.values(), key=lambda g: -g.seq):
            if g.preempted or g.priority is not PriorityClass.BACKGROUND:
                continue
            chosen.append(g)
            for i in range(HELD):
                freed[i] += g.added[i]
            if self._fits(added, freed):
                break
        else:
            return []
        out = []
        for g in chosen:
            g.preempted = True
            out.append(
                self._decide(
                    g.id, g.owner, now, Outcome.DENIED, "preemption",
                    f"taken back for {p.id} ({p.request.priority.name.lower()}, owner {p.owner!r})",
                    reason=DenialReason.PREEMPTED,
                )
            )
        return out

    def _grant(self, p: _Pending, added: tuple[float, ...], now: float) -> Decision:
        state = self._owners[p.owner]
        demand = p.demand
        conflicts = self._conflicts(p, added)
        for i in range(HELD):
            state.held[i] += demand[i]
            self._used[i] += added[i]
        model = p.request.model
        if model is not None:
            entry = self._models.get(model)
            if entry is None:
                self._models[model] = [1, (added[0], added[1], 0.0, added[3])]
            else:
                entry[0] += 1
        if demand[_CALLS] and state.owner.calls_per_minute:
            state.tokens -= demand[_CALLS]
        if demand[_MONEY]:
            state.spent.append((now, demand[_MONEY]))
            self._spent.append((now, demand[_MONEY]))
        self._refresh_dominant(state)
        if self.config.usage_half_life:
            state.usage += max(
                (demand[i] / self._cap[i] for i in range(HELD) if self._cap[i]), default=0.0
            ) / state.owner.weight
        self._grants[p.id] = _Grant(p, now, added)
        waited = now - p.submitted
        if self._fcfs:
            why = "first come, first served"
        else:
            eff = self._effective(int(p.request.priority), p, now)
            aged = f" (aged from {p.request.priority.name.lower()})" if eff != int(p.request.priority) else ""
            why = (
                f"class {PriorityClass(eff).name.lower()}{aged}; owner {p.owner!r} dominant share "
                f"{state.dominant:.3f} after the grant"
            )
        return self._decide(
            p.id, p.owner, now, Outcome.GRANTED, "drf" if not self._fcfs else "fcfs",
            f"{why}; waited {waited:.3f} s", conflicts=conflicts,
        )

    def _refresh_dominant(self, state: _OwnerState) -> None:
        share = 0.0
        for i in range(HELD):
            if self._cap[i]:
                share = max(share, state.held[i] / self._cap[i])
        state.dominant = share / state.owner.weight

    # -- decisions -----------------------------------------------------------------------------

    def _decide(
        self,
        rid: str,
        owner: str,
        now: float,
        outcome: Outcome,
        stage: str,
        rationale: str,
        *,
        reason: DenialReason | None = None,
        wait: float | None = None,
        position: int | None = None,
        conflicts: tuple[Conflict, ...] = (),
    ) -> Decision:
        self._decision_seq += 1
        decision = Decision(
            seq=self._decision_seq,
            at=now,
            request=rid,
            owner=owner,
            outcome=outcome,
            stage=stage,
            rationale=rationale,
            reason=reason,
            wait=wait,
            position=position,
            conflicts=conflicts,
        )
        if self.audit is not None:
            self.audit.append("decision", now, decision=decision.to_dict())
        for listener in self._listeners:
            listener(decision)
        watcher = self._watchers.get(rid)
        if watcher is not None:
            watcher(decision)
        return decision

    def _deny(
        self,
        p: _Pending,
        now: float,
        reason: DenialReason,
        stage: str,
        rationale: str,
        *,
        conflicts: tuple[Conflict, ...] = (),
    ) -> Decision:
        state = self._owners.get(p.owner)
        if state is not None:
            self._finish(p.id, p.owner, p.request.priority, p.submitted, None, now, p.demand, "denied")
        return self._decide(p.id, p.owner, now, Outcome.DENIED, stage, rationale, reason=reason, conflicts=conflicts)

    def _deferred(self, p: _Pending, now: float) -> Decision:
        state = self._owners[p.owner]
        blocked = self._blocked(state, p, now)
        added = self._added(p)
        conflicts = self._conflicts(p, added)
        if blocked == "rate":
            rate = state.owner.calls_per_minute / 60.0
            wait = (p.demand[_CALLS] - state.tokens) / rate
            rationale = f"owner {p.owner!r} has {state.tokens:.1f} call tokens, needs {p.demand[_CALLS]:g}"
            stage = "rate"
        else:
            cls = int(p.request.priority)
            ahead = sum(self._class_counts[cls:]) - 1 if not self._fcfs else len(self._pending) - 1
            running = max(1, len(self._grants))
            wait = self._mean_hold * (1 + ahead) / running
            if blocked == "quota":
                stage, rationale = "quota", f"owner {p.owner!r} holds too much of its quota to add this"
            elif blocked == "cost":
                stage, rationale = "cost", "the money spent in this window leaves too little"
            elif not self._fits(added):
                stage = "capacity"
                rationale = f"does not fit now ({self._usage_text()}); {ahead} request(s) ahead"
            else:
                stage = "priority"
                rationale = f"{ahead} request(s) of this class or higher are ahead"
        position = sum(self._class_counts[int(p.request.priority) + 1 :]) if not self._fcfs else len(self._pending) - 1
        return self._decide(
            p.id, p.owner, now, Outcome.DEFERRED, stage, rationale,
            wait=round(wait, 6), position=position, conflicts=conflicts,
        )

    def _usage_text(self) -> str:
        parts = [
            f"{RESOURCES[i]} {_amount(self._used[i])}/{_amount(self._cap[i])}" for i in range(HELD) if self._cap[i]
        ]
        return ", ".join(parts) or "no capacity limits"

    # -- conflicts -----------------------------------------------------------------------------

    def _conflicts(self, p: _Pending, added: tuple[float, ...]) -> tuple[Conflict, ...]:
        out: list[Conflict] = []
        model = p.request.model
        if model is not None and model in self._models:
            out.append(Conflict(ConflictKind.SAME_MODEL, f"model {model!r} is held by {self._models[model][0]} grant(s)"))
        for i, name in ((0, "memory"), (1, "gpu_memory")):
            if self._cap[i] and (self._used[i] + added[i]) / self._cap[i] > self.config.memory_pressure:
                out.append(
                    Conflict(
                        ConflictKind.MEMORY_PRESSURE,
                        f"{name} would be at {(self._used[i] + added[i]) / self._cap[i]:.0%} of capacity",
                    )
                )
        if self._cap[2] and (self._used[2] + added[2]) / self._cap[2] > self.config.cpu_saturation:
            out.append(
                Conflict(
                    ConflictKind.CPU_SATURATION,
                    f"cpu slots would be at {(self._used[2] + added[2]) / self._cap[2]:.0%} of capacity",
                )
            )
        money = p.demand[_MONEY]
        if money:
            state = self._owners[p.owner]
            now = self._clock()
            limit = state.limits[_MONEY]
            if limit != math.inf and self._window_spent(state.spent, now) + money > limit:
                out.append(Conflict(ConflictKind.COST_LIMIT, f"owner {p.owner!r} would pass its money quota {limit:g}"))
            elif self.config.cost_limit and self._window_spent(self._spent, now) + money > self.config.cost_limit:
                out.append(Conflict(ConflictKind.COST_LIMIT, f"would pass the cost limit {self.config.cost_limit:g}"))
        return tuple(out)

    def would_conflict(self, request: Request) -> list[Conflict]:
        """The conflicts ``request`` would meet if it were granted now (nothing changes)."""
        if request.owner not in self._owners:
            return []
        p = _Pending(request, request.id or "?", 0, self._clock())
        return list(self._conflicts(p, self._added(p)))

    def detect(self) -> dict[str, list[Conflict]]:
        """Conflicts of every pending request, by request id (only those with any)."""
        out: dict[str, list[Conflict]] = {}
        for rid, p in self._pending.items():
            found = self._conflicts(p, self._added(p))
            if found:
                out[rid] = list(found)
        return out

    # -- bookkeeping and views -----------------------------------------------------------------

    def _finish(
        self,
        rid: str,
        owner: str,
        priority: PriorityClass,
        submitted: float,
        granted: float | None,
        ended: float,
        demand: tuple[float, ...],
        outcome: str,
    ) -> None:
        dominant = max((demand[i] / self._cap[i] for i in range(HELD) if self._cap[i]), default=0.0)
        self.finished.append(Finished(rid, owner, priority, submitted, granted, ended, dominant, outcome))
        horizon = ended - self.config.window
        while self.finished and self.finished[0].ended < horizon:
            self.finished.popleft()

    def grants(self) -> list[str]:
        """Ids of the grants held now."""
        return list(self._grants)

    def pending(self) -> list[str]:
        """Ids of the requests waiting now."""
        return list(self._pending)

    def is_preempted(self, request_id: str) -> bool:
        """True once a grant has been taken back (its holder should stop and release it)."""
        grant = self._grants.get(request_id)
        return grant is not None and grant.preempted

    def running(self, now: float | None = None) -> list[Finished]:
        """The grants held now, as records ending at ``now`` (``outcome`` is ``"running"``)."""
        out = []
        now = self._clock() if now is None else now
        for g in self._grants.values():
            dominant = max((g.demand[i] / self._cap[i] for i in range(HELD) if self._cap[i]), default=0.0)
            out.append(Finished(g.id, g.owner, g.priority, g.submitted, g.granted, now, dominant, "running"))
        return out

    def waiting(self) -> list[tuple[str, str, PriorityClass, float]]:
        """The requests waiting now: (id, owner, class, submitted at)."""
        return [(p.id, p.owner, p.request.priority, p.submitted) for p in self._pending.values()]

    def owner_weights(self) -> dict[str, float]:
        """Each owner's weight."""
        return {k: s.owner.weight for k, s in self._owners.items()}

    def status(self) -> dict[str, Any]:
        """Capacity, use, queues and owners (JSON-safe)."""
        return {
            "policy": self.config.policy,
            "preemption": self.config.preemption,
            "capacity": {RESOURCES[i]: self._cap[i] or None for i in range(HELD)},
            "used": {RESOURCES[i]: round(self._used[i], 6) for i in range(HELD)},
            "grants": len(self._grants),
            "pending": len(self._pending),
            "pending_by_class": {c.name.lower(): self._class_counts[int(c)] for c in reversed(PriorityClass)},
            "owners": {
                oid: {
                    "kind": s.owner.kind,
                    "weight": s.owner.weight,
                    "held": {RESOURCES[i]: round(s.held[i], 6) for i in range(HELD) if s.held[i]},
                    "dominant_share": round(s.dominant * s.owner.weight, 6),
                    "pending": s.pending,
                    "tokens": round(s.tokens, 3) if s.owner.calls_per_minute else None,
                }
                for oid, s in sorted(self._owners.items())
            },
        }


def _amount(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e6 else f"{value:g}"


def _owner_dict(owner: Owner) -> dict[str, Any]:
    return {
        "id": owner.id,
        "kind": owner.kind,
        "weight": owner.weight,
        "quota": owner.quota.to_dict(),
        "zero_quota": sorted(owner.zero_quota),
        "calls_per_minute": owner.calls_per_minute,
        "burst": owner.burst,
    }


def owner_from_dict(data: Mapping[str, Any]) -> Owner:
    """The inverse of the audit log's ``owner`` record."""
    return Owner(
        id=data["id"],
        kind=data.get("kind", "user"),
        weight=float(data.get("weight", 1.0)),
        quota=Resources.of(data.get("quota", {})),
        zero_quota=frozenset(data.get("zero_quota", ())),
        calls_per_minute=float(data.get("calls_per_minute", 0.0)),
        burst=float(data.get("burst", 0.0)),
    )


def config_from_dict(data: Mapping[str, Any]) -> ArbitrationConfig:
    """The inverse of :meth:`ArbitrationConfig.to_dict` (owners come from ``owner`` records)."""
    return ArbitrationConfig(
        capacity=Resources.of(data.get("capacity", {})),
        policy=data.get("policy", "staged"),
        preemption=bool(data.get("preemption", False)),
        aging=float(data.get("aging", 60.0)),
        max_pending=int(data.get("max_pending", 1000)),
        memory_pressure=float(data.get("memory_pressure", 0.9)),
        cpu_saturation=float(data.get("cpu_saturation", 0.9)),
        cost_limit=float(data.get("cost_limit", 0.0)),
        window=float(data.get("window", 3600.0)),
        usage_half_life=float(data.get("usage_half_life", 300.0)),
    )
