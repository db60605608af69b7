"""symphony-pool-manager: keeps model instances warm and shares them (the ``pool-manager`` service).

::

    from symphony_pool_manager import ModelPool, PoolConfig, ResourceEstimate

    pool = ModelPool(PoolConfig(memory_budget=2 << 30, count_budget=3))
    pool.register("embed", loader, keep_alive="5m")
    async with pool.lease("embed", owner="run-1") as model:
        ...
"""

from symphony_pool_manager.config import ModelSettings, PoolConfig, Recovery
from symphony_pool_manager.errors import (
    BudgetExceededError,
    BudgetTimeoutError,
    LifecycleError,
    LoadFailedError,
    LoadTimeoutError,
    ModelUnavailableError,
    UnknownModelError,
)
from symphony_pool_manager.keepalive import FOREVER, NOW, format_keep_alive, parse_keep_alive
from symphony_pool_manager.lifecycle import EDGES, Lifecycle, ModelState, Transition, TransitionReason
from symphony_pool_manager.loader import ModelLoader, ResourceEstimate
from symphony_pool_manager.pool import HealthStatus, Lease, ModelPool
from symphony_pool_manager.predictors import Prediction, Predictor, TimeOfDayPredictor, WorkflowPredictor

__all__ = [
    "EDGES",
    "FOREVER",
    "NOW",
    "BudgetExceededError",
    "BudgetTimeoutError",
    "HealthStatus",
    "Lease",
    "Lifecycle",
    "LifecycleError",
    "LoadFailedError",
    "LoadTimeoutError",
    "ModelLoader",
    "ModelPool",
    "ModelSettings",
    "ModelState",
    "ModelUnavailableError",
    "PoolConfig",
    "Prediction",
    "Predictor",
    "Recovery",
    "ResourceEstimate",
    "TimeOfDayPredictor",
    "Transition",
    "TransitionReason",
    "UnknownModelError",
    "WorkflowPredictor",
    "format_keep_alive",
    "parse_keep_alive",
]
