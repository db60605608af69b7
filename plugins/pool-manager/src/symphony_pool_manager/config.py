"""The pool's settings: the ``[pool_manager]`` config section, also usable without a kernel."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from symphony.commons.errors import ValidationError
from symphony.commons.validation import in_range, number, validate
from symphony_pool_manager.keepalive import parse_keep_alive

__all__ = ["ModelSettings", "PoolConfig", "Recovery"]


class Recovery(enum.Enum):
    """What happens to a model that failed its health checks."""

    RELOAD = "reload"
    """Back to cold, then loaded again at once."""
    COLD = "cold"
    """Back to cold; the next lease loads it."""
    MANUAL = "manual"
    """Stays failed (leases raise) until ``pool.recover(key)``."""


@attrs.frozen
class ModelSettings:
    """Per-model settings from ``[pool_manager.models.<key>]``."""

    keep_alive: float | None = None
    priority: int = 0


_NUMBER = number()


def _number(section: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """``section[key]`` (or ``default``) checked to be a number from ``low`` to ``high``."""
    return float(validate(section.get(key, default), _NUMBER, in_range(low, high), field=f"pool_manager.{key}"))


_KNOWN = {
    "memory_budget",
    "gpu_memory_budget",
    "count_budget",
    "keep_alive",
    "acquire_timeout",
    "load_timeout",
    "unload_timeout",
    "health_interval",
    "health_timeout",
    "health_failures",
    "recovery",
    "backoff_base",
    "backoff_max",
    "priority_factor",
    "over_estimate_tolerance",
    "measure_memory",
    "predictors",
    "prewarm_threshold",
    "predict_interval",
    "history",
    "models",
}


@attrs.frozen
class PoolConfig:
    """Budgets, timeouts and policies of a :class:`~symphony_pool_manager.ModelPool`.

    A budget of 0 means unlimited. Times are seconds. ``keep_alive`` is the default for
    models that set none (see :mod:`symphony_pool_manager.keepalive`).
    """

    memory_budget: int = 0
    gpu_memory_budget: int = 0
    count_budget: int = 0
    keep_alive: float = attrs.field(default=300.0, converter=parse_keep_alive)
    acquire_timeout: float = 30.0
    load_timeout: float = 600.0
    unload_timeout: float = 60.0
    health_interval: float = 30.0
    health_timeout: float = 5.0
    health_failures: int = 3
    recovery: Recovery = attrs.field(default=Recovery.RELOAD, converter=Recovery)
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    priority_factor: float = 4.0
    over_estimate_tolerance: float = 0.5
    measure_memory: bool = True
    predictors: tuple[str, ...] = ("time-of-day", "workflow")
    prewarm_threshold: float = 0.5
    predict_interval: float = 60.0
    history: int = 256
    models: Mapping[str, ModelSettings] = attrs.field(factory=dict)

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any]) -> PoolConfig:
        """Build from a config section (the kernel has checked it against the manifest's schema)."""
        unknown = sorted(set(section) - _KNOWN)
        if unknown:
            raise ValidationError(
                f"unknown pool_manager setting {unknown[0]!r}",
                code="pool.config.unknown_key",
                context={"key": f"pool_manager.{unknown[0]}", "known": sorted(_KNOWN)},
            )
        recovery = section.get("recovery", "reload")
        try:
            recovery_value = Recovery(recovery)
        except ValueError:
            raise ValidationError(
                f"pool_manager.recovery must be one of reload, cold, manual; got {recovery!r}",
                code="pool.config.invalid",
                context={"key": "pool_manager.recovery", "value": repr(recovery)},
            ) from None
        models: dict[str, ModelSettings] = {}
        raw_models = section.get("models", {}) or {}
        if not isinstance(raw_models, Mapping):
            raise ValidationError(
                "pool_manager.models must be a table of model keys",
                code="pool.config.invalid",
                context={"key": "pool_manager.models"},
            )
        for key, value in raw_models.items():
            if not isinstance(value, Mapping):
                raise ValidationError(
                    f"pool_manager.models.{key} must be a table",
                    code="pool.config.invalid",
                    context={"key": f"pool_manager.models.{key}"},
                )
            keep = value.get("keep_alive")
            models[str(key)] = ModelSettings(
                keep_alive=None if keep is None else parse_keep_alive(keep),
                priority=int(_number(value, "priority", 0, -100, 100)),
            )
        predictors = section.get("predictors", ["time-of-day", "workflow"])
        if not isinstance(predictors, list | tuple) or not all(isinstance(p, str) for p in predictors):
            raise ValidationError(
                "pool_manager.predictors must be a list of predictor names",
                code="pool.config.invalid",
                context={"key": "pool_manager.predictors"},
            )
        return cls(
            memory_budget=int(_number(section, "memory_budget", 0, 0, 2**50)),
            gpu_memory_budget=int(_number(section, "gpu_memory_budget", 0, 0, 2**50)),
            count_budget=int(_number(section, "count_budget", 0, 0, 100_000)),
            keep_alive=parse_keep_alive(section.get("keep_alive", 300)),
            acquire_timeout=_number(section, "acquire_timeout", 30.0, 0, 86400),
            load_timeout=_number(section, "load_timeout", 600.0, 0.001, 86400),
            unload_timeout=_number(section, "unload_timeout", 60.0, 0.001, 86400),
            health_interval=_number(section, "health_interval", 30.0, 0, 86400),
            health_timeout=_number(section, "health_timeout", 5.0, 0.001, 3600),
            health_failures=int(_number(section, "health_failures", 3, 1, 1000)),
            recovery=recovery_value,
            backoff_base=_number(section, "backoff_base", 1.0, 0, 3600),
            backoff_max=_number(section, "backoff_max", 300.0, 0, 86400),
            priority_factor=_number(section, "priority_factor", 4.0, 1, 1000),
            over_estimate_tolerance=_number(section, "over_estimate_tolerance", 0.5, 0, 100),
            measure_memory=bool(section.get("measure_memory", True)),
            predictors=tuple(predictors),
            prewarm_threshold=_number(section, "prewarm_threshold", 0.5, 0, 1),
            predict_interval=_number(section, "predict_interval", 60.0, 0, 86400),
            history=int(_number(section, "history", 256, 1, 100_000)),
            models=models,
        )
