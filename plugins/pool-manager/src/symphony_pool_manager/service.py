"""Building the ``pool-manager`` service from a kernel: config, built-in predictors, hooks."""

from __future__ import annotations

from typing import Any

from symphony.commons.errors import SymphonyError, ValidationError
from symphony.commons.log import get_logger
from symphony_pool_manager.config import PoolConfig
from symphony_pool_manager.pool import ModelPool
from symphony_pool_manager.predictors import Predictor, TimeOfDayPredictor, WorkflowPredictor

__all__ = ["BUILTIN_PREDICTORS", "pool_from_kernel"]

_log = get_logger("symphony.pool")

BUILTIN_PREDICTORS = {"time-of-day": TimeOfDayPredictor, "workflow": WorkflowPredictor}
"""The predictors ``pool_manager.predictors`` may name."""


def pool_from_kernel(kernel: Any) -> ModelPool:
    """A pool configured from ``[pool_manager]``, its transitions sent to ``symphony_pool_transition``.

    Predictors: the built-ins named in ``predictors``, then whatever plugins return from
    ``symphony_pool_predictors``.
    """
    try:
        section = dict(kernel.config.section("pool_manager"))
    except (SymphonyError, KeyError, AttributeError):
        section = {}
    config = PoolConfig.from_mapping(section)
    pool = ModelPool(config)
    for name in config.predictors:
        factory = BUILTIN_PREDICTORS.get(name)
        if factory is None:
            raise ValidationError(
                f"unknown predictor {name!r} in pool_manager.predictors",
                code="pool.config.unknown_predictor",
                context={"key": "pool_manager.predictors", "value": name, "known": sorted(BUILTIN_PREDICTORS)},
            )
        pool.add_predictor(factory())
    hook = kernel.hook
    transition_hook = getattr(hook, "symphony_pool_transition", None)
    if transition_hook is not None:
        pool.add_listener(lambda transition: transition_hook(transition=transition))
    predictors_hook = getattr(hook, "symphony_pool_predictors", None)
    if predictors_hook is not None:
        for result in predictors_hook(pool=pool):
            for predictor in result if isinstance(result, list | tuple) else [result]:
                if not isinstance(predictor, Predictor):
                    _log.warning("ignored a predictor without name/predict/observe", value=repr(predictor)[:80])
                    continue
                pool.add_predictor(predictor)
    return pool
