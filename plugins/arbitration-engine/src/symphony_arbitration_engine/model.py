"""What arbitration talks about: resources, priority classes, owners, requests and decisions."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

import attrs

from symphony.commons.errors import ValidationError

__all__ = [
    "RESOURCES",
    "Conflict",
    "ConflictKind",
    "Decision",
    "DenialReason",
    "Outcome",
    "Owner",
    "PriorityClass",
    "Request",
    "Resources",
]

RESOURCES = ("memory", "gpu_memory", "cpu_slots", "model_instances", "calls_per_minute", "money")
"""Every resource a request may ask for. The first four are *held* (given back on release) and
shared fairly by DRF; ``calls_per_minute`` is a rate (a token bucket per owner: the request
asks for that many calls); ``money`` is spent (limited per owner and globally per window)."""

HELD = 4


def _bad(message: str, **context: Any) -> ValidationError:
    return ValidationError(message, code="arbitration.request.invalid", context=context)


def _plain_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
        raise _bad(f"{field} must be a finite number, got {value!r}", field=field)
    return float(value)


@attrs.frozen
class Resources:
    """An amount of each resource; 0 means none (or, for a capacity or quota, see its owner)."""

    memory: float = 0.0
    gpu_memory: float = 0.0
    cpu_slots: float = 0.0
    model_instances: float = 0.0
    calls_per_minute: float = 0.0
    money: float = 0.0

    @classmethod
    def of(cls, value: Resources | Mapping[str, Any] | None, *, what: str = "demand") -> Resources:
        """From a mapping of resource names; ValidationError naming an unknown or negative entry."""
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        if not isinstance(value, Mapping):
            raise _bad(f"{what} must be a table of resources, got {type(value).__name__}", field=what)
        amounts: dict[str, float] = {}
        for name, amount in value.items():
            if name not in RESOURCES:
                raise _bad(
                    f"unknown resource {name!r} in {what}", field=f"{what}.{name}", known=list(RESOURCES)
                )
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise _bad(f"{what}.{name} must be a number, got {amount!r}", field=f"{what}.{name}")
            number = float(amount)
            if math.isnan(number) or number < 0 or math.isinf(number):
                raise _bad(f"{what}.{name} must be a finite number >= 0, got {amount!r}", field=f"{what}.{name}")
            amounts[str(name)] = number
        return cls(**amounts)

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        """The amounts in :data:`RESOURCES` order."""
        return (self.memory, self.gpu_memory, self.cpu_slots, self.model_instances, self.calls_per_minute, self.money)

    def to_dict(self) -> dict[str, float]:
        """The non-zero amounts by name."""
        return {name: v for name, v in zip(RESOURCES, self.as_tuple(), strict=True) if v}


class PriorityClass(enum.IntEnum):
    """Priority classes, lowest first (the value is the rank used for aging)."""

    BACKGROUND = 0
    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: PriorityClass | str) -> PriorityClass:
        """From a class or its name (``"high"``); ValidationError otherwise."""
        if isinstance(value, PriorityClass):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        raise _bad(
            f"unknown priority class {value!r}",
            field="priority",
            known=[c.name.lower() for c in reversed(cls)],
        )


@attrs.frozen
class Owner:
    """Who asks: a user, a run or a plugin, with its weight, hard quota and rate limit.

    ``quota`` caps what the owner may hold at once (a resource left at 0 is unlimited unless
    it is listed in ``zero_quota``); ``money`` in the quota is the spend allowed per window.
    ``calls_per_minute`` and ``burst`` define the owner's token bucket (0: no limit).
    """

    id: str
    kind: str = "user"
    weight: float = 1.0
    quota: Resources = attrs.field(factory=Resources)
    zero_quota: frozenset[str] = frozenset()
    calls_per_minute: float = 0.0
    burst: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise _bad(f"owner id must be a non-empty string, got {self.id!r}", field="owner")
        if self.kind not in ("user", "run", "plugin"):
            raise _bad(f"owner kind must be user, run or plugin, got {self.kind!r}", field="kind")
        if not (isinstance(self.weight, int | float) and 0 < self.weight < math.inf):
            raise _bad(f"owner weight must be > 0, got {self.weight!r}", field="weight")
        if self.calls_per_minute < 0 or self.burst < 0:
            raise _bad("calls_per_minute and burst must be >= 0", field="calls_per_minute")
        unknown = set(self.zero_quota) - set(RESOURCES)
        if unknown:
            raise _bad(f"unknown resource {sorted(unknown)[0]!r} in zero_quota", field="zero_quota")

    @classmethod
    def from_mapping(cls, owner_id: str, table: Mapping[str, Any]) -> Owner:
        """From a config table: ``kind``, ``weight``, ``quota = {...}``, ``calls_per_minute``, ``burst``.

        A quota entry of 0 means *nothing allowed* (it goes to ``zero_quota``).
        """
        where = f"owners.{owner_id}"
        if not isinstance(table, Mapping):
            raise _bad(f"{where} must be a table, got {type(table).__name__}", field=where)
        quota_table = table.get("quota", {}) or {}
        quota = Resources.of(quota_table, what=f"{where}.quota")
        zero = frozenset(name for name, value in dict(quota_table).items() if value == 0)
        rate = _plain_number(table.get("calls_per_minute", 0.0), f"{where}.calls_per_minute")
        return cls(
            id=owner_id,
            kind=str(table.get("kind", "user")),
            weight=_plain_number(table.get("weight", 1.0), f"{where}.weight"),
            quota=quota,
            zero_quota=zero,
            calls_per_minute=rate,
            burst=_plain_number(table.get("burst", rate), f"{where}.burst"),
        )

    def limits(self) -> tuple[float, ...]:
        """The quota per resource, ``inf`` where unlimited, 0 where forbidden."""
        return tuple(
            0.0 if name in self.zero_quota else (v if v > 0 else math.inf)
            for name, v in zip(RESOURCES, self.quota.as_tuple(), strict=True)
        )


@attrs.frozen
class Request:
    """A demand for resources by an owner, in a priority class, optionally before a deadline.

    ``model`` names the model the request will use: requests for the same model share its
    memory, GPU memory and instance (accounted once while any of them holds it).
    ``deadline`` is on the engine's clock; past it a pending request is denied.
    """

    owner: str
    demand: Resources = attrs.field(factory=Resources)
    priority: PriorityClass = PriorityClass.NORMAL
    deadline: float | None = None
    model: str | None = None
    id: str | None = None

    @classmethod
    def make(
        cls,
        owner: str,
        demand: Resources | Mapping[str, Any] | None = None,
        *,
        priority: PriorityClass | str = PriorityClass.NORMAL,
        deadline: float | None = None,
        model: str | None = None,
        id: str | None = None,
    ) -> Request:
        """Build and check a request from plain values; ValidationError names what is wrong."""
        if not isinstance(owner, str) or not owner:
            raise _bad(f"owner must be a non-empty string, got {owner!r}", field="owner")
        if deadline is not None and (
            isinstance(deadline, bool) or not isinstance(deadline, int | float) or math.isnan(deadline)
        ):
            raise _bad(f"deadline must be a number on the engine's clock, got {deadline!r}", field="deadline")
        if model is not None and (not isinstance(model, str) or not model):
            raise _bad(f"model must be a non-empty string, got {model!r}", field="model")
        if id is not None and (not isinstance(id, str) or not id):
            raise _bad(f"request id must be a non-empty string, got {id!r}", field="id")
        return cls(
            owner=owner,
            demand=Resources.of(demand),
            priority=PriorityClass.parse(priority),
            deadline=None if deadline is None else float(deadline),
            model=model,
            id=id,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form (the audit log records requests this way)."""
        return {
            "id": self.id,
            "owner": self.owner,
            "demand": self.demand.to_dict(),
            "priority": self.priority.name.lower(),
            "deadline": self.deadline,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Request:
        """The inverse of :meth:`to_dict` (checked like :meth:`make`)."""
        if not isinstance(data, Mapping):
            raise _bad("a request must be a table", field="request")
        return cls.make(
            data.get("owner"),  # type: ignore[arg-type]
            data.get("demand"),
            priority=data.get("priority", "normal"),
            deadline=data.get("deadline"),
            model=data.get("model"),
            id=data.get("id"),
        )


class Outcome(enum.Enum):
    """What a decision says."""

    GRANTED = "granted"
    DENIED = "denied"
    DEFERRED = "deferred"


class DenialReason(enum.Enum):
    """Why a request was denied (a fixed set)."""

    UNKNOWN_OWNER = "unknown-owner"
    EXCEEDS_CAPACITY = "exceeds-capacity"
    QUOTA_EXCEEDED = "quota-exceeded"
    RATE_LIMITED = "rate-limited"
    COST_LIMIT = "cost-limit"
    DEADLINE_EXPIRED = "deadline-expired"
    QUEUE_FULL = "queue-full"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"


class ConflictKind(enum.Enum):
    """The kinds of resource conflict the engine detects and names."""

    SAME_MODEL = "same-model"
    MEMORY_PRESSURE = "memory-pressure"
    CPU_SATURATION = "cpu-saturation"
    COST_LIMIT = "cost-limit"


@attrs.frozen
class Conflict:
    """One detected conflict and what it is about."""

    kind: ConflictKind
    detail: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-safe form."""
        return {"kind": self.kind.value, "detail": self.detail}


@attrs.frozen
class Decision:
    """The engine's answer about one request, with its rationale.

    ``stage`` names the stage that decided (owner, capacity, quota, priority, drf, rate, cost,
    deadline, queue, preemption, release); ``wait`` is the estimated wait of a deferred request
    (seconds); ``preempted`` lists grants taken back to make room for this one.
    """

    seq: int
    at: float
    request: str
    owner: str
    outcome: Outcome
    stage: str
    rationale: str
    reason: DenialReason | None = None
    wait: float | None = None
    position: int | None = None
    conflicts: tuple[Conflict, ...] = ()
    preempted: tuple[str, ...] = ()

    @property
    def granted(self) -> bool:
        """True for a grant."""
        return self.outcome is Outcome.GRANTED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form (what the audit log records)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "request": self.request,
            "owner": self.owner,
            "outcome": self.outcome.value,
            "stage": self.stage,
            "reason": None if self.reason is None else self.reason.value,
            "wait": self.wait,
            "position": self.position,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "preempted": list(self.preempted),
            "rationale": self.rationale,
        }
