"""The pool: keeps model instances warm, shares them through leases, evicts under budgets.

::

    pool = ModelPool(PoolConfig(memory_budget=8 << 30, count_budget=4))
    pool.register("embed.minilm", MiniLMLoader(), keep_alive="10m", priority=1)
    async with pool.lease("embed.minilm", owner="run-42") as model:
        vectors = model.encode(texts)

A lease of a hot model is a dictionary lookup and a reference count (no await). A lease of a
cold model loads it once, in a worker thread, however many tasks ask at the same time; if the
budgets are full, idle models are evicted (LRU weighted by priority) and, when only leased
models remain, the request waits up to ``acquire_timeout`` and then fails naming the budget.
All state changes happen on the event loop between awaits, so they are atomic.
"""

from __future__ import annotations

import enum
import math
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from symphony.commons.errors import SymphonyError, ValidationError
from symphony.commons.log import get_logger
from symphony_pool_manager import _memory
from symphony_pool_manager.config import PoolConfig, Recovery
from symphony_pool_manager.errors import (
    BudgetExceededError,
    BudgetTimeoutError,
    LoadFailedError,
    LoadTimeoutError,
    ModelUnavailableError,
    UnknownModelError,
)
from symphony_pool_manager.keepalive import format_keep_alive, parse_keep_alive
from symphony_pool_manager.lifecycle import Lifecycle, ModelState, Transition, TransitionReason
from symphony_pool_manager.loader import ModelLoader, ResourceEstimate
from symphony_pool_manager.predictors import Predictor

__all__ = ["HealthStatus", "Lease", "ModelPool"]

_log = get_logger("symphony.pool")
_HOT = ModelState.HOT


class HealthStatus(enum.Enum):
    """The last health verdict of a model."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class _Entry:
    __slots__ = (
        "charge_gpu",
        "charge_memory",
        "consecutive_failures",
        "estimate",
        "expires_at",
        "health",
        "health_failures",
        "healthy",
        "hits",
        "instance",
        "keep_alive",
        "key",
        "last_error",
        "last_used",
        "leases",
        "life",
        "loader",
        "loads",
        "measured_gpu",
        "measured_memory",
        "predicted_by",
        "prewarmed_by",
        "priority",
        "refs",
        "reserving",
        "retry_at",
        "settled",
        "waiters",
    )

    def __init__(self, key: str, loader: ModelLoader, life: Lifecycle, keep_alive: float, priority: int) -> None:
        self.key = key
        self.loader = loader
        self.life = life
        self.keep_alive = keep_alive
        self.priority = priority
        self.instance: Any = None
        self.refs = 0
        self.waiters = 0
        self.reserving = False
        self.last_used = 0.0
        self.expires_at = math.inf
        self.estimate = ResourceEstimate()
        self.charge_memory = 0
        self.charge_gpu = 0
        self.measured_memory: int | None = None
        self.measured_gpu: int | None = None
        self.loads = 0
        self.hits = 0
        self.consecutive_failures = 0
        self.retry_at = 0.0
        self.last_error: SymphonyError | None = None
        self.settled: anyio.Event | None = None
        self.healthy = True
        self.health = HealthStatus.UNKNOWN
        self.health_failures = 0
        self.leases: set[Lease] = set()
        self.predicted_by: str | None = None
        self.prewarmed_by: str | None = None


class Lease:
    """One use of a model: ``async with pool.lease(key) as instance``.

    While a lease is held its model is never evicted, cooled or failed. ``release()`` (or
    leaving the ``async with``) ends it; ending it twice, or after ``pool.release_owner``
    reclaimed it, does nothing.
    """

    __slots__ = ("_active", "_pool", "_timeout", "instance", "keep_alive", "key", "owner", "reclaimed")

    def __init__(
        self, pool: ModelPool, key: str, owner: str | None, keep_alive: float | None, timeout: float | None
    ) -> None:
        self._pool = pool
        self.key = key
        self.owner = owner
        self.keep_alive = keep_alive
        self._timeout = timeout
        self.instance: Any = None
        self._active = False
        self.reclaimed = False

    @property
    def active(self) -> bool:
        """True between acquisition and release."""
        return self._active

    async def __aenter__(self) -> Any:
        pool = self._pool
        entry = pool._entries.get(self.key)
        if entry is not None and entry.life.state is _HOT and entry.healthy:
            pool._take(entry, self, hit=True)
        else:
            await pool._acquire(self)
        return self.instance

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()

    async def release(self) -> None:
        """End the lease; may unload the model (keep-alive ``now``, or it failed a health check)."""
        if not self._active:
            return
        entry = self._pool._give_back(self)
        if entry is not None:
            with anyio.CancelScope(shield=True):
                await self._pool._after_last_release(entry)

    def __repr__(self) -> str:
        return f"<Lease {self.key!r} owner={self.owner!r} active={self._active}>"


class _LoadJob:
    """A load running in a worker thread; if the pool gave up on it, the thread unloads its result."""

    def __init__(self, loader: ModelLoader, measure: bool) -> None:
        self.loader = loader
        self.measure = measure
        self.lock = threading.Lock()
        self.abandoned = False

    def run(self) -> tuple[Any, int | None, int | None]:
        rss0 = _memory.rss_bytes() if self.measure else 0
        gpu0 = _memory.gpu_bytes() if self.measure else None
        instance = self.loader.load()
        mem = max(0, _memory.rss_bytes() - rss0) if self.measure else None
        gpu1 = _memory.gpu_bytes() if gpu0 is not None else None
        gpu = max(0, gpu1 - gpu0) if gpu0 is not None and gpu1 is not None else None
        with self.lock:
            if self.abandoned:
                self.loader.unload(instance)
        return instance, mem, gpu

    def abandon(self) -> None:
        with self.lock:
            self.abandoned = True


class _PredictorStats:
    __slots__ = ("cold_starts_avoided", "correct", "predictions", "prewarmed")

    def __init__(self) -> None:
        self.predictions = 0
        self.correct = 0
        self.prewarmed = 0
        self.cold_starts_avoided = 0


class ModelPool:
    """Model instances, their lifecycle, leases, budgets, keep-alive, health and predictions.

    ``clock`` (monotonic seconds) drives keep-alive, backoff and the lifecycle's times; tests
    inject one and call :meth:`reap`, :meth:`check_health` and :meth:`apply_predictions`
    themselves. :meth:`run` does the same periodically (the plugin starts it in the kernel).
    """

    def __init__(
        self,
        config: PoolConfig | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config is None:
            config = PoolConfig()
        elif not isinstance(config, PoolConfig):
            config = PoolConfig.from_mapping(config)
        self.config = config
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._owners: dict[str, set[Lease]] = {}
        self._listeners: list[Callable[[Transition], None]] = []
        self._predictors: list[Predictor] = []
        self._predictor_stats: dict[str, _PredictorStats] = {}
        self._used = [0, 0, 0]  # memory, gpu memory, count (loaded or loading)
        self._budget_waiters = 0
        self._changed: anyio.Event | None = None
        self._wake: anyio.Event | None = None
        self.metrics: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()
        self._load_times: deque[float] = deque(maxlen=1024)
        self._wait_times: deque[float] = deque(maxlen=1024)

    # -- registration -------------------------------------------------------------------------

    def register(
        self,
        key: str,
        loader: ModelLoader,
        *,
        keep_alive: float | str | None = None,
        priority: int | None = None,
    ) -> None:
        """Make ``key`` leasable; ``keep_alive`` and ``priority`` default to the config's."""
        if not isinstance(key, str) or not key:
            raise ValidationError(
                f"model key must be a non-empty string, got {key!r}", code="pool.key.invalid"
            )
        missing = [m for m in ("estimate", "load", "unload", "health") if not callable(getattr(loader, m, None))]
        if missing:
            raise ValidationError(
                f"loader for {key!r} lacks {', '.join(missing)}",
                code="pool.loader.invalid",
                context={"key": key, "missing": missing},
                hint="a loader has estimate(), load(), unload(instance) and health(instance)",
            )
        old = self._entries.get(key)
        if old is not None and old.life.state is not ModelState.COLD:
            raise ValidationError(
                f"model {key!r} is {old.life.state.value}; unload it before registering it again",
                code="pool.key.busy",
                context={"key": key, "state": old.life.state.value},
            )
        settings = self.config.models.get(key)
        if keep_alive is not None:
            keep = parse_keep_alive(keep_alive)
        elif settings is not None and settings.keep_alive is not None:
            keep = settings.keep_alive
        else:
            keep = self.config.keep_alive
        prio = priority if priority is not None else (settings.priority if settings else 0)
        life = Lifecycle(key, self._clock, history=self.config.history)
        life.listeners.append(self._emit)
        self._entries[key] = _Entry(key, loader, life, keep, int(prio))

    def keys(self) -> list[str]:
        """Registered model keys, sorted."""
        return sorted(self._entries)

    def add_listener(self, listener: Callable[[Transition], None]) -> None:
        """Call ``listener(transition)`` on every state change of every model (errors are logged)."""
        self._listeners.append(listener)

    def add_predictor(self, predictor: Predictor) -> None:
        """Use ``predictor`` in :meth:`apply_predictions`."""
        self._predictors.append(predictor)
        self._predictor_stats.setdefault(predictor.name, _PredictorStats())

    @property
    def predictors(self) -> list[Predictor]:
        """The predictors in use."""
        return list(self._predictors)

    def _emit(self, transition: Transition) -> None:
        for listener in self._listeners:
            try:
                listener(transition)
            except Exception as exc:
                _log.warning("pool listener failed", key=transition.key, error=repr(exc))

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            raise UnknownModelError(
                f"no model registered as {key!r}",
                context={"key": key, "known": sorted(self._entries)[:20]},
                hint="register it with pool.register(key, loader)",
            )
        return entry

    # -- leases -------------------------------------------------------------------------------

    def lease(
        self,
        key: str,
        *,
        owner: str | None = None,
        keep_alive: float | str | None = None,
        timeout: float | None = None,
    ) -> Lease:
        """An async context manager yielding the model's instance, loading it if needed.

        ``owner`` (a run id, a user) lets :meth:`release_owner` reclaim the lease;
        ``keep_alive`` overrides the model's for the idle time after this lease ends;
        ``timeout`` bounds the wait for budget room (default ``acquire_timeout``).
        """
        keep = None if keep_alive is None else parse_keep_alive(keep_alive)
        return Lease(self, key, owner, keep, timeout)

    async def acquire(
        self,
        key: str,
        *,
        owner: str | None = None,
        keep_alive: float | str | None = None,
        timeout: float | None = None,
    ) -> Lease:
        """Take a lease without ``async with``; call ``await lease.release()`` when done."""
        lease = self.lease(key, owner=owner, keep_alive=keep_alive, timeout=timeout)
        await lease.__aenter__()
        return lease

    def _take(self, entry: _Entry, lease: Lease, *, hit: bool) -> None:
        entry.refs += 1
        now = self._clock()
        entry.last_used = now
        entry.expires_at = math.inf
        lease.instance = entry.instance
        lease._active = True
        entry.leases.add(lease)
        if lease.owner is not None:
            owned = self._owners.get(lease.owner)
            if owned is None:
                owned = self._owners[lease.owner] = set()
            owned.add(lease)
        if hit:
            entry.hits += 1
            self.metrics["hits"] += 1
        else:
            self.metrics["misses"] += 1
        if entry.predicted_by is not None:
            self._predictor_stats[entry.predicted_by].correct += 1
            if hit and entry.prewarmed_by is not None:
                self._predictor_stats[entry.prewarmed_by].cold_starts_avoided += 1
            entry.predicted_by = entry.prewarmed_by = None
        for predictor in self._predictors:
            predictor.observe(entry.key, now)

    def _give_back(self, lease: Lease) -> _Entry | None:
        """Drop a lease (no await); return the entry if it now needs an unload."""
        lease._active = False
        entry = self._entries[lease.key]
        entry.leases.discard(lease)
        if lease.owner is not None:
            owned = self._owners.get(lease.owner)
            if owned is not None:
                owned.discard(lease)
                if not owned:
                    del self._owners[lease.owner]
        entry.refs -= 1
        now = self._clock()
        entry.last_used = now
        if self._budget_waiters:
            self._notify()
        if entry.refs:
            return None
        keep = lease.keep_alive if lease.keep_alive is not None else entry.keep_alive
        if keep < 0:
            entry.expires_at = math.inf
        else:
            entry.expires_at = now + keep
            if self._wake is not None:
                self._wake.set()
        if keep == 0 or not entry.healthy:
            return entry
        return None

    async def _after_last_release(self, entry: _Entry) -> None:
        if entry.refs or entry.waiters or entry.life.state is not _HOT:
            return
        if not entry.healthy:
            await self._fail_unhealthy(entry)
        else:
            await self._cool(entry, TransitionReason.USER_REQUEST)

    async def release_owner(self, owner: str) -> int:
        """Reclaim every lease ``owner`` still holds (e.g. a run that ended or crashed)."""
        leases = sorted(self._owners.get(owner, ()), key=lambda lease: lease.key)
        for lease in leases:
            if lease._active:
                lease.reclaimed = True
                await lease.release()
        if leases:
            self.metrics["reclaimed"] += len(leases)
            _log.info("pool reclaimed leases", owner=owner, count=len(leases))
        return len(leases)

    def leases_of(self, owner: str) -> list[str]:
        """Model keys ``owner`` holds leases on (with repeats), sorted."""
        return sorted(lease.key for lease in self._owners.get(owner, ()))

    # -- the slow path: waits, loads, room ------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _wait_changed(self, deadline: float) -> bool:
        """Wait for a release or an unload, until ``deadline`` (anyio time); False on timeout."""
        if self._changed is None:
            self._changed = anyio.Event()
        event = self._changed
        self._budget_waiters += 1
        try:
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await event.wait()
                return True
            return False
        finally:
            self._budget_waiters -= 1

    async def _acquire(self, lease: Lease) -> None:
        timeout = self.config.acquire_timeout if lease._timeout is None else lease._timeout
        started = anyio.current_time()
        deadline = started + timeout
        entry = self._entry(lease.key)
        while True:
            state = entry.life.state
            if state is _HOT and entry.healthy:
                self._take(entry, lease, hit=True)
                break
            if state is ModelState.FAILED:
                if self.config.recovery is Recovery.MANUAL:
                    raise ModelUnavailableError(
                        f"model {entry.key!r} failed and waits for manual recovery",
                        context={"key": entry.key, "error": str(entry.last_error or "")},
                        hint=f"pool.recover({entry.key!r}) or set pool_manager.recovery",
                    )
                entry.life.move(ModelState.COLD, TransitionReason.ERROR_RECOVERY)
                continue
            if state is ModelState.COLD and not entry.reserving:
                await self._load(entry, TransitionReason.USER_REQUEST, deadline=deadline, lease=lease)
                break
            # warming, cooling, or hot but unhealthy: wait for it to settle, then look again
            await self._wait_settled(entry, deadline)
        self._wait_times.append(anyio.current_time() - started)

    async def _wait_settled(self, entry: _Entry, deadline: float) -> None:
        if entry.settled is None:
            entry.settled = anyio.Event()
        event = entry.settled
        entry.waiters += 1
        try:
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await event.wait()
                return
        finally:
            entry.waiters -= 1
        raise BudgetTimeoutError(
            f"model {entry.key!r} stayed {entry.life.state.value} past the acquire timeout",
            code="pool.acquire.timeout",
            context={"key": entry.key, "state": entry.life.state.value},
        )

    def _check_backoff(self, entry: _Entry) -> None:
        wait = entry.retry_at - self._clock()
        if wait > 0:
            raise LoadFailedError(
                f"model {entry.key!r} failed to load {entry.consecutive_failures} time(s); "
                f"backing off for {wait:.1f} s",
                code="pool.load.backoff",
                context={
                    "key": entry.key,
                    "failures": entry.consecutive_failures,
                    "retry_in": round(wait, 3),
                    "last_error": str(entry.last_error or ""),
                },
            )

    def _estimate(self, entry: _Entry) -> ResourceEstimate:
        try:
            est = entry.loader.estimate()
        except SymphonyError:
            raise
        except Exception as exc:
            raise LoadFailedError(
                f"estimate() of model {entry.key!r} raised {type(exc).__name__}: {exc}",
                code="pool.estimate.failed",
                context={"key": entry.key},
            ) from exc
        if not isinstance(est, ResourceEstimate):
            raise ValidationError(
                f"estimate() of model {entry.key!r} returned {type(est).__name__}, not ResourceEstimate",
                code="pool.estimate.invalid",
                context={"key": entry.key},
            )
        return est

    def _budgets(self) -> tuple[tuple[str, int], ...]:
        c = self.config
        return (("memory", c.memory_budget), ("gpu_memory", c.gpu_memory_budget), ("count", c.count_budget))

    def _shortfall(self, need: tuple[int, int, int]) -> str | None:
        for index, (name, limit) in enumerate(self._budgets()):
            if limit and self._used[index] + need[index] > limit:
                return name
        return None

    def _budget_context(self, name: str, need: tuple[int, int, int], key: str) -> dict[str, Any]:
        index = ("memory", "gpu_memory", "count").index(name)
        leased = sum(
            (e.charge_memory, e.charge_gpu, 1)[index]
            for e in self._entries.values()
            if e.refs and e.life.state is _HOT
        )
        return {
            "key": key,
            "budget": name,
            "limit": self._budgets()[index][1],
            "used": self._used[index],
            "held_by_leases": leased,
            "requested": need[index],
        }

    async def _make_room(self, entry: _Entry, need: tuple[int, int, int], deadline: float, *, evict: bool) -> None:
        for index, (name, limit) in enumerate(self._budgets()):
            if limit and need[index] > limit:
                raise BudgetExceededError(
                    f"model {entry.key!r} needs {need[index]} of the {name} budget, which is {limit} in all",
                    context=self._budget_context(name, need, entry.key),
                    hint=f"raise pool_manager.{name}_budget or use a smaller model",
                )
        while True:
            short = self._shortfall(need)
            if short is None:
                for index in range(3):
                    self._used[index] += need[index]
                return
            victim = self._victim(exclude=entry) if evict else None
            if victim is not None:
                await self._cool(victim, TransitionReason.MEMORY_PRESSURE)
                continue
            if anyio.current_time() >= deadline or not await self._wait_changed(deadline):
                self.metrics["budget_timeouts"] += 1
                ctx = self._budget_context(short, need, entry.key)
                raise BudgetTimeoutError(
                    f"no room for model {entry.key!r} in the {short} budget: {ctx['used']} of "
                    f"{ctx['limit']} used, {ctx['held_by_leases']} held by leases, {ctx['requested']} needed",
                    context=ctx,
                    hint="wait for leases to end, raise the budget, or a longer acquire timeout",
                )

    def _victim(self, exclude: _Entry) -> _Entry | None:
        """The idle hot model to evict: forever-kept last; otherwise the oldest idle, by priority."""
        now = self._clock()
        factor = self.config.priority_factor
        best: _Entry | None = None
        best_score: tuple[int, float, str] | None = None
        for e in self._entries.values():
            if e is exclude or e.refs or e.waiters or e.life.state is not _HOT:
                continue
            age = (now - e.last_used) / (factor**e.priority)
            score = (1 if e.keep_alive < 0 else 0, -age, e.key)
            if best_score is None or score < best_score:
                best, best_score = e, score
        return best

    async def _load(
        self,
        entry: _Entry,
        reason: TransitionReason,
        *,
        deadline: float,
        lease: Lease | None = None,
        evict: bool = True,
    ) -> None:
        self._check_backoff(entry)
        est = self._estimate(entry)
        need = (est.memory, est.gpu_memory, 1)
        entry.waiters += 1  # our own claim: nobody evicts what we are about to use
        entry.reserving = True  # and nobody else starts a second load meanwhile
        if entry.settled is None:
            entry.settled = anyio.Event()
        try:
            await self._make_room(entry, need, deadline, evict=evict)
        except BaseException:
            entry.reserving = False
            self._settle(entry)  # wake the requests that waited on us: one of them tries again
            raise
        finally:
            entry.waiters -= 1
        entry.reserving = False
        if entry.life.state is not ModelState.COLD:  # someone else loaded it while we made room
            for index in range(3):
                self._used[index] -= need[index]
            if lease is not None:
                await self._acquire(lease)
            return
        entry.estimate = est
        entry.charge_memory, entry.charge_gpu = est.memory, est.gpu_memory
        entry.settled = entry.settled or anyio.Event()
        entry.life.move(ModelState.WARMING, reason)
        job = _LoadJob(entry.loader, self.config.measure_memory)
        started = time.perf_counter()
        failure: SymphonyError | None = None
        result: tuple[Any, int | None, int | None] | None = None
        try:
            with anyio.fail_after(self.config.load_timeout):
                result = await anyio.to_thread.run_sync(job.run, abandon_on_cancel=True)
        except TimeoutError:
            job.abandon()
            failure = LoadTimeoutError(
                f"loading model {entry.key!r} took longer than {self.config.load_timeout:g} s",
                context={"key": entry.key, "timeout": self.config.load_timeout},
                hint="raise pool_manager.load_timeout if the model is just slow",
            )
        except Exception as exc:
            failure = LoadFailedError(
                f"loading model {entry.key!r} raised {type(exc).__name__}: {exc}",
                context={"key": entry.key, "error": type(exc).__name__},
            )
            failure.__cause__ = exc
        except BaseException:
            job.abandon()
            with anyio.CancelScope(shield=True):
                self._load_failed(entry, need, None, cancelled=True)
            raise
        if failure is not None or result is None:
            assert failure is not None
            self._load_failed(entry, need, failure)
            raise failure
        instance, measured_mem, measured_gpu = result
        self._load_times.append(time.perf_counter() - started)
        await self._loaded(entry, need, instance, measured_mem, measured_gpu, reason, lease)

    def _load_failed(
        self, entry: _Entry, need: tuple[int, int, int], failure: SymphonyError | None, *, cancelled: bool = False
    ) -> None:
        for index in range(3):
            self._used[index] -= need[index]
        entry.charge_memory = entry.charge_gpu = 0
        if cancelled:
            entry.life.move(ModelState.FAILED, TransitionReason.LOAD_FAILURE, error="cancelled")
        else:
            assert failure is not None
            self.metrics["load_failures"] += 1
            entry.consecutive_failures += 1
            entry.last_error = failure
            delay = min(self.config.backoff_base * 2 ** (entry.consecutive_failures - 1), self.config.backoff_max)
            entry.retry_at = self._clock() + delay
            entry.life.move(ModelState.FAILED, TransitionReason.LOAD_FAILURE, error=failure.code, message=failure.message)
            _log.warning("pool load failed", key=entry.key, error=failure.message, backoff=delay)
        entry.life.move(ModelState.COLD, TransitionReason.ERROR_RECOVERY)
        self._settle(entry)

    def _settle(self, entry: _Entry) -> None:
        if entry.settled is not None:
            entry.settled.set()
            entry.settled = None
        self._notify()

    async def _loaded(
        self,
        entry: _Entry,
        need: tuple[int, int, int],
        instance: Any,
        measured_mem: int | None,
        measured_gpu: int | None,
        reason: TransitionReason,
        lease: Lease | None,
    ) -> None:
        entry.measured_memory, entry.measured_gpu = measured_mem, measured_gpu
        extra_mem = max(0, (measured_mem or 0) - need[0])
        extra_gpu = max(0, (measured_gpu or 0) - need[1])
        tolerance = 1 + self.config.over_estimate_tolerance
        if (measured_mem or 0) > need[0] * tolerance or (measured_gpu or 0) > need[1] * tolerance:
            self.metrics["over_estimates"] += 1
            _log.warning(
                "model uses more than declared",
                key=entry.key,
                declared=need[0],
                measured=measured_mem,
                declared_gpu=need[1],
                measured_gpu=measured_gpu,
            )
        self._used[0] += extra_mem
        self._used[1] += extra_gpu
        entry.charge_memory += extra_mem
        entry.charge_gpu += extra_gpu
        short = self._shortfall((0, 0, 0))
        while short is not None:
            victim = self._victim(exclude=entry)
            if victim is None:
                break
            await self._cool(victim, TransitionReason.MEMORY_PRESSURE)
            short = self._shortfall((0, 0, 0))
        if short is not None:
            charged = (entry.charge_memory, entry.charge_gpu, 1)
            ctx = self._budget_context(short, charged, entry.key)
            ctx.update(declared=need[0], measured=measured_mem, declared_gpu=need[1], measured_gpu=measured_gpu)
            failure = BudgetExceededError(
                f"model {entry.key!r} declared {need[0]} bytes but loading it used {measured_mem}; "
                f"the {short} budget cannot hold it",
                code="pool.load.over_declared",
                context=ctx,
                hint="fix the instrument's estimate() or raise the budget",
            )
            with anyio.CancelScope(shield=True):
                await self._unload_instance(entry, instance)
            self._load_failed(entry, charged, failure)
            raise failure
        entry.instance = instance
        entry.consecutive_failures = 0
        entry.retry_at = 0.0
        entry.loads += 1
        entry.healthy = True
        entry.health = HealthStatus.UNKNOWN
        entry.health_failures = 0
        entry.last_used = self._clock()
        entry.expires_at = entry.last_used + entry.keep_alive if entry.keep_alive >= 0 else math.inf
        self.metrics["loads"] += 1
        entry.life.move(ModelState.HOT, reason, measured_memory=measured_mem, declared_memory=need[0])
        if lease is not None:
            self._take(entry, lease, hit=False)
        self._settle(entry)
        if self._wake is not None:
            self._wake.set()

    async def _unload_instance(self, entry: _Entry, instance: Any) -> Exception | None:
        try:
            with anyio.fail_after(self.config.unload_timeout):
                await anyio.to_thread.run_sync(entry.loader.unload, instance, abandon_on_cancel=True)
        except Exception as exc:
            _log.warning("pool unload failed", key=entry.key, error=repr(exc))
            return exc
        return None

    async def _cool(self, entry: _Entry, reason: TransitionReason) -> None:
        """hot → cooling → cold (or failed → cold if the unload raises); frees the budget."""
        with anyio.CancelScope(shield=True):
            entry.settled = entry.settled or anyio.Event()
            entry.life.move(ModelState.COOLING, reason)
            instance, entry.instance = entry.instance, None
            error = await self._unload_instance(entry, instance)
            self._free(entry)
            if error is not None:
                entry.life.move(ModelState.FAILED, reason, error=type(error).__name__, message=str(error))
                entry.life.move(ModelState.COLD, TransitionReason.ERROR_RECOVERY)
            else:
                entry.life.move(ModelState.COLD, reason)
            self.evictions[reason.value] += 1
            self._settle(entry)

    def _free(self, entry: _Entry) -> None:
        self._used[0] -= entry.charge_memory
        self._used[1] -= entry.charge_gpu
        self._used[2] -= 1
        entry.charge_memory = entry.charge_gpu = 0

    # -- explicit control ---------------------------------------------------------------------

    async def prewarm(
        self,
        key: str,
        *,
        reason: TransitionReason = TransitionReason.USER_REQUEST,
        evict: bool = True,
        timeout: float = 0.0,
    ) -> bool:
        """Load ``key`` now without leasing it; True if it is hot afterwards.

        Evicts idle models if needed (unless ``evict=False``) and waits at most ``timeout``
        for leased models to make room; load errors raise as they would for a lease.
        """
        entry = self._entry(key)
        if entry.life.state is ModelState.FAILED and self.config.recovery is not Recovery.MANUAL:
            entry.life.move(ModelState.COLD, TransitionReason.ERROR_RECOVERY)
        if entry.life.state is not ModelState.COLD or entry.reserving:
            if entry.life.state is ModelState.WARMING or entry.reserving:
                await self._wait_settled(entry, anyio.current_time() + self.config.load_timeout)
            return entry.life.state is _HOT
        await self._load(entry, reason, deadline=anyio.current_time() + timeout, evict=evict)
        return entry.life.state is _HOT

    async def unload(self, key: str, *, reason: TransitionReason = TransitionReason.USER_REQUEST) -> bool:
        """Cool ``key`` now if it is hot and not leased; False otherwise (nothing changes)."""
        entry = self._entry(key)
        if entry.life.state is not _HOT or entry.refs or entry.waiters:
            return False
        await self._cool(entry, reason)
        return True

    async def recover(self, key: str) -> None:
        """Move a failed model back to cold (for ``recovery = "manual"``) and forget its backoff."""
        entry = self._entry(key)
        entry.consecutive_failures = 0
        entry.retry_at = 0.0
        if entry.life.state is ModelState.FAILED:
            entry.life.move(ModelState.COLD, TransitionReason.ERROR_RECOVERY)
            self._settle(entry)

    async def reap(self) -> list[str]:
        """Cool every idle hot model whose keep-alive has run out; the keys cooled."""
        now = self._clock()
        due = [
            e
            for e in self._entries.values()
            if e.life.state is _HOT and not e.refs and not e.waiters and e.expires_at <= now
        ]
        for entry in sorted(due, key=lambda e: e.key):
            await self._cool(entry, TransitionReason.IDLE_TIMEOUT)
        return [e.key for e in due]

    async def aclose(self) -> None:
        """Cool every idle model (scheduled cool-down); leased ones are left to their holders."""
        for entry in sorted(self._entries.values(), key=lambda e: e.key):
            if entry.life.state is _HOT and not entry.refs and not entry.waiters:
                await self._cool(entry, TransitionReason.SCHEDULED_COOLDOWN)

    # -- health -------------------------------------------------------------------------------

    async def check_health(self) -> dict[str, str]:
        """Run every hot model's health check (bounded by ``health_timeout``); status by key.

        A failed check (False, an exception or a timeout) counts; ``health_failures`` in a row
        make the model unhealthy: hot → failed (health failure), then recovery by policy. A
        leased model is failed when its last lease ends; new leases wait for the recovery.
        """
        out: dict[str, str] = {}
        for entry in sorted(self._entries.values(), key=lambda e: e.key):
            if entry.life.state is not _HOT or not entry.healthy:
                out[entry.key] = entry.health.value
                continue
            ok = await self._probe(entry)
            if entry.life.state is not _HOT:  # cooled while we checked
                continue
            if ok:
                entry.health_failures = 0
                entry.health = HealthStatus.HEALTHY
            else:
                entry.health_failures += 1
                self.metrics["health_failures"] += 1
                if entry.health_failures >= self.config.health_failures:
                    entry.health = HealthStatus.UNHEALTHY
                    entry.healthy = False
                    if not entry.refs and not entry.waiters:
                        await self._fail_unhealthy(entry)
                else:
                    entry.health = HealthStatus.DEGRADED
            out[entry.key] = entry.health.value
        return out

    async def _probe(self, entry: _Entry) -> bool:
        try:
            with anyio.fail_after(self.config.health_timeout):
                result = await anyio.to_thread.run_sync(entry.loader.health, entry.instance, abandon_on_cancel=True)
        except Exception as exc:
            _log.info("pool health check failed", key=entry.key, error=repr(exc))
            return False
        return bool(result)

    async def _fail_unhealthy(self, entry: _Entry) -> None:
        with anyio.CancelScope(shield=True):
            entry.settled = entry.settled or anyio.Event()
            entry.life.move(ModelState.FAILED, TransitionReason.HEALTH_FAILURE, failures=entry.health_failures)
            instance, entry.instance = entry.instance, None
            await self._unload_instance(entry, instance)
            self._free(entry)
            entry.healthy = True
            entry.health = HealthStatus.UNKNOWN
            entry.health_failures = 0
            self.evictions[TransitionReason.HEALTH_FAILURE.value] += 1
            policy = self.config.recovery
            if policy is not Recovery.MANUAL:
                entry.life.move(ModelState.COLD, TransitionReason.ERROR_RECOVERY)
            self._settle(entry)
        if policy is Recovery.RELOAD:
            try:
                await self._load(entry, TransitionReason.ERROR_RECOVERY, deadline=anyio.current_time())
            except SymphonyError as err:
                _log.warning("pool recovery reload failed", key=entry.key, error=err.message)

    # -- predictions --------------------------------------------------------------------------

    def expect_run(self, run_id: str, keys: Iterable[str]) -> None:
        """Tell every predictor that can use it (``expect``) which models a submitted run needs."""
        wanted = list(keys)
        for predictor in self._predictors:
            expect = getattr(predictor, "expect", None)
            if callable(expect):
                expect(run_id, wanted)

    def run_done(self, run_id: str) -> None:
        """Tell predictors that a run ended."""
        for predictor in self._predictors:
            done = getattr(predictor, "done", None)
            if callable(done):
                done(run_id)

    async def apply_predictions(self) -> list[str]:
        """Ask every predictor; warm predicted cold models above ``prewarm_threshold``.

        Pre-warming only fills free room: it never evicts and never waits. Load errors are
        logged, not raised. Returns the keys warmed.
        """
        now = self._clock()
        chosen: dict[str, tuple[float, str]] = {}
        for predictor in self._predictors:
            stats = self._predictor_stats[predictor.name]
            try:
                predictions = list(predictor.predict(now))
            except Exception as exc:
                _log.warning("pool predictor failed", predictor=predictor.name, error=repr(exc))
                continue
            stats.predictions += len(predictions)
            for p in predictions:
                entry = self._entries.get(p.key)
                if entry is None:
                    continue
                if entry.predicted_by is None:
                    entry.predicted_by = predictor.name
                if p.probability >= self.config.prewarm_threshold:
                    if p.key not in chosen or chosen[p.key][0] < p.probability:
                        chosen[p.key] = (p.probability, predictor.name)
        warmed: list[str] = []
        for key, (_, source) in sorted(chosen.items(), key=lambda item: (-item[1][0], item[0])):
            entry = self._entries[key]
            if entry.life.state is not ModelState.COLD or entry.retry_at > now:
                continue
            try:
                if await self.prewarm(key, reason=TransitionReason.PREDICTIVE_PREWARM, evict=False):
                    entry.prewarmed_by = entry.predicted_by = source
                    self._predictor_stats[source].prewarmed += 1
                    warmed.append(key)
            except SymphonyError as err:
                _log.info("pool prewarm skipped", key=key, reason=err.message)
        return warmed

    # -- background ---------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Reap idle models, check health and apply predictions until cancelled.

        Sleeps until the next keep-alive expiry or periodic duty (woken early when a release
        sets a sooner expiry); never polls while idle.
        """
        self._wake = anyio.Event()
        task_status.started()
        c = self.config
        next_health = self._clock() + c.health_interval if c.health_interval else math.inf
        next_predict = self._clock() + c.predict_interval if c.predict_interval else math.inf
        try:
            while True:
                await self.reap()
                now = self._clock()
                if now >= next_health:
                    await self.check_health()
                    next_health = now + c.health_interval
                if now >= next_predict:
                    await self.apply_predictions()
                    next_predict = now + c.predict_interval
                expiry = min(
                    (e.expires_at for e in self._entries.values() if e.life.state is _HOT and not e.refs),
                    default=math.inf,
                )
                delay = min(expiry, next_health, next_predict) - self._clock()
                if delay > 0:
                    with anyio.move_on_after(min(delay, 3600.0)):
                        await self._wake.wait()
                    self._wake = anyio.Event()
        finally:
            self._wake = None

    # -- status -------------------------------------------------------------------------------

    def state(self, key: str) -> ModelState:
        """The lifecycle state of ``key``."""
        return self._entry(key).life.state

    def history(self, key: str) -> list[Transition]:
        """The recorded transitions of ``key``, oldest first."""
        return list(self._entry(key).life.history)

    def refs(self, key: str) -> int:
        """How many leases ``key`` has now."""
        return self._entry(key).refs

    def demand(self, key: str) -> dict[str, float]:
        """What leasing ``key`` asks of shared resources, for an arbitration request."""
        entry = self._entry(key)
        est = self._estimate(entry)
        memory = max(est.memory, entry.measured_memory or 0)
        gpu = max(est.gpu_memory, entry.measured_gpu or 0)
        return {"memory": float(memory), "gpu_memory": float(gpu), "model_instances": 1.0}

    @property
    def used(self) -> dict[str, int]:
        """Budget use now: bytes of memory and GPU memory, and the number of loaded models."""
        return {"memory": self._used[0], "gpu_memory": self._used[1], "count": self._used[2]}

    def status(self) -> dict[str, Any]:
        """Budgets, every model's state and counters, and the pool's metrics (JSON-safe)."""
        now = self._clock()
        loads = list(self._load_times)
        waits = list(self._wait_times)
        hits, misses = self.metrics["hits"], self.metrics["misses"]
        time_in: Counter[str] = Counter()
        models = []
        for key in sorted(self._entries):
            e = self._entries[key]
            spent = e.life.time_in_states()
            time_in.update(spent)
            models.append(
                {
                    "key": key,
                    "state": e.life.state.value,
                    "leases": e.refs,
                    "keep_alive": format_keep_alive(e.keep_alive),
                    "expires_in": None if math.isinf(e.expires_at) or e.life.state is not _HOT or e.refs
                    else round(max(0.0, e.expires_at - now), 3),
                    "priority": e.priority,
                    "declared": e.estimate.to_dict(),
                    "measured": {"memory": e.measured_memory, "gpu_memory": e.measured_gpu},
                    "charged": {"memory": e.charge_memory, "gpu_memory": e.charge_gpu},
                    "health": e.health.value,
                    "loads": e.loads,
                    "hits": e.hits,
                    "failures": e.life.failures,
                    "retry_in": round(max(0.0, e.retry_at - now), 3) if e.retry_at > now else None,
                    "transitions": e.life.transitions,
                    "time_in_states": {k: round(v, 6) for k, v in spent.items()},
                }
            )
        return {
            "budgets": {
                name: {"limit": limit or None, "used": self._used[i]}
                for i, (name, limit) in enumerate(self._budgets())
            },
            "models": models,
            "metrics": {
                "hits": hits,
                "misses": misses,
                "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
                "loads": self.metrics["loads"],
                "load_failures": self.metrics["load_failures"],
                "load_seconds": _summary(loads),
                "acquire_wait_seconds": _summary(waits),
                "evictions": dict(sorted(self.evictions.items())),
                "budget_timeouts": self.metrics["budget_timeouts"],
                "over_estimates": self.metrics["over_estimates"],
                "health_failures": self.metrics["health_failures"],
                "reclaimed_leases": self.metrics["reclaimed"],
                "time_in_states": {k: round(v, 6) for k, v in sorted(time_in.items())},
            },
            "predictors": {
                name: {
                    "predictions": s.predictions,
                    "correct": s.correct,
                    "prewarmed": s.prewarmed,
                    "cold_starts_avoided": s.cold_starts_avoided,
                }
                for name, s in sorted(self._predictor_stats.items())
            },
        }


def _summary(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    ordered = sorted(samples)
    p95 = statistics.quantiles(ordered, n=20)[-1] if len(ordered) > 1 else ordered[0]
    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 6),
        "p95": round(p95, 6),
        "max": round(ordered[-1], 6),
    }
