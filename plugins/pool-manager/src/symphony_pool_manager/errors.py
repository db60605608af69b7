"""Errors of the pool manager: narrow subclasses of the Symphony error family.

Every error names the model ``key`` in its context; budget errors also name the ``budget``
(``memory``, ``gpu_memory`` or ``count``) with its limit, what is held and what was asked for.
"""

from __future__ import annotations

from symphony.commons.errors import (
    ConflictError,
    NotFoundError,
    OperationTimeoutError,
    SymphonyError,
    ValidationError,
)

__all__ = [
    "BudgetExceededError",
    "BudgetTimeoutError",
    "LifecycleError",
    "LoadFailedError",
    "LoadTimeoutError",
    "ModelUnavailableError",
    "UnknownModelError",
]


class LifecycleError(ValidationError):
    """A state change the lifecycle does not allow (e.g. cold → hot)."""

    default_code = "pool.lifecycle.invalid_transition"


class UnknownModelError(NotFoundError):
    """No loader is registered under the model key."""

    default_code = "pool.unknown_model"


class BudgetExceededError(ConflictError):
    """A model can never fit: its estimate (or measured use) is larger than a whole budget."""

    default_code = "pool.budget.exceeded"


class BudgetTimeoutError(OperationTimeoutError):
    """A model could fit, but leased instances held the budget for longer than the wait allowed."""

    default_code = "pool.budget.timeout"


class LoadFailedError(SymphonyError):
    """The loader raised, or the model is backing off after repeated failures."""

    default_code = "pool.load.failed"


class LoadTimeoutError(OperationTimeoutError):
    """The loader did not return within the load timeout; its thread is abandoned."""

    default_code = "pool.load.timeout"


class ModelUnavailableError(ConflictError):
    """The model is in the failed state and its recovery policy keeps it there."""

    default_code = "pool.model.failed"
